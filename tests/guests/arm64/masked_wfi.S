// Linux's idle pattern: WFI with IRQs masked, then unmask. WFI must complete while the
// timer interrupt is pending but masked, and the interrupt must be taken right after
// `msr daifclr` (the ELR is the next instruction), not an idle loop later.
.include "common.inc"
.global _start
_start:
    el1_setup
    gic_enable_vtimer
    mov x20, #0                 // interrupts taken
    mov x22, #0                 // WFIs completed
    vtimer_start 1000           // every 1 ms; IRQs stay masked (DAIF from reset)
idle:
    wfi                         // wakes on the pending interrupt although it is masked
    add x22, x22, #1
    msr daifclr, #2             // the interrupt is taken here...
unmasked:
    msr daifset, #2             // ...before this instruction runs
    b idle

.balign 2048
vectors:
    .skip 0x280                 // IRQ, current EL with SP_ELx
irq:
    ldr w0, [x3, #0xc]          // GICC_IAR
    ldr x5, =RESULTS
    mrs x6, elr_el1
    str x6, [x5, #8]            // where the interrupt was taken
    adr x7, unmasked
    str x7, [x5, #16]
    add x20, x20, #1
    str x20, [x5]
    str x22, [x5, #24]
    msr cntv_tval_el0, x21      // next tick; the timer output drops
    str w0, [x3, #0x10]         // GICC_EOIR
    cmp x20, #100
    b.eq done
    eret
done:
    poweroff
    b .
