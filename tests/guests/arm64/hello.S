// Prints "hello\n" on the PL011 and powers off through PSCI.
.include "common.inc"
.global _start
_start:
    ldr x1, =UART_DR
    mov w3, #0x301
    str w3, [x1, #0x30]         // UARTCR: UARTEN | TXE | RXE (DDI 0183 3.3.8)
    adr x2, message
1:  ldrb w3, [x2], #1
    cbz w3, 2f
    str w3, [x1]
    b 1b
2:  poweroff
    b .
message:
    .asciz "hello\n"
