// A watchpoint on the PL011's data register: the store of 'A' raises a watchpoint exception before
// the UART sees it; the handler switches the watchpoint off and prints 'W', then the store runs again.
// The console must read "WA\n" (the UART never sees the abandoned store). RESULTS: ESR, FAR.
.include "common.inc"
.include "debug.inc"
.global _start
_start:
    el1_setup
    ldr x1, =UART_DR
    mov w3, #0x301
    str w3, [x1, #0x30]         // UARTCR: UARTEN | TXE | RXE
    watch0_on x1, (0xf << 5) | (2 << 3) | (1 << 1) | 1  // 4 bytes, stores, EL1
    mov w2, #'A'
    str w2, [x1]
    mov w2, #'\n'
    str w2, [x1]
    poweroff
    b .

    sync_vector_watch0_off
    ldr x4, =RESULTS
    mrs x5, esr_el1
    mrs x6, far_el1
    stp x5, x6, [x4]
    mov w3, #'W'
    str w3, [x1]
    eret
