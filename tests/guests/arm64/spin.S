// Counts forever in x0 and never stops: a run that lasts exactly as long as its bound
// (tests/sweep: a run long enough to kill its worker in the middle of it).
.include "common.inc"
.global _start
_start:
    mov x0, #0
1:  add x0, x0, #1
    b 1b
