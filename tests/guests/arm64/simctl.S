// Sim-control from a guest: log a line, report three results (pass, pass, fail 5),
// store two time readings for the test, and end the run with status 3.
.include "common.inc"
.global _start
_start:
    ldr x1, =SIMCTL
    ldr x8, =RESULTS
    adr x2, message
1:  ldrb w3, [x2], #1
    cbz w3, 2f
    strb w3, [x1, #SIMCTL_PUTC] // byte stores are allowed on PUTC
    b 1b
2:  ldr w3, [x1]                // SIMCTL_ID
    ldr w4, =0x4D495343
    sub w3, w3, w4              // 0 when the ID reads 'CSIM'
    simctl_result w3
    ldr w5, [x1, #SIMCTL_TIME_LO]
    ldr w6, [x1, #SIMCTL_TIME_HI]
    orr x5, x5, x6, lsl #32     // first reading, ns
    mov x7, #20000
3:  subs x7, x7, #1             // spend some simulated time
    b.ne 3b
    ldr w6, [x1, #SIMCTL_TIME_LO]
    ldr w4, [x1, #SIMCTL_TIME_HI]
    orr x6, x6, x4, lsl #32     // second reading, ns
    stp x5, x6, [x8]
    cmp x6, x5
    cset w3, ls                 // fail (1) unless time went forward
    simctl_result w3
    mov w3, #5
    simctl_result w3
    simctl_exit 3
message:
    .asciz "hello from the guest\n"
