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

On cosim's patched unicorn (cosim.patched_unicorn) the counters' common case runs inside the
translated code and the hook only when a run must stop; the released library calls it every time.

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
import weakref
from pathlib import Path
from typing import Any

__all__ = ["NativeCounter", "NativeSysregFilter", "NativeUart", "CounterUnavailable"]

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
    int32_t per_block;      /* counting per block (else per instruction) */
    int32_t pc_reg;         /* unicorn's register id of PC */
    void *reg_write;        /* uc_reg_write */
    /* Local time of the run (the backend's, see unicorn_cpu.py): (done + executed) * period + extra. */
    int64_t done;           /* instructions of the earlier passes of this run */
    int64_t extra;          /* ps added to local time in this run: poll skips, carried overrun */
    int64_t period;         /* ps an instruction takes */
    int64_t limit;          /* the run's budget in instructions */
    int64_t span;           /* the run's budget in ps */
    /* Polling streak: up to four sources read again and again, nothing written in between. */
    uint64_t poll_keys[4];
    int32_t poll_count;     /* 0: no streak */
    int32_t stopping;       /* the run is ending (an event is now due inside it): no native reads */
    int64_t poll_at;        /* done + executed at the last poll read */
    int64_t poll_skip;      /* the last skip (ps) */
    int64_t max_poll_skip;
    /* The generic counter, read natively at EL1 (0 = off): CNTxCT = now * num / den. */
    uint64_t cnt_num, cnt_den;
    uint64_t start, end;    /* the quantum, in ps of simulated time */
    uint64_t now;           /* the kernel's clock as the backend's syncs have left it */
    int32_t abandoned;      /* a watchpoint stopped the instruction: its device accesses are dropped */
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

static inline int64_t cosim_remaining(cosim_counter *c) {
    return c->limit - c->done - c->extra / c->period;
}

/* Python's _poll_step, here so that native counter reads and Python's device reads share one
   streak: a source read again within 256 instructions, nothing written in between, moves local
   time on by a skip doubling from 1 us up to max_poll_skip, bounded by the budget. */
void cosim_poll_step(cosim_counter *c, uint64_t key) {
    int64_t done = c->done + (int64_t)c->executed;
    int i, known = 0;
    for (i = 0; i < c->poll_count; i++)
        known |= c->poll_keys[i] == key;
    if (done - c->poll_at >= 256 || c->poll_count == 0) {
        c->poll_keys[0] = key;
        c->poll_count = 1;
        c->poll_skip = 0;
    } else if (!known) {
        if (c->poll_count >= 4) {
            c->poll_count = 0;
            c->poll_skip = 0;
        }
        c->poll_keys[c->poll_count++] = key;
    } else {
        int64_t skip = 2 * c->poll_skip > 1000000 ? 2 * c->poll_skip : 1000000;
        int64_t left = c->span - (done * c->period + c->extra);
        if (skip > c->max_poll_skip)
            skip = c->max_poll_skip;
        if (skip > left)
            skip = left;
        if (skip > 0) {
            int64_t remaining;
            c->poll_skip = skip;
            c->extra += skip;
            /* End the run at the next boundary if the skip used the budget up. */
            remaining = cosim_remaining(c);
            c->budget = remaining > (int64_t)c->executed ? (uint64_t)remaining : c->executed;
        }
    }
    c->poll_at = done;
}

/* What the backend's sync before a device access leaves the kernel's clock at (Keeper.sync):
   local time at the end of the block (or instruction), clamped to the quantum. */
static inline void cosim_sync(cosim_counter *c) {
    uint64_t t = c->start + (uint64_t)(c->done + (int64_t)c->executed) * c->period + c->extra;
    if (t > c->end)
        t = c->end;
    if (t > c->now)
        c->now = t;
}

/* Instructions retired before the one at `pc` in this pass (see NativeCounter.executed_before). */
static inline uint64_t cosim_executed_before(cosim_counter *c, uint64_t pc) {
    if (c->per_block && c->block_start <= pc && pc <= c->block_start + 4 * (c->executed - c->block_base))
        return c->block_base + (pc - c->block_start) / 4;
    return c->executed;
}

