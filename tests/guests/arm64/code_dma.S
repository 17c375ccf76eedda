// Code changed behind the CPU's back (as a device's DMA or a debugger would write RAM): the test
// rewrites a routine the guest has already run, the guest then invalidates the instruction cache
// (B2.4.4) and runs it again. RESULTS[0..2]: what the routine returned first, after the test's
// first rewrite and IC IVAU, and after its second rewrite and IC IALLU. The guest waits for each
// rewrite on FLAG (1, then 2), set by the test after the new instruction.
.include "common.inc"
.equ CODE, 0x40300000
.equ FLAG, RESULTS + 0x100
.equ MOVZ_X0_1, 0xd2800020      // movz x0, #1
.equ RET, 0xd65f03c0

.macro wait_flag value
    ldr x1, =FLAG
1:  ldr w2, [x1]
    cmp w2, #\value
    b.ne 1b
.endm

.global _start
_start:
    el1_setup
    ldr x4, =CODE
    ldr w6, =MOVZ_X0_1
    ldr w7, =RET
    stp w6, w7, [x4]            // the routine in RAM: movz x0, #1; ret
    ldr x3, =RESULTS
    dc cvau, x4
    dsb ish
    ic ivau, x4
    dsb ish
    isb
    blr x4
    str x0, [x3]
    wait_flag 1
    ic ivau, x4                 // the test rewrote it: invalidate the line
    dsb ish
    isb
    blr x4
    str x0, [x3, #8]
    wait_flag 2
    ic iallu                    // rewritten again: invalidate everything
    dsb ish
    isb
    blr x4
    str x0, [x3, #16]
    poweroff
    b .

.balign 2048
vectors:
    b .
