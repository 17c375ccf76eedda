// EL0 reads the virtual counter: trapped (EC 0x18) while CNTKCTL_EL1.EL0VCTEN is 0, served
// once the EL1 handler sets it and returns to the same MRS (as Linux enables its vDSO).
.include "common.inc"
.global _start
_start:
    el1_setup
    msr cntkctl_el1, xzr        // no EL0 access to the counters or timers
    el0_entry el0
    ldr x3, =RESULTS
    mov x10, #0                 // traps taken
    eret
el0:
read:
    mrs x9, cntvct_el0
    str x9, [x3, #24]
    svc #0

.balign 2048
vectors:
    .skip 0x400                 // synchronous, lower EL using AArch64
sync_lower:
    mrs x0, esr_el1
    lsr x4, x0, #26
    cmp x4, #0x18
    b.ne done
    mrs x1, elr_el1
    adr x2, read
    stp x0, x1, [x3]            // the trap's ESR and ELR
    str x2, [x3, #16]
    add x10, x10, #1
    str x10, [x3, #32]
    mov x0, #2                  // EL0VCTEN
    msr cntkctl_el1, x0
    eret                        // back to the MRS, which now reads the counter
done:
    poweroff
    b .
