"""Native hooks for unicorn: an exact instruction counter and a system-register filter.

Unicorn's own `count=` budget counts instructions internally but does not say
how many ran when emulation stops early (WFI, a device access that ends the
quantum). This tiny C hook does the same counting where we can read it, so a
device touched mid-quantum sees the exact local time of the guest. It costs
what unicorn's `count=` costs (one native call per instruction).

`NativeSysregFilter` keeps MRS/MSR out of Python unless they name a register
the backend serves (the timer's): an OS kernel executes millions of others
(`mrs x0, sp_el0` for `current`, TPIDR_EL1 for per-CPU data), and a Python
callback for each of them cost Linux's boot more than half its time.

Both are compiled once with cffi (API mode) into a per-user cache; without a C
compiler, `NativeCounter.build()` raises and the backend falls back to counting
whole quanta (documented in docs/cpu-arm64.md).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["NativeCounter", "NativeSysregFilter", "CounterUnavailable"]

_SOURCE = r"""
#include <stdint.h>
typedef struct {
    uint64_t executed;      /* instructions retired since the last reset */
    uint64_t budget;        /* stop once executed reaches this */
    void *stop;             /* uc_emu_stop, as a plain pointer handed over from Python */
    void *reg_read;         /* uc_reg_read, likewise */
    uint64_t watch;         /* PSTATE mask bits of pending interrupts: stop once one is clear */
    int32_t pstate_reg;     /* unicorn's register id of PSTATE */
    int32_t unmasked;       /* set when the run stopped because a pending interrupt was unmasked */
    uint64_t block_start;   /* block mode: address of the current block */
    uint64_t block_base;    /* block mode: executed before it */
} cosim_counter;

typedef int (*cosim_stop_fn)(void *uc);
typedef int (*cosim_reg_read_fn)(void *uc, int regid, void *value);

/* Stops the run, and says so, once the budget is spent or a pending interrupt has been
   unmasked (a `watch` bit clear in PSTATE): the interrupt is then taken at once. */
static inline int cosim_stopping(void *uc, cosim_counter *c) {
    if (c->executed >= c->budget) {
        ((cosim_stop_fn)c->stop)(uc);
        return 1;
    }
    if (c->watch) {
        uint64_t pstate = 0;
        ((cosim_reg_read_fn)c->reg_read)(uc, c->pstate_reg, &pstate);
        if ((pstate & c->watch) != c->watch) {
            c->unmasked = 1;
            c->budget = c->executed;
            ((cosim_stop_fn)c->stop)(uc);
            return 1;
        }
    }
    return 0;
}

/* Called before each instruction: stopping here keeps that instruction from
   running, so `executed` is exactly the number of instructions retired. While
   an interrupt is pending but masked, PSTATE is checked too, so the interrupt
   is taken at the first instruction boundary after the guest unmasks it. */
void cosim_count(void *uc, uint64_t address, uint32_t size, void *data) {
    cosim_counter *c = (cosim_counter *)data;
    if (!cosim_stopping(uc, c))
        c->executed++;
}

/* Block hook: counts a whole translation block (A64: 4 bytes an instruction) when it
   starts, and stops before a block once the budget is spent, so a run may end up to one
   block past its budget. Unmasking (MSR DAIFClr, ERET) ends a translation block in QEMU,
   so checking PSTATE here is exact. A run that stops inside a block (an exception) is
   corrected from the PC with `block_start`/`block_base`. */
void cosim_count_block(void *uc, uint64_t address, uint32_t size, void *data) {
    cosim_counter *c = (cosim_counter *)data;
    if (cosim_stopping(uc, c))
        return;
    c->block_start = address;
    c->block_base = c->executed;
    c->executed += size / 4;
}

/* MRS/MSR/SYS hook: only encodings set in the bitmap reach Python. Layout as unicorn's
   uc_arm64_cp_reg. The key is the 16-bit op0:op1:CRn:CRm:op2 encoding. */
