// A watchpoint for EL0 accesses only (PAC = 0b10), KDE set: at EL1, STRB does not match it and STTRB
// (an unprivileged store) does, as an EL0 access would. RESULTS: exceptions taken, ESR, ELR, FAR.
.include "common.inc"
.equ DATA, RESULTS + 0x80
.global _start
_start:
    el1_setup
    ldr x1, =DATA
    ldr x3, =RESULTS
    str xzr, [x3]
    msr oslar_el1, xzr
    msr dbgwvr0_el1, x1
    mov x0, #((0xff << 5) | (2 << 3) | (2 << 1) | 1)  // 8 bytes, stores, EL0
    msr dbgwcr0_el1, x0
    mov x0, #((1 << 13) | (1 << 15))                  // KDE, MDE
    msr mdscr_el1, x0
    isb
    msr daifclr, #8
    mov w2, #0x5a
    strb w2, [x1]
unpriv:
    sttrb w2, [x1, #1]
    poweroff
    b .

.balign 2048
vectors:
    .skip 0x200                 // synchronous, current EL with SP_ELx
    msr dbgwcr0_el1, xzr
    ldr x4, [x3]
    add x4, x4, #1
    str x4, [x3]
    mrs x5, esr_el1
    mrs x6, elr_el1
    mrs x7, far_el1
    stp x5, x6, [x3, #8]
    str x7, [x3, #24]
    eret
