# Real mode (loaded raw at 0x7C00, like a boot sector): "real\n" through
# sim-control's PUTC port, then exit status 0x16.
.include "common.inc"
.code16
.global _start
_start:
    xor %ax, %ax
    mov %ax, %ds
    puts_and_exit message, 0x16
message:
    .asciz "real\n"
