// Counter reads the unicorn backend answers natively (CNTVCT_EL0/CNTPCT_EL0 at EL1) and through the
// timer model (at EL0), in a polling streak, after a loop and after a device access; every value is
// stored in RESULTS for the test to compare with the model's own answers.
.include "common.inc"
.global _start
_start:
    el1_setup
    ldr x3, =RESULTS
    .rept 8                     // a streak: each repeated read moves time on by a doubling skip
    mrs x9, cntvct_el0
    str x9, [x3], #8
    .endr
    mov x6, #1000
1:  subs x6, x6, #1
    b.ne 1b
    mrs x9, cntpct_el0
    str x9, [x3], #8
    ldr x7, =UART_DR
    mov w8, #0x301
    str w8, [x7, #0x30]         // UARTCR: UARTEN | TXE | RXE
    mov w8, #'a'
    str w8, [x7]                // a device access: the kernel's clock is synced here
    mrs x9, cntvct_el0
    str x9, [x3], #8
    mov x0, #3                  // EL0PCTEN | EL0VCTEN
    msr cntkctl_el1, x0
    el0_entry el0
    eret
el0:
    .rept 4
    mrs x9, cntvct_el0
    str x9, [x3], #8
    .endr
    mrs x9, cntpct_el0
    str x9, [x3], #8
    svc #0

.balign 2048
vectors:
    .skip 0x400                 // synchronous, lower EL using AArch64: the SVC
    poweroff
    b .