typedef struct { uint32_t crn, crm, op0, op1, op2; uint64_t val; } cosim_cp_reg;
typedef struct { uint8_t wanted[8192]; } cosim_sysregs;
static uint32_t cosim_sysreg_py(void *uc, int reg, cosim_cp_reg *cp, void *data);

uint32_t cosim_sysreg(void *uc, int reg, cosim_cp_reg *cp, void *data) {
    cosim_sysregs *f = (cosim_sysregs *)data;
    uint32_t key = ((cp->op0 & 3) << 14) | ((cp->op1 & 7) << 11) | ((cp->crn & 15) << 7) | ((cp->crm & 15) << 3) | (cp->op2 & 7);
    if (!(f->wanted[key >> 3] & (1u << (key & 7))))
        return 0;                   /* not ours: unicorn executes it */
    return cosim_sysreg_py(uc, reg, cp, data);
}
"""
_CDEF = """
typedef struct { uint64_t executed; uint64_t budget; void *stop; void *reg_read; uint64_t watch;
                 int32_t pstate_reg; int32_t unmasked; uint64_t block_start; uint64_t block_base; } cosim_counter;
void cosim_count_block(void *uc, uint64_t address, uint32_t size, void *data);
typedef struct { uint32_t crn, crm, op0, op1, op2; uint64_t val; } cosim_cp_reg;
typedef struct { uint8_t wanted[8192]; } cosim_sysregs;
extern "Python" uint32_t cosim_sysreg_py(void *uc, int reg, cosim_cp_reg *cp, void *data);
uint32_t cosim_sysreg(void *uc, int reg, cosim_cp_reg *cp, void *data);
void cosim_count(void *uc, uint64_t address, uint32_t size, void *data);
"""


class CounterUnavailable(RuntimeError):
    """The native counter could not be built (no C compiler?)."""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cosim" / "native"


def _load_module() -> Any:
    tag = hashlib.sha256((_SOURCE + _CDEF + sys.version).encode()).hexdigest()[:12]
    name = f"_cosim_uc_counter_{tag}"
    directory = _cache_dir()
    found = list(directory.glob(f"{name}*.so")) if directory.exists() else []
    if not found:
        try:
            from cffi import FFI

            builder = FFI()
            builder.cdef(_CDEF)
            builder.set_source(name, _SOURCE)
            directory.mkdir(parents=True, exist_ok=True)
            path = builder.compile(tmpdir=str(directory), verbose=False)
        except Exception as error:  # distutils/compiler errors have no common base
            raise CounterUnavailable(f"cannot build the native instruction counter: {error}") from error
        found = [Path(path)]
    spec = importlib.util.spec_from_file_location(name, found[0])
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _module() -> Any:
    if NativeCounter._module is None:
        NativeCounter._module = _load_module()
        # One Python entry point for every filter: dispatch on the filter's state pointer.
        @NativeCounter._module.ffi.def_extern(name="cosim_sysreg_py")
        def _sysreg(uc: Any, reg: int, cp: Any, data: Any) -> int:
            return NativeSysregFilter._handlers[int(NativeCounter._module.ffi.cast("uintptr_t", data))](reg, cp)
    return NativeCounter._module


def _add_hook(uc: Any, kind: int, fn: Any, data: Any, *extra: Any) -> None:
    from unicorn.unicorn_py3.unicorn import uclib

    hook = ctypes.c_size_t()
    # begin=1 > end=0 means "every address" for unicorn hooks.
    status = uclib.uc_hook_add(uc._uch, ctypes.byref(hook), kind, ctypes.c_void_p(fn), ctypes.c_void_p(data),
                               ctypes.c_uint64(1), ctypes.c_uint64(0), *extra)
    if status != 0:
        raise CounterUnavailable(f"uc_hook_add failed with unicorn error {status}")


class NativeSysregFilter:
    """Instruction `insn` (UC_ARM64_INS_MRS or _MSR) with one of the given (op0, op1, CRn,
    CRm, op2) encodings calls `handler(reg, cp)` (cp has op0..op2 and val, as in unicorn's
    own hook; return 1 when handled); all others run inside unicorn."""

    _handlers: dict[int, Any] = {}

    def __init__(self, uc: Any, insn: int, encodings: Any, handler: Any) -> None:
        from unicorn import UC_HOOK_INSN

        module = _module()
        ffi, lib = module.ffi, module.lib
        self._state = ffi.new("cosim_sysregs *")
        for op0, op1, crn, crm, op2 in encodings:
            key = (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2
            self._state.wanted[key >> 3] |= 1 << (key & 7)
        data = int(ffi.cast("uintptr_t", self._state))
        NativeSysregFilter._handlers[data] = handler
        fn = int(ffi.cast("uintptr_t", ffi.addressof(lib, "cosim_sysreg")))
        _add_hook(uc, UC_HOOK_INSN, fn, data, ctypes.c_int(insn))
        self._uc = uc    # hooks live as long as the engine; `_state` lives with them

    def close(self) -> None:
        NativeSysregFilter._handlers.pop(int(_module().ffi.cast("uintptr_t", self._state)), None)


class NativeCounter:
    """Counts the instructions unicorn executes and stops it at a budget.

    `per_block=False`: a hook before every instruction; exact, but unicorn then leaves
    its generated code once per instruction. `per_block=True`: a hook per translation
    block, ~2x faster on Linux; a run may overshoot its budget by up to one block, and a
    device access in the middle of a block sees the time at the block's end.
    """

    _module: Any = None

    def __init__(self, uc: Any, per_block: bool = False) -> None:
        module = _module()
        from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE
        from unicorn import arm64_const as A
        from unicorn.unicorn_py3.unicorn import uclib

        self._ffi, self._lib = module.ffi, module.lib
        self._state = self._ffi.new("cosim_counter *")
        # uc_emu_stop's address, called from C; the library stays loaded for the process.
        self._state.stop = self._ffi.cast("void *", ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value)
        self._state.reg_read = self._ffi.cast("void *", ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value)
        self._state.pstate_reg = A.UC_ARM64_REG_PSTATE
        self._state.budget = 1 << 63
        self.per_block = per_block
        name, kind = ("cosim_count_block", UC_HOOK_BLOCK) if per_block else ("cosim_count", UC_HOOK_CODE)
        hook_fn = int(self._ffi.cast("uintptr_t", self._ffi.addressof(self._lib, name)))
        _add_hook(uc, kind, hook_fn, int(self._ffi.cast("uintptr_t", self._state)))
        self._uc = uc  # the hook lives as long as the engine; keep `_state` alive with it

    def arm(self, budget: int, watch: int = 0) -> None:
        """Count from 0 up to `budget`; with `watch` (PSTATE mask bits of pending
        interrupts), also stop before the first instruction that runs with one clear."""
        self._state.executed = 0
        self._state.budget = max(1, budget)
        self._state.watch = watch
        self._state.unmasked = 0

    def rewind(self, pc: int) -> None:
        """The run stopped inside a block with the PC at `pc` (the next instruction to run):
        count only the block's instructions before it."""
        self._state.executed = self.executed_before(pc)

    def executed_before(self, pc: int) -> int:
        """Instructions retired before the one at `pc` in this run (per-block counting counts a
        block when it starts: within it, the position of `pc` says how many really ran)."""
        state = self._state
        if not self.per_block:
            return int(state.executed)
        start, base = int(state.block_start), int(state.block_base)
        if start <= pc <= start + 4 * (int(state.executed) - base):
            return base + (pc - start) // 4
        return int(state.executed)

    @property
    def unmasked(self) -> bool:
        return bool(self._state.unmasked)

    @property
    def executed(self) -> int:
        return int(self._state.executed)

    @property
    def budget(self) -> int:
        return int(self._state.budget)

    @budget.setter
    def budget(self, value: int) -> None:
        """Change the budget mid-run: `executed` or less stops before the next instruction."""
        self._state.budget = max(0, value)
