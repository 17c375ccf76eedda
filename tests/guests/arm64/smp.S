// SMP on virt: CPU 0 starts every other CPU with PSCI CPU_ON; all of them add 1 to a shared
// counter ITER times under a spinlock (LDAXR/STXR, released by STLR); CPU 0 checks the sum,
// sends SGI 1 to the others (GICD_SGIR, "all but me"), each acknowledges it on its own CPU
// interface and calls CPU_OFF; CPU 0 waits for AFFINITY_INFO to say OFF for each, then powers off.
// RESULTS slots (8 bytes): 0 sum, 1 CPUs, 2 0xd0e when done (else the failing PSCI code),
// 3 CPU_ON of a CPU that is on, 8+c MPIDR of CPU c, 16+c GICC_IAR CPU c read, 24+c its x0 at entry.
.include "common.inc"
.equ LOCK,          0x40300000
.equ COUNTER,       0x40300040
.equ DONE,          0x40300080
.equ ITER,          20000
.equ PSCI_CPU_ON,   0xC4000003
.equ PSCI_CPU_OFF,  0x84000002
.equ PSCI_AFFINITY, 0xC4000004

// PSCI CPU_ON: the CPU with MPIDR \target enters `secondary` with x0 = \context; x0 = the result.
.macro cpu_on target, context
    ldr x0, =PSCI_CPU_ON
    mov x1, \target
    adr x2, secondary
    mov x3, \context
    hvc #0
.endm

.global _start
_start:
    el1_setup
    ldr x1, =GICD
    mov w2, #1
    str w2, [x1]                // GICD_CTLR: enable
    ldr w2, [x1, #4]            // GICD_TYPER: CPUNumber [7:5]
    ubfx w19, w2, #5, #3
    add w19, w19, #1
    ldr x5, =RESULTS
    str x19, [x5, #8]
    mrs x0, mpidr_el1
    str x0, [x5, #64]
    mov x0, #0x100
    str x0, [x5, #192]
    mov x20, #1
start_next:
    cmp x20, x19
    b.ge started
    add x21, x20, #0x100        // context_id
    cpu_on x20, x21             // target: MPIDR Aff0 = its index
    cbnz x0, fail
    add x20, x20, #1
    b start_next
started:
    bl count
    ldr x6, =DONE
    sub w7, w19, #1
wait_done:
    ldar w8, [x6]
    cmp w8, w7
    b.ne wait_done
    ldr x6, =COUNTER
    ldr x8, [x6]
    str x8, [x5]
    cpu_on #1, #0               // CPU 1 is on (idle in WFI): ALREADY_ON
    str x0, [x5, #24]
    ldr x1, =GICD
    ldr w2, =0x01000001         // TargetListFilter 1 (all but me), SGI 1
    str w2, [x1, #0xf00]
    mov x20, #1
wait_off:
    cmp x20, x19
    b.ge all_off
    ldr x0, =PSCI_AFFINITY
    mov x1, x20
    mov x2, #0
    hvc #0
    cmp x0, #1                  // OFF
    b.ne wait_off
    add x20, x20, #1
    b wait_off
all_off:
    mov x0, #0xd0e
    str x0, [x5, #16]
    poweroff
fail:
    str x0, [x5, #16]
    poweroff

secondary:                      // x0 = context_id, EL1h, MMU off, DAIF masked
    mrs x1, mpidr_el1
    and x1, x1, #0xff
    ldr x5, =RESULTS
    add x6, x5, x1, lsl #3
    str x0, [x6, #192]
    mrs x2, mpidr_el1
    str x2, [x6, #64]
    ldr x2, =STACK_TOP
    sub x2, x2, x1, lsl #12
    mov sp, x2
    adr x2, vectors
    msr vbar_el1, x2
    bl count
    ldr x6, =DONE
done_inc:
    ldaxr w8, [x6]
    add w8, w8, #1
    stlxr w9, w8, [x6]
    cbnz w9, done_inc
    msr daifclr, #2             // IRQs on: wait for CPU 0's SGI
idle:
    wfi
    b idle

count:                          // this CPU's GIC interface on, then ITER locked increments
    ldr x3, =GICC
    mov w2, #0xf0
    str w2, [x3, #4]            // GICC_PMR
    mov w2, #1
    str w2, [x3]                // GICC_CTLR
    ldr x10, =LOCK
    ldr x11, =COUNTER
    ldr x12, =ITER
    mov w2, #1
lock:
    ldaxr w8, [x10]
    cbnz w8, lock
    stxr w9, w2, [x10]
    cbnz w9, lock
    ldr x8, [x11]               // the critical section: a plain read-modify-write
    add x8, x8, #1
    str x8, [x11]
    stlr wzr, [x10]
    subs x12, x12, #1
    b.ne lock
    ret

.balign 2048
vectors:
    .skip 0x280                 // IRQ, current EL with SP_ELx
    ldr x3, =GICC
    ldr w0, [x3, #0xc]          // GICC_IAR: SGI ID, source CPU in [12:10]
    mrs x1, mpidr_el1
    and x1, x1, #0xff
    ldr x5, =RESULTS
    add x6, x5, x1, lsl #3
    str x0, [x6, #128]
    str w0, [x3, #0x10]         // GICC_EOIR
    ldr x0, =PSCI_CPU_OFF
    hvc #0
    b .
