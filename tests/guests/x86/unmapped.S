# Touches ports and MMIO where nothing is mapped: reads must give all ones,
# writes must be dropped, and the guest must carry on. Results in RAM.
.include "common.inc"
.set NOWHERE_PORT, 0x2F0
.set NOWHERE_MMIO, 0xE0000000
.code64
.global _start
_start:
    mov $STACK_TOP, %rsp
    mov $NOWHERE_PORT, %dx
    xor %eax, %eax
    inb %dx, %al
    mov %rax, RESULTS + 0           # 0xFF
    xor %eax, %eax
    inl %dx, %eax
    mov %rax, RESULTS + 8           # 0xFFFFFFFF
    outb %al, %dx                   # dropped
    mov $NOWHERE_MMIO, %rbx
    mov (%rbx), %rax
    mov %rax, RESULTS + 16          # 0xFFFFFFFFFFFFFFFF
    movl $0x12345678, (%rbx)        # dropped
    mov (%rbx), %eax
    mov %rax, RESULTS + 24          # still 0xFFFFFFFF
    movq $0x600D, RESULTS + 32      # got here
    cli
    hlt
