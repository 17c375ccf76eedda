// 1000 generic-timer interrupts of 1 ms through the GIC, idling in WFI between them.
.include "common.inc"
.global _start
_start:
    el1_setup
    gic_enable_vtimer
    mov x20, #0                 // interrupts taken
    vtimer_start 1000           // every 1 ms
    msr daifclr, #2             // unmask IRQ
idle:
    wfi
    b idle

.balign 2048
vectors:
    .skip 0x280                 // IRQ, current EL with SP_ELx
irq:
    ldr w0, [x3, #0xc]          // GICC_IAR
    ldr x5, =RESULTS
    str w0, [x5, #8]            // last interrupt ID
    add x20, x20, #1
    str x20, [x5]
    msr cntv_tval_el0, x21      // next tick; the timer output drops
    str w0, [x3, #0x10]         // GICC_EOIR
    cmp x20, #1000
    b.eq done
    eret
done:
    poweroff
    b .
