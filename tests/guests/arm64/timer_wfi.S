// 1000 generic-timer interrupts of 1 ms through the GIC, idling in WFI between them.
.include "common.inc"
.global _start
_start:
    ldr x0, =STACK_TOP
    mov sp, x0
    adr x0, vectors
    msr vbar_el1, x0
    ldr x1, =GICD
    mov w2, #1
    str w2, [x1]                // GICD_CTLR: enable
    mov w2, #(1 << 27)
    str w2, [x1, #0x100]        // GICD_ISENABLER0: PPI 27 (virtual timer)
    ldr x3, =GICC
    mov w2, #0xf0
    str w2, [x3, #4]            // GICC_PMR
    mov w2, #1
    str w2, [x3]                // GICC_CTLR: enable
    mov x20, #0                 // interrupts taken
    mrs x21, cntfrq_el0
    mov x4, #1000
    udiv x21, x21, x4           // counter ticks per millisecond
    msr cntv_tval_el0, x21
    mov x0, #1
    msr cntv_ctl_el0, x0        // ENABLE
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