typedef int (*cosim_reg_write_fn)(void *uc, int regid, const void *value);

/* CNTPCT_EL0/CNTVCT_EL0 read at EL1, answered as the timer model would after the backend's sync:
   local time at this instruction (after the poll step), clamped to the quantum, never behind the
   clock. EL0 reads (CNTKCTL_EL1 decides) and reads in a run that is ending go to Python. */
static int cosim_counter_read(void *uc, int reg, uint32_t key, cosim_counter *c) {
    uint64_t pstate = 0, pc = 0, t, value;
    if (c->cnt_den == 0 || c->stopping)
        return 0;
    ((cosim_reg_read_fn)c->reg_read)(uc, c->pstate_reg, &pstate);
    if (((pstate >> 2) & 3) == 0)
        return 0;
    ((cosim_reg_read_fn)c->reg_read)(uc, c->pc_reg, &pc);
    cosim_poll_step(c, (1ull << 63) | key);
    t = c->start + (uint64_t)(c->done + (int64_t)cosim_executed_before(c, pc)) * c->period + c->extra;
    if (t > c->end)
        t = c->end;
    if (t > c->now)
        c->now = t;
    value = (uint64_t)((unsigned __int128)c->now * c->cnt_num / c->cnt_den);
    ((cosim_reg_write_fn)c->reg_write)(uc, reg, &value);
    return 1;
}

/* A PL011's hot registers without Python (the model stays the owner of its state): UARTFR reads
   answer the value the model gave at the last refresh (it changes only on accesses that reach the
   model, or between runs); UARTDR writes are queued while the model says a write would only send
   its byte (Pl011.tx_only), and delivered to it in order before anything else reaches it. Both
   take part in the polling streak as the Python accesses do. */
#define COSIM_UART_QUEUE 256
typedef struct {
    cosim_counter *counter;
    uint64_t base;
    int32_t fast;           /* 0: every access goes to Python (a tracer is on the bus, ...) */
    int32_t tx_only;
    uint32_t fr;            /* UARTFR */
    uint32_t queued;
    uint8_t sizes[COSIM_UART_QUEUE];
    uint32_t values[COSIM_UART_QUEUE];
} cosim_uart;
static uint64_t cosim_uart_read_py(void *uc, uint64_t offset, unsigned size, void *data);
static void cosim_uart_write_py(void *uc, uint64_t offset, unsigned size, uint64_t value, void *data);

uint64_t cosim_uart_read(void *uc, uint64_t offset, unsigned size, void *data) {
    cosim_uart *u = (cosim_uart *)data;
    if (u->counter->abandoned)
        return 0;                       /* as the backend's _mmio_read: the device never sees it */
    if (offset == 0x18 && u->fast && (size == 1 || size == 2 || size == 4)) {
        cosim_poll_step(u->counter, u->base + offset);
        cosim_sync(u->counter);
        return size == 4 ? u->fr : u->fr & ((1u << (8 * size)) - 1);
    }
    return cosim_uart_read_py(uc, offset, size, data);
}

void cosim_uart_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *data) {
    cosim_uart *u = (cosim_uart *)data;
    if (u->counter->abandoned)
        return;
    if (offset == 0 && u->fast && u->tx_only && u->queued < COSIM_UART_QUEUE && (size == 1 || size == 2 || size == 4)) {
        u->counter->poll_count = 0;     /* a write ends the polling streak */
        cosim_sync(u->counter);
        u->sizes[u->queued] = (uint8_t)size;
        u->values[u->queued++] = (uint32_t)value;
        return;
    }
    cosim_uart_write_py(uc, offset, size, value, data);
}

/* A memory hook that is never called (see NativeCounter.static_code): it declines, as if absent. */
_Bool cosim_mem_never(void *uc, int type, uint64_t address, int size, int64_t value, void *data) {
    return 0;
}

/* MRS/MSR/SYS hook: only encodings set in the bitmap reach Python. Layout as unicorn's
   uc_arm64_cp_reg. The key is the 16-bit op0:op1:CRn:CRm:op2 encoding. */
