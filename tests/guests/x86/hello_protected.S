# 32-bit protected mode, paging off: "protected\n" through sim-control's PUTC
# port, then exit status 0x32.
.set SIMCTL_PUTC, 0x504
.set SIMCTL_EXIT, 0x508
.code32
.global _start
_start:
    mov $message, %esi
    mov $SIMCTL_PUTC, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  mov $SIMCTL_EXIT, %dx
    mov $0x32, %eax
    out %eax, %dx
    hlt
message:
    .asciz "protected\n"
