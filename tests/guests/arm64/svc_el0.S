// Drops to EL0, which calls SVC (handled and returned from with ERET), then hits UDF.
.include "common.inc"
.global _start
_start:
    el1_setup
    el0_entry el0
    ldr x3, =RESULTS
    mov x5, #7
    eret
el0:
    svc #0x42
after_svc:
    str x5, [x3, #48]           // the handler incremented x5
    mov x6, sp
    str x6, [x3, #56]           // SP_EL0 is back
undefined:
    udf #0
    b .

.balign 2048
vectors:
    .skip 0x400                 // synchronous, lower EL using AArch64
sync_lower:
    mrs x0, esr_el1
    mrs x1, elr_el1
    mrs x2, spsr_el1
    lsr x4, x0, #26
    cmp x4, #0x15
    b.ne not_svc
    stp x0, x1, [x3]            // SVC: ESR, ELR
    str x2, [x3, #16]
    mov x7, sp
    str x7, [x3, #64]           // handler runs on SP_EL1
    add x5, x5, #1
    eret
not_svc:
    stp x0, x1, [x3, #24]       // UDF: ESR, ELR
    adr x8, undefined
    str x8, [x3, #40]
    poweroff
    b .
