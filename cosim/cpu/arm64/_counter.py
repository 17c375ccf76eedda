"""An exact instruction counter for unicorn, as a native code hook.

Unicorn's own `count=` budget counts instructions internally but does not say
how many ran when emulation stops early (WFI, a device access that ends the
quantum). This tiny C hook does the same counting where we can read it, so a
device touched mid-quantum sees the exact local time of the guest. It costs
what unicorn's `count=` costs (one native call per instruction).

It is compiled once with cffi (API mode) into a per-user cache; without a C
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

__all__ = ["NativeCounter", "CounterUnavailable"]

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
} cosim_counter;

typedef int (*cosim_stop_fn)(void *uc);
typedef int (*cosim_reg_read_fn)(void *uc, int regid, void *value);

/* Called before each instruction: stopping here keeps that instruction from
   running, so `executed` is exactly the number of instructions retired. While
   an interrupt is pending but masked, PSTATE is checked too, so the interrupt
   is taken at the first instruction boundary after the guest unmasks it. */
void cosim_count(void *uc, uint64_t address, uint32_t size, void *data) {
    cosim_counter *c = (cosim_counter *)data;
    if (c->executed >= c->budget) {
        ((cosim_stop_fn)c->stop)(uc);
        return;
    }
    if (c->watch) {
        uint64_t pstate = 0;
        ((cosim_reg_read_fn)c->reg_read)(uc, c->pstate_reg, &pstate);
        if ((pstate & c->watch) != c->watch) {
            c->unmasked = 1;
            c->budget = c->executed;
            ((cosim_stop_fn)c->stop)(uc);
            return;
        }
    }
    c->executed++;
}
"""
_CDEF = """
typedef struct { uint64_t executed; uint64_t budget; void *stop; void *reg_read; uint64_t watch;
                 int32_t pstate_reg; int32_t unmasked; } cosim_counter;
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


class NativeCounter:
    """Counts the instructions unicorn executes and stops it at a budget."""

    _module: Any = None

    def __init__(self, uc: Any) -> None:
        if NativeCounter._module is None:
            NativeCounter._module = _load_module()
        module = NativeCounter._module
        from unicorn import UC_HOOK_CODE
        from unicorn import arm64_const as A
        from unicorn.unicorn_py3.unicorn import uclib

        self._ffi, self._lib = module.ffi, module.lib
        self._state = self._ffi.new("cosim_counter *")
        # uc_emu_stop's address, called from C; the library stays loaded for the process.
        self._state.stop = self._ffi.cast("void *", ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value)
        self._state.reg_read = self._ffi.cast("void *", ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value)
        self._state.pstate_reg = A.UC_ARM64_REG_PSTATE
        self._state.budget = 1 << 63
        hook = ctypes.c_size_t()
        hook_fn = int(self._ffi.cast("uintptr_t", self._ffi.addressof(self._lib, "cosim_count")))
        data = int(self._ffi.cast("uintptr_t", self._state))
        # begin=1 > end=0 means "every address" for unicorn hooks.
        status = uclib.uc_hook_add(uc._uch, ctypes.byref(hook), UC_HOOK_CODE, ctypes.c_void_p(hook_fn),
                                   ctypes.c_void_p(data), ctypes.c_uint64(1), ctypes.c_uint64(0))
        if status != 0:
            raise CounterUnavailable(f"uc_hook_add failed with unicorn error {status}")
        self._uc = uc  # the hook lives as long as the engine; keep `_state` alive with it

    def arm(self, budget: int, watch: int = 0) -> None:
        """Count from 0 up to `budget`; with `watch` (PSTATE mask bits of pending
        interrupts), also stop before the first instruction that runs with one clear."""
        self._state.executed = 0
        self._state.budget = max(1, budget)
        self._state.watch = watch
        self._state.unmasked = 0

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
