// Loads from an address with nothing mapped: the guest takes a synchronous external abort.
.include "common.inc"
.global _start
_start:
    adr x0, vectors
    msr vbar_el1, x0
    ldr x1, =0x20000000
faulting:
    ldr w2, [x1]
    b .

.balign 2048
vectors:
    .skip 0x200                 // synchronous, current EL with SP_ELx
sync:
    mrs x0, esr_el1
    mrs x1, far_el1
    mrs x2, elr_el1
    adr x4, faulting
    ldr x3, =RESULTS
    stp x0, x1, [x3]
    stp x2, x4, [x3, #16]
    poweroff
    b .
