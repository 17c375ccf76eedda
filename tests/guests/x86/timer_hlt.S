# (b) PIT channel 0 at 1 kHz (mode 2) through the 8259A as vector 0x20; the guest
# sleeps with sti; hlt and counts 1000 ticks, then exits with status 0. Any other
# vector counts as a failure (UNEXPECTED). The TSC is read at both ends, to compare with
# simulated time.
.include "common.inc"
.set TICKS, 1000
.set DIVISOR, 1193                  # 1193182 Hz / 1193 = 1000.15 Hz
.code64
.global _start
_start:
    mov $STACK_TOP, %rsp
    fill_idt idt, unexpected
    set_gate idt, 0x20, tick
    pic_init 0xFE                   # IRQ0 only
    rdtsc
    mov %eax, RESULTS + 24
    mov %edx, RESULTS + 28
    pit_counter0 2, DIVISOR
1:  sti
    hlt
    cmpq $TICKS, RESULTS
    jb 1b
    cli
    mov $SIMCTL_TIME_LO, %dx        # time of the last tick, for the test
    in %dx, %eax
    mov %rax, RESULTS + 8
    rdtsc
    mov %eax, RESULTS + 32
    mov %edx, RESULTS + 36
    sim_exit 0
    jmp .

tick:
    push %rax
    incq RESULTS
    mov $0x20, %al                  # non-specific EOI (OCW2)
    out %al, $PIC1_CMD
    pop %rax
    iretq

unexpected_vector
idt_storage