typedef struct { uint32_t crn, crm, op0, op1, op2; uint64_t val; } cosim_cp_reg;
typedef struct { uint8_t wanted[8192]; uint8_t counter[8192]; cosim_counter *native; } cosim_sysregs;
static uint32_t cosim_sysreg_py(void *uc, int reg, cosim_cp_reg *cp, void *data);

uint32_t cosim_sysreg(void *uc, int reg, cosim_cp_reg *cp, void *data) {
    cosim_sysregs *f = (cosim_sysregs *)data;
    uint32_t key = ((cp->op0 & 3) << 14) | ((cp->op1 & 7) << 11) | ((cp->crn & 15) << 7) | ((cp->crm & 15) << 3) | (cp->op2 & 7);
    if (!(f->wanted[key >> 3] & (1u << (key & 7))))
        return 0;                   /* not ours: unicorn executes it */
    if ((f->counter[key >> 3] & (1u << (key & 7))) && cosim_counter_read(uc, reg, key, f->native))
        return 1;
    return cosim_sysreg_py(uc, reg, cp, data);
}
"""
_CDEF = """
typedef struct { uint64_t executed; uint64_t budget; void *stop; void *reg_read; uint64_t watch;
                 int32_t pstate_reg; int32_t unmasked; uint64_t block_start; uint64_t block_base;
                 int32_t per_block; int32_t pc_reg; void *reg_write;
                 int64_t done; int64_t extra; int64_t period; int64_t limit; int64_t span;
                 uint64_t poll_keys[4]; int32_t poll_count; int32_t stopping; int64_t poll_at; int64_t poll_skip;
                 int64_t max_poll_skip; uint64_t cnt_num, cnt_den; uint64_t start, end; uint64_t now;
                 int32_t abandoned; } cosim_counter;
void cosim_count_block(void *uc, uint64_t address, uint32_t size, void *data);
void cosim_poll_step(cosim_counter *c, uint64_t key);
typedef struct { uint32_t crn, crm, op0, op1, op2; uint64_t val; } cosim_cp_reg;
typedef struct { uint8_t wanted[8192]; uint8_t counter[8192]; cosim_counter *native; } cosim_sysregs;
extern "Python" uint32_t cosim_sysreg_py(void *uc, int reg, cosim_cp_reg *cp, void *data);
typedef struct { cosim_counter *counter; uint64_t base; int32_t fast; int32_t tx_only; uint32_t fr; uint32_t queued;
                 uint8_t sizes[256]; uint32_t values[256]; } cosim_uart;
extern "Python" uint64_t cosim_uart_read_py(void *uc, uint64_t offset, unsigned size, void *data);
extern "Python" void cosim_uart_write_py(void *uc, uint64_t offset, unsigned size, uint64_t value, void *data);
uint64_t cosim_uart_read(void *uc, uint64_t offset, unsigned size, void *data);
void cosim_uart_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *data);
uint32_t cosim_sysreg(void *uc, int reg, cosim_cp_reg *cp, void *data);
void cosim_count(void *uc, uint64_t address, uint32_t size, void *data);
_Bool cosim_mem_never(void *uc, int type, uint64_t address, int size, int64_t value, void *data);
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
        ffi = NativeCounter._module.ffi

        @ffi.def_extern(name="cosim_sysreg_py")
        def _sysreg(uc: Any, reg: int, cp: Any, data: Any) -> int:
            handler = NativeSysregFilter._handlers[int(ffi.cast("uintptr_t", data))]()
            return 0 if handler is None else handler(reg, cp)

        @ffi.def_extern(name="cosim_uart_read_py")
        def _uart_read(uc: Any, offset: int, size: int, data: Any) -> int:
            uart = NativeUart._uarts[int(ffi.cast("uintptr_t", data))]()
            return 0 if uart is None else uart.on_read(offset, size)

        @ffi.def_extern(name="cosim_uart_write_py")
        def _uart_write(uc: Any, offset: int, size: int, value: int, data: Any) -> None:
            uart = NativeUart._uarts[int(ffi.cast("uintptr_t", data))]()
            if uart is not None:
                uart.on_write(offset, size, value)
    return NativeCounter._module


