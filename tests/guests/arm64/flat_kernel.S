// A flat binary booted as `-P kernel=FILE` (no Linux Image header): checks that it runs at
// RAM + 0x80000 and that x0 points at the device tree (FDT magic 0xd00dfeed, big-endian).
// Exit status 0 passes; 1: wrong load address; 2: no DTB at x0; 3: x1 not zero.
.include "common.inc"
.global _start
_start:
    adr x2, _start
    ldr x3, =0x40080000
    cmp x2, x3
    b.ne 1f
    ldr w4, [x0]
    ldr w5, =0xedfe0dd0         // 0xd00dfeed as a little-endian load sees it
    cmp w4, w5
    b.ne 2f
    cbnz x1, 3f
    simctl_exit 0
1:  simctl_exit 1
2:  simctl_exit 2
3:  simctl_exit 3
