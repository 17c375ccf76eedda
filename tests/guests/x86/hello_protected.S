# 32-bit protected mode, paging off: "protected\n" through sim-control's PUTC
# port, then exit status 0x32.
.include "common.inc"
.code32
.global _start
_start:
    puts_and_exit message, 0x32
message:
    .asciz "protected\n"
