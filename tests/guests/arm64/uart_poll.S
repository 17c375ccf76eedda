// A console driver's loop on the PL011: wait while UARTFR.TXFF, write UARTDR, byte by byte, then read
// UARTRIS (TXRIS set by the writes) and, with TXIM unmasked and TXRIS cleared, write once more so the
// UART's interrupt rises (taken through the GIC). The unicorn backend serves UARTFR and UARTDR natively
// while that cannot change the interrupt; the results must be those of the model alone.
.include "common.inc"
.equ UARTFR, 0x18
.equ UARTCR, 0x30
.equ UARTIMSC, 0x38
.equ UARTRIS, 0x3c
.equ UARTICR, 0x44
.equ UART_SPI, 33                // virt's UART0 interrupt: SPI 1 = INTID 33
.global _start
_start:
    el1_setup
    ldr x3, =RESULTS
    ldr x1, =UART_DR
    mov w2, #0x301
    str w2, [x1, #UARTCR]       // UARTEN | TXE | RXE
    adr x4, message
1:  ldrb w5, [x4], #1
    cbz w5, 3f
2:  ldr w6, [x1, #UARTFR]
    tbnz w6, #5, 2b             // TXFF
    str w5, [x1]
    b 1b
3:  ldr w6, [x1, #UARTFR]
    mrs x10, cntvct_el0         // same block: reads the clock the UARTFR access synced (its block's end)
    str x10, [x3, #32]
    .rept 40
    nop
    .endr
    str x6, [x3]                // UARTFR after the writes
    ldr w6, [x1, #UARTRIS]
    str x6, [x3, #8]            // TXRIS set by them
    ldr x7, =GICD
    mov w2, #1
    str w2, [x7]                // GICD_CTLR
    mov w2, #(1 << (UART_SPI - 32))
    str w2, [x7, #0x104]        // GICD_ISENABLER1
    ldr x8, =GICC
    mov w2, #0xf0
    str w2, [x8, #4]            // GICC_PMR
    mov w2, #1
    str w2, [x8]                // GICC_CTLR
    mov w2, #(1 << 5)
    str w2, [x1, #UARTICR]      // clear TXRIS
    str w2, [x1, #UARTIMSC]     // TXIM
    msr daifclr, #2
    mov w5, #'!'
    str w5, [x1]                // raises UARTINTR: taken right after
    mov x9, #0
4:  add x9, x9, #1              // counts until the interrupt is taken
    b 4b

.balign 2048
vectors:
    .skip 0x280                 // IRQ, current EL with SPx
    ldr w6, [x8, #0xc]          // GICC_IAR
    str x6, [x3, #16]
    str x9, [x3, #24]
    poweroff
    b .
message:
    .asciz "polled\n"
