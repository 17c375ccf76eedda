# Waits 1 ms the way Linux calibrates its TSC against the PIT: counter 2 in mode 0,
# gated through port 0x61, polled until OUT2 (port 0x61 bit 5) rises. Simulated time
# must move between the reads or this never ends. Records the polls and the TSC delta.
.include "common.inc"
.set PORT_B, 0x61
.set COUNT, 1193                    # 1 ms
.code64
.global _start
_start:
    in $PORT_B, %al
    and $0xFC, %al                  # gate off, speaker off
    out %al, $PORT_B
    mov $0xB0, %al                  # counter 2, lobyte/hibyte, mode 0
    out %al, $PIT_MODE
    mov $(COUNT & 0xFF), %al
    out %al, $0x42
    mov $(COUNT >> 8), %al
    out %al, $0x42
    rdtsc
    shl $32, %rdx
    or %rax, %rdx
    mov %rdx, %r8
    mov $SIMCTL_TIME_LO, %dx
    in %dx, %eax
    mov %rax, RESULTS + 8           # start time
    in $PORT_B, %al
    or $0x01, %al                   # gate on: counting starts
    out %al, $PORT_B
    xor %ecx, %ecx
1:  inc %rcx
    in $PORT_B, %al
    test $0x20, %al                 # OUT2
    jz 1b
    mov %rcx, RESULTS               # polls
    mov $SIMCTL_TIME_LO, %dx
    in %dx, %eax
    mov %rax, RESULTS + 16          # end time
    rdtsc
    shl $32, %rdx
    or %rax, %rdx
    sub %r8, %rdx
    mov %rdx, RESULTS + 24          # TSC ticks over the wait
    sim_exit 0
    jmp .
