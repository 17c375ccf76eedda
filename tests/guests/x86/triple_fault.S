# An undefined instruction with an empty IDT: #UD cannot be delivered, then
# #DF cannot either: a triple fault (SDM Vol. 3A 6.15, interrupt 8), which KVM
# reports as KVM_EXIT_SHUTDOWN.
.include "common.inc"
.code64
.global _start
_start:
    lidt empty_idt(%rip)
    ud2
    jmp .
empty_idt:
    .word 0
    .quad 0
