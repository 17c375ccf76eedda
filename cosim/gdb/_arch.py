"""Register layouts and target descriptions (gdb manual, G "Target Descriptions").

An `Arch` is gdb's architecture name and a list of features, each a list of
registers in the order gdb numbers them; the target description XML is made
from the same list, so the `g` packet layout and the XML cannot disagree.
The feature and register names are the ones gdb's own descriptions use
(features/aarch64-core.xml, aarch64-fpu.xml, i386/64bit-core.xml, 64bit-sse.xml).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Register", "Feature", "Arch", "AARCH64_CORE", "AARCH64_FPU", "X86_64_CORE", "X86_64_SSE",
           "X86_64_SEGMENTS", "arch"]


@dataclass(frozen=True)
class Register:
    name: str
    bits: int
    type: str = "int"
    group: str = ""


@dataclass(frozen=True)
class Feature:
    name: str
    registers: tuple[Register, ...]


@dataclass(frozen=True)
class Arch:
    architecture: str                  # gdb's name: "aarch64", "i386:x86-64"
    features: tuple[Feature, ...]
    registers: tuple[Register, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "registers", tuple(r for f in self.features for r in f.registers))

    def number(self, name: str) -> int:
        return next(i for i, reg in enumerate(self.registers) if reg.name == name)

    def xml(self) -> str:
        lines = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">', "<target>",
                 f"  <architecture>{self.architecture}</architecture>"]
        number = 0
        for feature in self.features:
            lines.append(f'  <feature name="{feature.name}">')
            for reg in feature.registers:
                group = f' group="{reg.group}"' if reg.group else ""
                lines.append(f'    <reg name="{reg.name}" bitsize="{reg.bits}" type="{reg.type}" '
                             f'regnum="{number}"{group}/>')
                number += 1
            lines.append("  </feature>")
        lines.append("</target>")
        return "\n".join(lines) + "\n"


AARCH64_CORE = Feature("org.gnu.gdb.aarch64.core", (
    *(Register(f"x{i}", 64) for i in range(31)),
    Register("sp", 64, "data_ptr"), Register("pc", 64, "code_ptr"), Register("cpsr", 32)))
AARCH64_FPU = Feature("org.gnu.gdb.aarch64.fpu", (
    *(Register(f"v{i}", 128, "uint128", "vector") for i in range(32)),
    Register("fpsr", 32, "int", "float"), Register("fpcr", 32, "int", "float")))

_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", *(f"r{i}" for i in range(8, 16)))
X86_64_CORE = Feature("org.gnu.gdb.i386.core", (
    *(Register(name, 64, "data_ptr" if name in ("rbp", "rsp") else "int64") for name in _GPRS),
    Register("rip", 64, "code_ptr"), Register("eflags", 32, "int32"),
    *(Register(name, 32, "int32") for name in ("cs", "ss", "ds", "es", "fs", "gs")),
    *(Register(f"st{i}", 80, "i387_ext") for i in range(8)),
    *(Register(name, 32, "int", "float") for name in ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg",
                                                      "fooff", "fop"))))
X86_64_SSE = Feature("org.gnu.gdb.i386.sse", (
    *(Register(f"xmm{i}", 128, "uint128", "vector") for i in range(16)), Register("mxcsr", 32, "int", "vector")))
X86_64_SEGMENTS = Feature("org.gnu.gdb.i386.segments", (
    Register("fs_base", 64, "int"), Register("gs_base", 64, "int")))


def arch(architecture: str, *features: Feature) -> Arch:
    return Arch(architecture, tuple(features))
