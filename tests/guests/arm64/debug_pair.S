// A store pair whose second doubleword alone is watched: the watchpoint exception abandons the whole
// store (neither doubleword written, the base register not written back), and the retried store,
// with the watchpoint off, writes both once. RESULTS: at the handler [DATA-8], [DATA], x5; at the end
// [DATA-8], [DATA], x5.
.include "common.inc"
.equ DATA, RESULTS + 0x80
.global _start
_start:
    el1_setup
    ldr x1, =DATA
    ldr x3, =RESULTS
    stp xzr, xzr, [x1, #-8]
    msr oslar_el1, xzr
    msr dbgwvr0_el1, x1
    mov x0, #((0xff << 5) | (2 << 3) | (1 << 1) | 1)  // 8 bytes, stores, EL1
    msr dbgwcr0_el1, x0
    mov x0, #((1 << 13) | (1 << 15))                  // KDE, MDE
    msr mdscr_el1, x0
    isb
    msr daifclr, #8
    sub x5, x1, #8
    mov x6, #0x1111
    mov x7, #0x2222
    stp x6, x7, [x5], #16
    ldp x8, x9, [x1, #-8]
    stp x8, x9, [x3, #24]
    str x5, [x3, #40]
    poweroff
    b .

.balign 2048
vectors:
    .skip 0x200                 // synchronous, current EL with SP_ELx
    msr dbgwcr0_el1, xzr
    ldp x10, x11, [x1, #-8]
    stp x10, x11, [x3]
    str x5, [x3, #16]
    eret
