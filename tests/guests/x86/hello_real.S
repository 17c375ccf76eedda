# Real mode (loaded raw at 0x7C00, like a boot sector): "real\n" through
# sim-control's PUTC port, then exit status 0x16 through SIMCTL_EXIT.
.set SIMCTL_PUTC, 0x504
.set SIMCTL_EXIT, 0x508
.code16
.global _start
_start:
    xor %ax, %ax
    mov %ax, %ds
    mov $message, %si
    mov $SIMCTL_PUTC, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  mov $SIMCTL_EXIT, %dx
    mov $0x16, %al
    out %al, %dx
    hlt
message:
    .asciz "real\n"
