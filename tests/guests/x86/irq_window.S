# An interrupt that becomes due while the guest runs with IF=0 waits for it:
# the PIT fires during a spin with interrupts disabled; only after `sti` (and
# the one-instruction STI shadow) may the handler run. The handler records the
# marker the main code had reached, and exits.
.include "common.inc"
.set SPINS, 40000                   # ~80,000 instructions: well past the PIT's ~10 us
.code64
.global _start
_start:
    mov $STACK_TOP, %rsp
    cli
    fill_idt idt, unexpected
    set_gate idt, 0x20, fired
    pic_init 0xFE
    pit_counter0 0, 12              # one-shot, 12 PIT clocks: ~10 us
    mov $SPINS, %ecx
1:  dec %ecx                        # IF=0: the interrupt must wait
    jnz 1b
    movq $1, RESULTS + 8
    sti
    nop                             # the STI shadow (SDM Vol. 2B, STI)
    movq $2, RESULTS + 8            # the interrupt is taken before this
2:  hlt
    jmp 2b

fired:
    mov RESULTS + 8, %rax
    mov %rax, RESULTS + 16          # where the main code was
    sim_exit 0
    jmp .

unexpected_vector
idt_storage
