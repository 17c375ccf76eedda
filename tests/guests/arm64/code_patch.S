// Code patching as an OS does it (Linux's alternatives, jump labels): a routine copied to RAM is
// run, rewritten in place (a new MOVZ immediate, then DC CVAU, IC IVAU, ISB) and run again, five
// times. RESULTS[0] is the sum of what the five versions returned (1+2+3+4+5), RESULTS[1] what the
// first version still returned when run after the loop (the patch restored it).
.include "common.inc"
.equ CODE, 0x40300000
.equ MOVZ_X0, 0xd2800000        // movz x0, #imm16 (imm16 at bit 5)
// The instruction at \addr was rewritten: make the new one visible to instruction fetch (B2.4.4).
.macro patched addr
    dc cvau, \addr
    dsb ish
    ic ivau, \addr
    dsb ish
    isb
.endm

.global _start
_start:
    el1_setup
    ldr x3, =RESULTS
    ldr x4, =CODE
    adr x5, routine
    ldp w6, w7, [x5]
    stp w6, w7, [x4]            // the routine in RAM: movz x0, #0; ret
    mov x8, #0                  // sum
    mov x9, #1
1:  ldr w6, =MOVZ_X0
    orr w6, w6, w9, lsl #5
    str w6, [x4]                // patch the immediate
    patched x4
    blr x4
    add x8, x8, x0
    add x9, x9, #1
    cmp x9, #6
    b.ne 1b
    str x8, [x3]
    ldr w6, =MOVZ_X0 | (1 << 5)
    str w6, [x4]
    patched x4
    blr x4
    str x0, [x3, #8]
    poweroff
    b .
routine:
    movz x0, #0
    ret

.balign 2048
vectors:
    b .