def _add_hook(uc: Any, kind: int, fn: Any, data: Any, *extra: Any, begin: int = 1, end: int = 0) -> None:
    from unicorn.unicorn_py3.unicorn import uclib

    hook = ctypes.c_size_t()
    # begin=1 > end=0 means "every address" for unicorn hooks.
    status = uclib.uc_hook_add(uc._uch, ctypes.byref(hook), kind, ctypes.c_void_p(fn), ctypes.c_void_p(data),
                               ctypes.c_uint64(begin), ctypes.c_uint64(end), *extra)
    if status != 0:
        raise CounterUnavailable(f"uc_hook_add failed with unicorn error {status}")


class NativeSysregFilter:
    """Instruction `insn` (UC_ARM64_INS_MRS or _MSR) with one of the given (op0, op1, CRn,
    CRm, op2) encodings calls `handler(reg, cp)` (cp has op0..op2 and val, as in unicorn's
    own hook; return 1 when handled); all others run inside unicorn."""

    _handlers: dict[int, Any] = {}

    def __init__(self, uc: Any, insn: int, encodings: Any, handler: Any, counter: "NativeCounter | None" = None,
                 counter_encodings: Any = ()) -> None:
        from unicorn import UC_HOOK_INSN

        module = _module()
        ffi, lib = module.ffi, module.lib
        self._state = ffi.new("cosim_sysregs *")
        for op0, op1, crn, crm, op2 in encodings:
            key = (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2
            self._state.wanted[key >> 3] |= 1 << (key & 7)
        # Counter reads `counter` answers natively at EL1 (NativeCounter.serve_counter).
        if counter is not None:
            self._state.native = counter._state
            for op0, op1, crn, crm, op2 in counter_encodings:
                key = (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2
                self._state.counter[key >> 3] |= 1 << (key & 7)
            self._counter = counter       # its state outlives the hook's pointer to it
        data = int(ffi.cast("uintptr_t", self._state))
        # Weakly: a class-wide table holding the backend's bound method kept every platform that
        # was not close()d alive (~1.3 GB of address space each); the entry goes with the filter.
        NativeSysregFilter._handlers[data] = weakref.WeakMethod(handler)
        weakref.finalize(self, NativeSysregFilter._handlers.pop, data, None)
        fn = int(ffi.cast("uintptr_t", ffi.addressof(lib, "cosim_sysreg")))
        _add_hook(uc, UC_HOOK_INSN, fn, data, ctypes.c_int(insn))
        self._uc = uc    # hooks live as long as the engine; `_state` lives with them

    def close(self) -> None:
        NativeSysregFilter._handlers.pop(int(_module().ffi.cast("uintptr_t", self._state)), None)


class NativeUart:
    """A PL011's registers mapped into unicorn with native callbacks (`cosim_uart_read/_write`).

    UARTFR reads and UARTDR writes that only send a byte stay in C; every other access calls
    `read(offset, size)` / `write(offset, size, value)` (the backend's usual device access), after
    `deliver` has handed the queued writes to `model` in order. `refresh()` takes the model's
    UARTFR and `tx_only()` again: at the start of a run and after each access that reached it.
    """

    _uarts: dict[int, Any] = {}

    def __init__(self, uc: Any, counter: "NativeCounter", base: int, size: int, model: Any, bus: Any,
                 read: Any, write: Any) -> None:
        from unicorn.unicorn_py3.unicorn import uclib

        module = _module()
        ffi, lib = module.ffi, module.lib
        self._ffi, self.model, self.bus, self.base = ffi, model, bus, base
        self._read, self._write = read, write
        self._state = ffi.new("cosim_uart *")
        self._state.counter = counter._state
        self._state.base = base
        data = int(ffi.cast("uintptr_t", self._state))
        NativeUart._uarts[data] = weakref.ref(self)
        weakref.finalize(self, NativeUart._uarts.pop, data, None)
        read_fn = int(ffi.cast("uintptr_t", ffi.addressof(lib, "cosim_uart_read")))
        write_fn = int(ffi.cast("uintptr_t", ffi.addressof(lib, "cosim_uart_write")))
        status = uclib.uc_mmio_map(uc._uch, base, size, ctypes.c_void_p(read_fn), ctypes.c_void_p(data),
                                   ctypes.c_void_p(write_fn), ctypes.c_void_p(data))
        if status != 0:
            raise CounterUnavailable(f"uc_mmio_map failed with unicorn error {status}")
        self._counter, self._uc = counter, uc   # the callbacks' state lives as long as the engine

    def refresh(self) -> None:
        """Take UARTFR and whether UARTDR writes may be queued from the model; nothing is served
        natively while something (a tracer) stands between the bus and the model."""
        state = self._state
        mapping = self.bus.find(self.base)
        state.fast = mapping is not None and mapping.target is self.model
        if state.fast:
            state.fr = self.model.debug_read(0x18, 4)
            state.tx_only = self.model.tx_only()

    def deliver(self) -> None:
        """Hand the queued UARTDR writes to the model, in order: plain bytes in one `transmit` call
        when the model has one (Linux's console: ~12,600 bytes per boot in ~1,600 flushes), else (a
        value wider than a byte, which the model may warn about) each through the bus."""
        state = self._state
        count, state.queued = int(state.queued), 0
        if not count:
            return
        values = self._ffi.unpack(state.values, count)
        transmit = getattr(self.model, "transmit", None)
        if transmit is not None and max(values) <= 0xFF:
            transmit(bytes(values))
            return
        for size, value in zip(self._ffi.unpack(state.sizes, count), values):
            self.bus.write(self.base, size, value)

    def on_read(self, offset: int, size: int) -> int:
        self.deliver()
        value = self._read(offset, size)
        self.refresh()
        return value

    def on_write(self, offset: int, size: int, value: int) -> None:
        self.deliver()
        self._write(offset, size, value)
        self.refresh()


class _Field:
    """A field of a native object's `_state`, as a Python int."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else int(getattr(obj._state, self.name))

    def __set__(self, obj: Any, value: int) -> None:
        setattr(obj._state, self.name, value)


class _CosimCounter(ctypes.Structure):
    """uc_cosim_counter of cosim/patched_unicorn/fast-paths.patch."""
    _fields_ = [*((name, ctypes.c_void_p) for name in ("executed", "budget", "watch", "block_start", "block_base")),
                ("per_instruction", ctypes.c_bool)]


def _use_patched_fast_paths(uclib: Any, uc: Any, ffi: Any, state: Any, per_block: bool) -> None:
    """On cosim's patched unicorn (cosim.patched_unicorn), hand it the counter's fields, so that the
    translated code counts a block (or an instruction) itself while the budget lasts and no interrupt
    is watched (cosim_count_block's and cosim_count's common case, the same stores), and say that our
    MMIO callbacks never stop a run (they end it at the next boundary through the budget): no exit
    check after loads and stores unless a memory hook is installed. Nothing on the released library."""
    configure = getattr(uclib, "uc_cosim_configure", None)
    if configure is None:
        from ...patched_unicorn import report_fallback

        report_fallback()
        return
    counter = _CosimCounter(*(int(ffi.cast("uintptr_t", ffi.addressof(state, name)))
                              for name, _ in _CosimCounter._fields_[:-1]), not per_block)
    configure.argtypes = [ctypes.c_void_p, ctypes.POINTER(_CosimCounter), ctypes.c_bool]
    configure.restype = ctypes.c_int
    status = configure(uc._uch, ctypes.byref(counter), True)
    if status != 0:
        raise CounterUnavailable(f"uc_cosim_configure failed with unicorn error {status}")


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
        self._state.reg_write = self._ffi.cast("void *", ctypes.cast(uclib.uc_reg_write, ctypes.c_void_p).value)
        self._state.pstate_reg = A.UC_ARM64_REG_PSTATE
        self._state.pc_reg = A.UC_ARM64_REG_PC
        self._state.budget = 1 << 63
        self._state.per_block = per_block
        self._state.period = 1
        self.per_block = per_block
        name, kind = ("cosim_count_block", UC_HOOK_BLOCK) if per_block else ("cosim_count", UC_HOOK_CODE)
        hook_fn = int(self._ffi.cast("uintptr_t", self._ffi.addressof(self._lib, name)))
        _add_hook(uc, kind, hook_fn, int(self._ffi.cast("uintptr_t", self._state)))
        self._uc = uc  # the hook lives as long as the engine; keep `_state` alive with it
        _use_patched_fast_paths(uclib, uc, self._ffi, self._state, per_block)

    def arm(self, budget: int, watch: int = 0) -> None:
        """Count from 0 up to `budget`; with `watch` (PSTATE mask bits of pending
        interrupts), also stop before the first instruction that runs with one clear."""
        self._state.executed = 0
        self._state.budget = max(1, budget)
        self._state.watch = watch
        self._state.unmasked = 0

    def static_code(self, begin: int, end: int) -> None:
        """Code at virtual addresses [begin, end] is patched only through other mappings (an OS
        kernel's text): spare unicorn's TLB scan after each translation there.

        After translating a block, unicorn re-arms the store slow path for the block's virtual
        page by scanning the whole TLB (`tlb_reset_dirty_by_vaddr`, 8% of Linux's boot), unless a
        memory hook covers the block's address. A hook that is never called (UC_HOOK_MEM_READ_PROT:
        all guest memory is readable) covers the range: unicorn then skips the scan there, and
        also never lets a store to the range take the fast path, so a store through these same
        addresses still invalidates the code it overwrites (on every store, not only the first).
        Stores through other mappings are seen as before."""
        from unicorn import UC_HOOK_MEM_READ_PROT

        fn = int(self._ffi.cast("uintptr_t", self._ffi.addressof(self._lib, "cosim_mem_never")))
        _add_hook(self._uc, UC_HOOK_MEM_READ_PROT, fn, 0, begin=begin, end=end)

    def begin_run(self, start: int, budget: int, period: int, extra: int, max_poll_skip: int) -> None:
        """A run of `budget` ps from simulated time `start` (instructions of `period` ps), local time
        starting at `extra` (carried overrun): no passes done yet, no polling streak."""
        state = self._state
        state.start, state.end, state.now, state.span = start, start + budget, start, budget
        state.period, state.max_poll_skip = period, max_poll_skip
        state.limit = max(1, budget // period)
        state.done, state.extra = 0, extra
        state.poll_count = 0
        state.stopping = 0

    def serve_counter(self, numerator: int, denominator: int) -> None:
        """Answer CNTPCT/CNTVCT reads at EL1 natively as `now * numerator // denominator` (the
        timer model's own formula, `GenericTimer.counter_ratio`), instead of calling Python."""
        self._state.cnt_num, self._state.cnt_den = numerator, denominator

    def synced(self, time: int) -> None:
        """The backend brought the kernel's clock to `time` (clamped to the quantum, as the keeper does)."""
        state = self._state
        state.now = max(int(state.now), min(time, int(state.end)))

    def ending(self) -> None:
        """The run ends at the next boundary (an event is due inside it): no native reads until the next."""
        self._state.stopping = 1

    def poll_step(self, key: int) -> None:
        """One read of polling source `key` (see cosim_poll_step)."""
        self._lib.cosim_poll_step(self._state, key)

    def poll_reset(self) -> None:
        """A write: the guest is not just waiting, the streak ends."""
        self._state.poll_count = 0

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

    def stopped_before(self, pc: int) -> None:
        """A code hook added after this counter's stopped the run before the instruction at `pc`:
        per instruction, this counter's hook (called first) has already counted it."""
        if self.per_block:
            self.rewind(pc)
        else:
            self._state.executed = max(0, int(self._state.executed) - 1)

    # The run's local time, kept natively (see begin_run).
    done = _Field("instructions of the earlier passes of this run")
    extra = _Field("time (ps) added to local time in this run: poll skips, carried overrun")
    limit = _Field("the run's budget in instructions")
    abandoned = _Field("a watchpoint stopped the instruction: its device accesses are dropped")

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
