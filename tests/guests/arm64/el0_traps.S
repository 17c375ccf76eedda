// EL0 executes instructions that SCTLR_EL1 traps to EL1: WFI (nTWI = 0), MSR DAIFSet and
// MRS DAIF (UMA = 0). The EL1 handler records each ESR and ELR, steps over the instruction and
// returns; results: [ESR, ELR] x 3 at RESULTS, then (from RESULTS + 64) the addresses of the three instructions.
.include "common.inc"
.global _start
_start:
    el1_setup
    mrs x0, sctlr_el1
    bic x0, x0, #(1 << 16)      // nTWI: WFI at EL0 traps
    bic x0, x0, #(1 << 9)       // UMA: EL0 access to DAIF traps
    msr sctlr_el1, x0
    isb
    ldr x3, =RESULTS
    adr x0, i_wfi
    str x0, [x3, #64]
    adr x0, i_daif
    str x0, [x3, #72]
    adr x0, i_mrs
    str x0, [x3, #80]
    el0_entry el0
    mov x10, #0                 // traps recorded
    eret
el0:
i_wfi:
    wfi
i_daif:
    msr daifset, #2
i_mrs:
    mrs x7, daif
    svc #0

.balign 2048
vectors:
    .skip 0x400                 // synchronous, lower EL using AArch64
sync_lower:
    mrs x0, esr_el1
    lsr x4, x0, #26
    cmp x4, #0x15               // SVC: the end
    b.eq done
    mrs x1, elr_el1
    add x5, x3, x10, lsl #4
    stp x0, x1, [x5]
    add x10, x10, #1
    add x1, x1, #4              // step over the trapped instruction
    msr elr_el1, x1
    eret
done:
    poweroff
    b .
