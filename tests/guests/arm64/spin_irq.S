// Spins without any exit while a timer interrupt becomes due after 100 us.
.include "common.inc"
.global _start
_start:
    adr x0, vectors
    msr vbar_el1, x0
    ldr x1, =GICD
    mov w2, #1
    str w2, [x1]
    mov w2, #(1 << 27)
    str w2, [x1, #0x100]
    ldr x3, =GICC
    mov w2, #0xf0
    str w2, [x3, #4]
    mov w2, #1
    str w2, [x3]
    mrs x21, cntfrq_el0
    mov x4, #10000
    udiv x21, x21, x4           // 100 us of counter ticks
    msr cntv_tval_el0, x21
    mov x0, #1
    msr cntv_ctl_el0, x0
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
