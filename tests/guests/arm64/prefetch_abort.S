// The MMU on with one level-1 table (4 KiB granule, 39-bit VA): flash and RAM mapped by 1 GiB blocks,
// nothing at 0x8000_0000. A load from there is a data abort, then a branch there a prefetch abort (both
// translation faults, level 1); the handler records [ESR, ELR, FAR] for each at RESULTS, steps over the
// load, and powers off after the second.
.include "common.inc"
.equ TABLE, 0x40300000
.global _start
_start:
    el1_setup
    ldr x1, =TABLE
    mov x2, #0x701              // block at 0: AF, inner shareable, AttrIndx 0
    str x2, [x1]
    ldr x2, =0x40000701         // block at 0x4000_0000 (RAM)
    str x2, [x1, #8]
    str xzr, [x1, #16]          // 0x8000_0000: invalid
    mmu_on x1
    ldr x5, =0x80000000
    ldr x3, =RESULTS
    mov x4, #0                  // aborts taken
load:
    ldr x6, [x5]
    br x5

.balign 2048
vectors:
    .skip 0x200                 // synchronous, current EL with SP_ELx
    mrs x0, esr_el1
    mrs x1, elr_el1
    mrs x2, far_el1
    stp x0, x1, [x3], #16
    str x2, [x3], #8
    add x4, x4, #1
    cmp x4, #2
    b.eq 1f
    add x1, x1, #4              // past the load
    msr elr_el1, x1
    eret
1:  poweroff
    b .
