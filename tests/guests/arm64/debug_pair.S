// A store pair whose second doubleword alone is watched: the watchpoint exception abandons the whole
// store (neither doubleword written, the base register not written back), and the retried store,
// with the watchpoint off, writes both once. RESULTS: at the handler [DATA-8], [DATA], x5; at the end
// [DATA-8], [DATA], x5.
.include "common.inc"
.include "debug.inc"
.global _start
_start:
    debug_guest_setup
    stp xzr, xzr, [x1, #-8]
    watch0_on x1, (0xff << 5) | (2 << 3) | (1 << 1) | 1 // 8 bytes, stores, EL1
    sub x5, x1, #8
    mov x6, #0x1111
    mov x7, #0x2222
    stp x6, x7, [x5], #16
    ldp x8, x9, [x1, #-8]
    stp x8, x9, [x3, #24]
    str x5, [x3, #40]
    poweroff
    b .

    sync_vector_watch0_off
    ldp x10, x11, [x1, #-8]
    stp x10, x11, [x3]
    str x5, [x3, #16]
    eret
