// Spins without any exit while a timer interrupt becomes due after 100 us.
// RESULTS[0]: CNTV_CVAL_EL0, when the interrupt is due on the guest's own counter; RESULTS[1]: CNTVCT_EL0 when
// it was taken.
.include "common.inc"
.global _start
_start:
    adr x0, vectors
    msr vbar_el1, x0
    gic_enable_vtimer
    vtimer_start 10000          // due in 100 us
    ldr x5, =RESULTS
    mrs x6, cntv_cval_el0
    str x6, [x5]
    msr daifclr, #2
spin:
    add x9, x9, #1
    b spin

.balign 2048
vectors:
    .skip 0x280
irq:
    mrs x6, cntvct_el0
    str x6, [x5, #8]
    ldr w0, [x3, #0xc]
    poweroff
    b .
