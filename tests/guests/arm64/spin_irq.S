// Spins without any exit while a timer interrupt becomes due after 100 us.
.include "common.inc"
.global _start
_start:
    adr x0, vectors
    msr vbar_el1, x0
    gic_enable_vtimer
    vtimer_start 10000          // due in 100 us
    msr daifclr, #2
spin:
    add x9, x9, #1
    b spin

.balign 2048
vectors:
    .skip 0x280
irq:
    ldr w0, [x3, #0xc]
    poweroff
    b .
