# Spins without any exit; counts iterations in RAM so a test can see it ran.
.include "common.inc"
.code64
.global _start
_start:
    xor %rax, %rax
1:  inc %rax
    mov %rax, RESULTS
    jmp 1b
