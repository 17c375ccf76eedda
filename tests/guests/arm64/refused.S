// Reads and writes a PL011 offset with no register (the model refuses them): no abort, the read gives zero.
.include "common.inc"
.global _start
_start:
    adr x0, vectors
    msr vbar_el1, x0
    ldr x1, =UART_DR
    ldr x3, =RESULTS
    mov w2, #0x55
    str w2, [x1, #0x100]        // reserved offset: the write is dropped
    ldr w2, [x1, #0x100]        // ... and the read is zero
    str x2, [x3]
    mov x4, #1
    str x4, [x3, #8]            // reached: no abort was taken
    poweroff
    b .

.balign 2048
vectors:
    .skip 0x200                 // synchronous, current EL with SP_ELx
sync:
    ldr x3, =RESULTS
    mrs x0, esr_el1
    str x0, [x3, #16]
    poweroff
    b .
