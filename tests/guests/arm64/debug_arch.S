// Self-hosted debug (DDI 0487 D2) at EL1 and EL0: the OS lock, KDE and PSTATE.D masking, a breakpoint,
// watchpoints (store, load, a store overlapping the watched bytes), software step (active-pending
// after unmasking D, then stepping LDXR and ADD), and at EL0 (KDE clear) a step, a breakpoint and a
// watchpoint, then an unmask of PSTATE.D that looks like an ERET. The handler logs [ESR, ELR, FAR, SPSR, the watched doubleword] per exception at LOG,
// switches off what fired (breakpoint 0, watchpoint 0, or MDSCR_EL1.SS once x26 steps are done) and
// returns. RESULTS + 0/8/16/24: log length after phase 1 (OS lock), the KDE/D phases, at the end.
.include "common.inc"
.include "debug.inc"
.equ LOG, RESULTS + 0x100
.equ BCR_EL1, (0xf << 5) | (1 << 1) | 1             // BAS = 0b1111, PMC = EL1, E
.equ BCR_EL0, (0xf << 5) | (2 << 1) | 1             // PMC = EL0
.equ WCR_EL1, (0xff << 5) | (3 << 3) | (1 << 1) | 1 // BAS = 8 bytes, LSC = load and store, PAC = EL1
.equ WCR_EL0_STORE, (0xff << 5) | (2 << 3) | (2 << 1) | 1
.global _start
_start:
    el1_setup
    mov x27, #0                 // log entries
    ldr x25, =LOG
    ldr x24, =RESULTS
    ldr x1, =DATA
    str xzr, [x1]
    // 1. The OS lock is set out of reset: nothing fires.
    adr x0, t1
    msr dbgbvr0_el1, x0
    mov x0, #BCR_EL1
    msr dbgbcr0_el1, x0
    mov x0, #(KDE | MDE)
    msr mdscr_el1, x0
    isb
    msr daifclr, #8
t1: nop
    str x27, [x24]
    // 2. OS lock clear: the breakpoint fires (EC 0x31).
    msr oslar_el1, xzr
    adr x0, t2
    msr dbgbvr0_el1, x0
    isb
t2: nop
    // 3. KDE clear: no debug exception at EL1.
    mov x0, #MDE
    msr mdscr_el1, x0
    adr x0, t3
    msr dbgbvr0_el1, x0
    mov x0, #BCR_EL1
    msr dbgbcr0_el1, x0
    isb
t3: nop
    // 4. KDE set, PSTATE.D set: none either.
    mov x0, #(KDE | MDE)
    msr mdscr_el1, x0
    msr daifset, #8
    adr x0, t4
    msr dbgbvr0_el1, x0
    isb
t4: nop
    msr daifclr, #8
    str x27, [x24, #8]
    msr dbgbcr0_el1, xzr
    // 5. Watchpoint 0 on DATA: a byte store, a load, a store overlapping from below (EC 0x35).
    msr dbgwvr0_el1, x1
    mov x0, #WCR_EL1
    msr dbgwcr0_el1, x0
    isb
    mov x2, #0x55
w_st: strb w2, [x1, #3]
    mov x0, #WCR_EL1
    msr dbgwcr0_el1, x0
    isb
w_ld: ldr x3, [x1]
    mov x0, #WCR_EL1
    msr dbgwcr0_el1, x0
    isb
    sub x5, x1, #4
w_ov: str w2, [x5, #2]
    msr dbgwcr0_el1, xzr
    // 6. Software step at EL1: pending once D is unmasked, then LDXR and ADD stepped.
    mov x26, #2
    msr daifset, #8
    mov x0, #(KDE | SS)
    msr mdscr_el1, x0
    isb
    msr daifclr, #8
s0: ldxr x4, [x1]
s1: add x4, x4, #1
s2: nop
    // 7. EL0 with KDE clear: a step (SPSR.SS set by the ERET), a breakpoint, a store watchpoint.
    adr x0, e_bp
    msr dbgbvr0_el1, x0
    mov x0, #BCR_EL0
    msr dbgbcr0_el1, x0
    mov x0, #WCR_EL0_STORE
    msr dbgwcr0_el1, x0
    mov x0, #(MDE | SS)
    msr mdscr_el1, x0
    mov x26, #0
    adr x28, back
    el0_entry e0
    mov x0, #(1 << 21)          // SPSR_EL1.SS: return to active-not-pending
    msr spsr_el1, x0
    eret
e0: nop
e_bp: nop
e_st: strb w2, [x1]
    svc #0
back:
    // 8. Unmasking PSTATE.D where PC = ELR_EL1 and PSTATE = SPSR_EL1 but for SS, as after an ERET:
    // PSTATE.SS stays 0, so the step exception is taken at once (ISV = 0).
    adr x0, l8
    msr elr_el1, x0
    mov x0, #0x1c5              // EL1h, D clear, A, I, F masked
    orr x0, x0, #(1 << 21)      // SS
    msr spsr_el1, x0
    mov x0, #(KDE | SS)
    msr mdscr_el1, x0
    isb
    msr daifclr, #8
l8: str x27, [x24, #24]
    poweroff
    b .

// The log entry, then per class: switch off what fired and return.
handler:
    mrs x20, esr_el1
    mrs x21, elr_el1
    add x22, x25, x27, lsl #6
    stp x20, x21, [x22]
    mrs x23, far_el1
    str x23, [x22, #16]
    mrs x23, spsr_el1
    str x23, [x22, #24]
    ldr x23, [x1]
    str x23, [x22, #32]
    add x27, x27, #1
    lsr x20, x20, #26
    cmp x20, #0x15
    b.eq svc_lower
    cmp x20, #0x32
    b.eq step
    cmp x20, #0x33
    b.eq step
    cmp x20, #0x31
    b.le breakpoint
    msr dbgwcr0_el1, xzr        // a watchpoint
    eret
breakpoint:
    msr dbgbcr0_el1, xzr
    eret
step:
    cbz x26, step_off
    sub x26, x26, #1
    mrs x23, spsr_el1
    orr x23, x23, #(1 << 21)    // step the next one too
    msr spsr_el1, x23
    eret
step_off:
    mrs x23, mdscr_el1
    bic x23, x23, #SS
    msr mdscr_el1, x23
    eret
svc_lower:
    msr elr_el1, x28
    mov x23, #0x3c5             // EL1h, DAIF masked
    msr spsr_el1, x23
    eret

.balign 2048
vectors:
    .skip 0x200                 // synchronous, current EL with SP_ELx
    b handler
    .skip 0x200 - 4             // synchronous, lower EL using AArch64
    b handler
