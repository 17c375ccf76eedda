# (a) Prints "hello\n" on COM1 (16550, polling LSR.THRE) and exits through sim-control.
.include "common.inc"
.code64
.global _start
_start:
    lea message(%rip), %rsi
1:  lodsb
    test %al, %al
    jz 3f
    mov %al, %bl
2:  mov $COM1 + 5, %dx              # LSR
    in %dx, %al
    test $0x20, %al                 # THRE (PC16550D 8.6.3)
    jz 2b
    mov %bl, %al
    mov $COM1, %dx                  # THR
    out %al, %dx
    jmp 1b
3:  sim_exit 0
    jmp .
message:
    .asciz "hello\n"
