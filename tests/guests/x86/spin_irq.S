# (c) A one-shot PIT interrupt (mode 0) is due ~100 us after set-up while the guest
# spins without any exit. The budget kick must end the quantum so that the
# interrupt is delivered; the handler records the simulated time and exits.
.include "common.inc"
.set COUNT, 119                     # 119 / 1193182 Hz = 99.7 us
.code64
.global _start
_start:
    mov $STACK_TOP, %rsp
    fill_idt idt, unexpected
    set_gate idt, 0x20, fired
    pic_init 0xFE
    mov $SIMCTL_TIME_LO, %dx        # when the count starts
    in %dx, %eax
    mov %rax, RESULTS + 8
    pit_counter0 0, COUNT
    sti
1:  incq RESULTS                    # spin: no exit at all
    jmp 1b

fired:
    mov $SIMCTL_TIME_LO, %dx
    in %dx, %eax
    mov %rax, RESULTS + 16
    sim_exit 0
    jmp .

unexpected_vector
idt_storage
