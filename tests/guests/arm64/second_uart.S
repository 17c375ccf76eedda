// Writes "ok" to a PL011 at 0x09040000 that a platform subclass added, then exits 0.
.include "common.inc"
.global _start
_start:
    ldr x1, =0x09040000
    mov w2, #0x301              // UARTCR: UARTEN | TXE | RXE
    str w2, [x1, #0x30]
    mov w2, #'o'
    str w2, [x1]
    mov w2, #'k'
    str w2, [x1]
    simctl_exit 0
