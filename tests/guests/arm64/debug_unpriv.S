// A watchpoint for EL0 accesses only (PAC = 0b10), KDE set: at EL1, STRB does not match it and STTRB
// (an unprivileged store) does, as an EL0 access would. RESULTS: exceptions taken, ESR, ELR, FAR.
.include "common.inc"
.include "debug.inc"
.global _start
_start:
    debug_guest_setup
    str xzr, [x3]
    watch0_on x1, (0xff << 5) | (2 << 3) | (2 << 1) | 1 // 8 bytes, stores, EL0
    mov w2, #0x5a
    strb w2, [x1]
unpriv:
    sttrb w2, [x1, #1]
    poweroff
    b .

    sync_vector_watch0_off
    ldr x4, [x3]
    add x4, x4, #1
    str x4, [x3]
    mrs x5, esr_el1
    mrs x6, elr_el1
    mrs x7, far_el1
    stp x5, x6, [x3, #8]
    str x7, [x3, #24]
    eret
