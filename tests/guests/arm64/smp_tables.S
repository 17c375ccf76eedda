// Two CPUs, each with its own translation tables: VA 0x8000_0000 maps a different 2 MiB of RAM on
// each (CPU c: 0x4040_0000 + c * 0x20_0000, holding the marker c + 1), flash and RAM identity-mapped
// by 1 GiB blocks. Both read VA 0x8000_0000 ITER times while the two take turns; a read of the
// other CPU's marker counts as a mismatch. RESULTS slots (8 bytes): c mismatches of CPU c, 2 + c
// its last value read, 4 CPU 1 done.
.include "common.inc"
.equ TABLES,        0x40300000      // CPU c: level 1 at + c * 0x2000, level 2 at + 0x1000
.equ DATA,          0x40400000
.equ WINDOW,        0x80000000
.equ ITER,          50000
.equ PSCI_CPU_ON,   0xC4000003

.global _start
_start:
    el1_setup
    ldr x0, =PSCI_CPU_ON
    mov x1, #1
    adr x2, secondary
    mov x3, #0
    hvc #0
    mov x19, #0
    bl look
    ldr x5, =RESULTS + 32
wait:
    ldar x0, [x5]
    cbz x0, wait
    poweroff

secondary:
    ldr x0, =STACK_TOP
    sub sp, x0, #0x1000
    mov x19, #1
    bl look
    ldr x5, =RESULTS + 32
    mov x0, #1
    stlr x0, [x5]
1:  wfi
    b 1b

look:                           // x19 = this CPU: its tables, its marker, then ITER reads
    ldr x1, =TABLES
    add x1, x1, x19, lsl #13    // level 1
    add x2, x1, #0x1000         // level 2
    mov x3, #0x701              // block at 0: AF, inner shareable, AttrIndx 0
    str x3, [x1]
    ldr x3, =0x40000701         // block at 0x4000_0000 (RAM)
    str x3, [x1, #8]
    orr x3, x2, #3              // 0x8000_0000: a level-2 table
    str x3, [x1, #16]
    ldr x4, =DATA
    add x4, x4, x19, lsl #21    // this CPU's 2 MiB
    add x3, x19, #1
    str x3, [x4]                // its marker
    mov x3, #0x701
    orr x3, x4, x3              // level-2 block
    str x3, [x2]
    dsb sy
    mmu_on x1
    ldr x5, =WINDOW
    ldr x6, =ITER
    add x7, x19, #1             // the marker expected
    mov x8, #0                  // mismatches
2:  ldr x9, [x5]
    cmp x9, x7
    cinc x8, x8, ne
    subs x6, x6, #1
    b.ne 2b
    ldr x5, =RESULTS
    str x8, [x5, x19, lsl #3]
    add x5, x5, #16
    str x9, [x5, x19, lsl #3]
    ret

.balign 2048
vectors:
    b .
