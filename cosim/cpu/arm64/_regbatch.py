"""Unicorn registers read or written in one native call (`uc_reg_read_batch` / `uc_reg_write_batch`).

The binding's `reg_read`/`reg_write` cost 3-5 us a register (a class lookup by
register range, fresh ctypes objects, a byref per call); exception entry alone
touched 16 registers that way. A `RegisterBatch` is a fixed list of registers
whose ids, value slots and pointers are built once: a read or write of the whole
list is one foreign call plus a loop over the slots. The call goes through
function pointers with no argument types and arguments converted once (~0.35 us
a call here, against ~1 us through the binding's prototypes, which convert and
check each argument every time).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from unicorn import UcError
from unicorn import arm64_const as A
from unicorn.unicorn_py3.unicorn import uclib

__all__ = ["RegisterBatch", "SysReg"]

SysReg = tuple[int, int, int, int, int]      # (op0, op1, CRn, CRm, op2), as for Uc.cpr_read


class _CpReg(ctypes.Structure):
    """unicorn's uc_arm64_cp_reg: the encoding of a system register and its value."""

    _fields_ = [("crn", ctypes.c_uint32), ("crm", ctypes.c_uint32), ("op0", ctypes.c_uint32),
                ("op1", ctypes.c_uint32), ("op2", ctypes.c_uint32), ("value", ctypes.c_uint64)]


# The batch calls without argtypes (`CDLL[name]` makes a fresh function pointer each time; the
# binding's own have argtypes): the arguments are ctypes objects made once, passed as they are.
_read_batch = uclib["uc_reg_read_batch"]
_write_batch = uclib["uc_reg_write_batch"]

# Registers unicorn reads and writes as 32 bits (the rest of those used here are 64).
_WORDS = {A.UC_ARM64_REG_PSTATE, A.UC_ARM64_REG_NZCV}


class RegisterBatch:
    """`registers` (unicorn register ids, or `SysReg` encodings) of the engine `uc`, read or written
    together, in their order. Writes happen in list order, as separate `reg_write`s would."""

    def __init__(self, uc: Any, registers: Sequence[int | SysReg]) -> None:
        slots: list[Any] = []
        ids = []
        for register in registers:
            if isinstance(register, tuple):
                op0, op1, crn, crm, op2 = register
                slots.append(_CpReg(crn=crn, crm=crm, op0=op0, op1=op1, op2=op2))
                ids.append(A.UC_ARM64_REG_CP_REG)
            else:
                slots.append(ctypes.c_uint32() if register in _WORDS else ctypes.c_uint64())
                ids.append(register)
        self._count = len(slots)
        self._slots = slots
        self._ids = (ctypes.c_int * self._count)(*ids)
        # The slots live as long as the batch: the pointers to them stay valid.
        self._pointers = (ctypes.c_void_p * self._count)(*(ctypes.addressof(slot) for slot in slots))
        self._uc = uc                 # keeps the engine (and so its handle) alive with the batch
        self._args = (uc._uch, ctypes.c_void_p(ctypes.addressof(self._ids)),
                      ctypes.c_void_p(ctypes.addressof(self._pointers)), ctypes.c_int(self._count))

    def read(self) -> list[int]:
        status = _read_batch(*self._args)
        if status:
            raise UcError(status)
        return [slot.value for slot in self._slots]

    def write(self, values: Sequence[int]) -> None:
        for slot, value in zip(self._slots, values, strict=True):
            slot.value = value
        status = _write_batch(*self._args)
        if status:
            raise UcError(status)
