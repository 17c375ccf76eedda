// A watchpoint on the PL011's data register: the store of 'A' raises a watchpoint exception before
// the UART sees it; the handler switches the watchpoint off and prints 'W', then the store runs again.
// The console must read "WA\n" (the UART never sees the abandoned store). RESULTS: ESR, FAR.
.include "common.inc"
.global _start
_start:
    el1_setup
    ldr x1, =UART_DR
    mov w3, #0x301
    str w3, [x1, #0x30]         // UARTCR: UARTEN | TXE | RXE
    msr oslar_el1, xzr
    msr dbgwvr0_el1, x1
    mov x0, #((0xf << 5) | (2 << 3) | (1 << 1) | 1)   // 4 bytes, stores, EL1
    msr dbgwcr0_el1, x0
    mov x0, #((1 << 13) | (1 << 15))                  // KDE, MDE
    msr mdscr_el1, x0
    isb
    msr daifclr, #8
    mov w2, #'A'
    str w2, [x1]
    mov w2, #'\n'
    str w2, [x1]
    poweroff
    b .

.balign 2048
vectors:
    .skip 0x200                 // synchronous, current EL with SP_ELx
    msr dbgwcr0_el1, xzr
    ldr x4, =RESULTS
    mrs x5, esr_el1
    mrs x6, far_el1
    stp x5, x6, [x4]
    mov w3, #'W'
    str w3, [x1]
    eret
