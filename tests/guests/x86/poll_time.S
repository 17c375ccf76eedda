# Reads SIMCTL_TIME_LO eight times in a row and stores each value: the simulated
# time between two reads is what the guest ran plus the access latency.
.include "common.inc"
.code64
.global _start
_start:
    mov $SIMCTL_TIME_LO, %dx
    mov $RESULTS, %rdi
    mov $8, %ecx
1:  in %dx, %eax
    stosq
    dec %ecx
    jnz 1b
    sim_exit 0
