"""Arm Generic Interrupt Controller v2, after the architecture specification Arm IHI 0048B.

One `Gicv2` holds the state; the bus sees it through per-CPU views, because the
banked registers (SGI/PPI state, the CPU interface) depend on which CPU
accesses them and a bus transaction does not say. One CPU is the common case:
map `gic.distributor` and `gic.cpu_interface(0)`. With several, CPU c sees
`gic.distributors[c]` and `gic.cpu_interfaces[c]` at the same addresses: map
CPU 0's on the bus and give CPU c a `cosim.BusView` of it with CPU c's
(platforms/virt.py does, for `cpus=N`).

Interrupt state is kept as bit masks indexed by interrupt ID, so enabling,
pending and masking are a few integer operations, and finding the highest
priority pending interrupt only visits interrupts that are pending.

Not modelled: the Security Extensions (the GIC presents one security state,
as QEMU's virt does to a non-secure guest); GICD_IGROUPR is storage only and
every interrupt is signalled as IRQ.
"""

from __future__ import annotations

from typing import ClassVar

from cosim import Access, Device, Field, Input, PlatformError, Reg, RegisterDevice, Signal, Unmapped
from cosim.fdt import IRQ_TYPE_LEVEL_HIGH

__all__ = ["Gicv2", "GicDistributor", "GicCpuInterface", "SPURIOUS"]

SPURIOUS = 1023
IDLE_PRIORITY = 0x100       # running priority when nothing is active: lower than any real one


class _CpuState:
    """What is banked per CPU interface (IHI 0048B 3.1.2, 4.3)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.ctlr = 0
        self.pmr = 0
        self.bpr = 2
        self.enabled = 0xFFFF          # SGIs are always enabled in GICv2 implementations like GIC-400
        self.active = 0                # bits 0..31
        self.latch = 0                 # PPI pending latches, bits 16..31
        self.level = 0                 # PPI input levels, bits 16..31
        self.sgi_sources = [0] * 16    # per SGI: mask of source CPUs with it pending
        self.priority = [0] * 32
        self.edge = 0xFFFF             # SGIs are edge-triggered; PPIs level by default
        self.active_stack: list[tuple[int, int]] = []  # (intid, priority) in acknowledge order


class Gicv2(Device):
    """Arm GICv2 (IHI 0048B): distributor and 1..8 CPU interfaces, SGIs, PPIs and SPIs.

    Interrupts:
      irq(cpu): IRQ output of CPU interface `cpu`, to the CPU's IRQ input.
      spi(n): input for shared peripheral interrupt n (interrupt ID 32 + n).
      ppi(cpu, intid): input for private peripheral interrupt `intid` (16..31) of `cpu`.
    Per-CPU views: distributors[c], cpu_interfaces[c]: the registers as CPU c sees them
    (banked SGI/PPI state, its CPU interface), to map where CPU c's accesses go (a BusView).
    Properties:
      num_cpus: CPU interfaces, 1..8 (default 1).
      num_spis: shared peripheral interrupts, a multiple of 32 up to 988 (default 256, as QEMU's virt).
    """

    model: ClassVar[str] = "gicv2"

    def __init__(self, name: str, *, num_cpus: int = 1, num_spis: int = 256) -> None:
        super().__init__(name)
        if not 1 <= num_cpus <= 8:
            raise PlatformError(f"{name}: num_cpus must be 1..8, not {num_cpus}")
        if num_spis % 32 or not 0 <= num_spis <= 988:
            raise PlatformError(f"{name}: num_spis must be a multiple of 32 up to 988, not {num_spis}")
        self.num_cpus = num_cpus
        self.num_irqs = 32 + num_spis
        self.cpus = [_CpuState() for _ in range(num_cpus)]
        self._irq = [self.output(f"irq{c}") for c in range(num_cpus)]
        self._spi_inputs = [self.input(f"spi{n}", self._spi_sink(32 + n)) for n in range(num_spis)]
        self._ppi_inputs = {(c, i): self.input(f"cpu{c}.ppi{i}", self._ppi_sink(c, i))
                            for c in range(num_cpus) for i in range(16, 32)}
        # One view of the distributor per CPU, named like the CPU interfaces: "gic.dist0" is what CPU 0 sees.
        self.distributors = [GicDistributor(f"{name}.dist{c}", self, c) for c in range(num_cpus)]
        self.cpu_interfaces = [GicCpuInterface(f"{name}.cpu{c}", self, c) for c in range(num_cpus)]
        self.reset()

    # -- ports ---------------------------------------------------------------
    def irq(self, cpu: int = 0) -> Signal:
        return self._irq[cpu]

    def spi(self, n: int) -> Input:
        return self._spi_inputs[n]

    def ppi(self, cpu: int, intid: int) -> Input:
        return self._ppi_inputs[(cpu, intid)]

    def interrupt_cells(self, target: Input) -> list[int] | None:
        """The device-tree `interrupts` cells (arm,gic binding) of a wire into `target`, one of this
        GIC's inputs: <0 SPI flags> for SPIs, <1 PPI cpumask|flags> for PPIs; None for other inputs."""
        for n, spi in enumerate(self._spi_inputs):
            if spi is target:
                return [0, n, IRQ_TYPE_LEVEL_HIGH]
        for (_, intid), ppi in self._ppi_inputs.items():
            if ppi is target:
                cpus = (1 << self.num_cpus) - 1
                return [1, intid - 16, (cpus << 8) | IRQ_TYPE_LEVEL_HIGH]
        return None

    @property
    def distributor(self) -> "GicDistributor":
        return self.distributors[0]

    def cpu_interface(self, cpu: int = 0) -> "GicCpuInterface":
        return self.cpu_interfaces[cpu]

    # -- state ---------------------------------------------------------------
    def reset(self) -> None:
        n = self.num_irqs
        self.ctlr = 0
        self.enabled = 0              # SPI bits (32..)
        self.active = 0
        self.latch = 0
        self.level = 0
        self.edge = 0                 # ICFGR: level-sensitive unless configured
        self.group = 0
        self.priority = [0] * n
        self.targets = [0] * n
        for cpu in self.cpus:
            cpu.reset()
        self.update()

    def _spi_sink(self, intid: int):
        def sink(level: bool) -> None:
            bit = 1 << intid
            if level and not self.level & bit and self.edge & bit:
                self.latch |= bit          # edge-triggered: a rising edge latches pending (3.2.4)
            self.level = self.level | bit if level else self.level & ~bit
            self.update()
        return sink

    def _ppi_sink(self, c: int, intid: int):
        def sink(level: bool) -> None:
            cpu, bit = self.cpus[c], 1 << intid
            if level and not cpu.level & bit and cpu.edge & bit:
                cpu.latch |= bit
            cpu.level = cpu.level | bit if level else cpu.level & ~bit
            self.update()
        return sink

    def pending_mask(self, c: int) -> int:
        """Pending interrupts of CPU `c` (banked 0..31 plus every SPI), regardless of enable."""
        cpu = self.cpus[c]
        sgis = sum(1 << i for i, src in enumerate(cpu.sgi_sources) if src)
        ppis = (cpu.latch | (cpu.level & ~cpu.edge)) & 0xFFFF0000
        spis = self.latch | (self.level & ~self.edge)
        return sgis | ppis | (spis & ~0xFFFFFFFF)

    def _priority(self, c: int, intid: int) -> int:
        return self.cpus[c].priority[intid] if intid < 32 else self.priority[intid]

    def highest_pending(self, c: int) -> tuple[int, int]:
        """(intid, priority) of the highest-priority pending, enabled, inactive interrupt for CPU c.

        Lowest priority value wins, ties go to the lowest ID (3.3.1); (SPURIOUS, IDLE_PRIORITY) if none.
        """
        cpu = self.cpus[c]
        candidates = self.pending_mask(c) & ((self.enabled & ~0xFFFFFFFF) | cpu.enabled)
        candidates &= ~((self.active & ~0xFFFFFFFF) | cpu.active)
        best, best_prio = SPURIOUS, IDLE_PRIORITY
        me = 1 << c
        while candidates:
            low = candidates & -candidates
            intid = low.bit_length() - 1
            candidates ^= low
            if intid >= 32 and self.num_cpus > 1 and not self.targets[intid] & me:
                continue                      # a uniprocessor GIC sends every SPI to its one CPU
            prio = self._priority(c, intid)
            if prio < best_prio:
                best, best_prio = intid, prio
        return best, best_prio

    def _group_priority(self, c: int, prio: int) -> int:
        # BPR: bits [bpr:0] are subpriority and do not take part in preemption (3.3.3).
        return prio & (0xFF << (self.cpus[c].bpr + 1)) & 0xFF

    def running_priority(self, c: int) -> int:
        stack = self.cpus[c].active_stack
        return min(p for _, p in stack) if stack else IDLE_PRIORITY

    def _signalled(self, c: int) -> tuple[int, int] | None:
        cpu = self.cpus[c]
        if not (self.ctlr & 1 and cpu.ctlr & 1):
            return None
        intid, prio = self.highest_pending(c)
        if intid == SPURIOUS or prio >= cpu.pmr:
            return None                 # PMR masks priorities equal or lower (3.3.2)
        running = self.running_priority(c)
        if running != IDLE_PRIORITY and self._group_priority(c, prio) >= self._group_priority(c, running):
            return None                 # no preemption without a higher group priority
        return intid, prio

    def update(self) -> None:
        for c in range(self.num_cpus):
            self._irq[c].set(self._signalled(c) is not None)

    # -- CPU interface actions -------------------------------------------------
    def interrupt_id(self, c: int) -> int:
        """What a GICC_IAR read returns now: the signalled ID (SGI source in [12:10]) or SPURIOUS."""
        hit = self._signalled(c)
        if hit is None or hit[0] >= 16:
            return SPURIOUS if hit is None else hit[0]
        sources = self.cpus[c].sgi_sources[hit[0]]
        return hit[0] | ((sources & -sources).bit_length() - 1) << 10   # the lowest source CPU first

    def acknowledge(self, c: int) -> int:
        """GICC_IAR read: take the signalled interrupt active; returns ID (with SGI source in [12:10])."""
        hit = self._signalled(c)
        if hit is None:
            return SPURIOUS
        intid, prio = hit
        cpu = self.cpus[c]
        value = self.interrupt_id(c)
        if intid < 16:
            cpu.sgi_sources[intid] &= ~(1 << (value >> 10))
            cpu.active |= 1 << intid
        elif intid < 32:
            cpu.latch &= ~(1 << intid)
            cpu.active |= 1 << intid
        else:
            self.latch &= ~(1 << intid)  # a level input still high stays pending: active and pending
            self.active |= 1 << intid
        cpu.active_stack.append((intid, prio))
        return value

    def end_of_interrupt(self, c: int, value: int) -> None:
        """GICC_EOIR write: priority drop, and deactivation unless EOImode is set."""
        intid = value & 0x3FF
        cpu = self.cpus[c]
        for i, (active_id, _) in enumerate(reversed(cpu.active_stack)):
            if active_id == intid:
                del cpu.active_stack[len(cpu.active_stack) - 1 - i]
                break
        else:
            return                       # not active on this CPU: UNPREDICTABLE, ignored (4.4.5)
        if not cpu.ctlr & (1 << 9):     # EOImodeNS clear: EOIR also deactivates
            self.deactivate(c, intid)

    def deactivate(self, c: int, intid: int) -> None:
        if intid < 32:
            self.cpus[c].active &= ~(1 << intid)
        elif intid < self.num_irqs:
            self.active &= ~(1 << intid)

    def send_sgi(self, source: int, value: int) -> None:
        """GICD_SGIR write (4.3.15): TargetListFilter [25:24], CPUTargetList [23:16], SGIINTID [3:0]."""
        mode, targets, intid = (value >> 24) & 3, (value >> 16) & 0xFF, value & 0xF
        if mode == 1:
            targets = ((1 << self.num_cpus) - 1) & ~(1 << source)
        elif mode == 2:
            targets = 1 << source
        elif mode == 3:
            return
        for c in range(self.num_cpus):
            if targets & (1 << c):
                self.cpus[c].sgi_sources[intid] |= 1 << source
        self.update()


class GicDistributor(RegisterDevice):
    """GICv2 distributor registers as seen by one CPU (banked SGI/PPI state)."""

    size: ClassVar[int] = 0x1000
    unmapped = Unmapped.RAZ_WI         # reserved distributor space is RAZ/WI (4.1.2)
    registers = (
        Reg("GICD_CTLR", 0x000, fields=(Field("EnableGrp0", 0), Field("EnableGrp1", 1))),      # 4.3.1
        Reg("GICD_TYPER", 0x004, access=Access.RO),
        Reg("GICD_IIDR", 0x008, access=Access.RO),
        Reg("GICD_IGROUPR", 0x080, count=32),
        Reg("GICD_ISENABLER", 0x100, count=32),
        Reg("GICD_ICENABLER", 0x180, count=32),
        Reg("GICD_ISPENDR", 0x200, count=32),
        Reg("GICD_ICPENDR", 0x280, count=32),
        Reg("GICD_ISACTIVER", 0x300, count=32),
        Reg("GICD_ICACTIVER", 0x380, count=32),
        Reg("GICD_IPRIORITYR", 0x400, count=255, sizes=(1, 4)),
        Reg("GICD_ITARGETSR", 0x800, count=255, sizes=(1, 4)),
        Reg("GICD_ICFGR", 0xC00, count=64),
        Reg("GICD_SGIR", 0xF00, access=Access.WO),
        Reg("GICD_CPENDSGIR", 0xF10, count=4, sizes=(1, 4)),
        Reg("GICD_SPENDSGIR", 0xF20, count=4, sizes=(1, 4)),
        # Identification (4.3.17-4.3.19): PIDR2 ArchRev = 2 for GICv2.
        Reg("GICD_PIDR4", 0xFD0, access=Access.RO, reset=0x04),
        Reg("GICD_PIDR", 0xFE0, count=4, access=Access.RO, reset=(0x90, 0xB4, 0x2B, 0x00)),
        Reg("GICD_CIDR", 0xFF0, count=4, access=Access.RO, reset=(0x0D, 0xF0, 0x05, 0xB1)),
    )

    def __init__(self, name: str, gic: Gicv2, cpu: int) -> None:
        super().__init__(name)
        self.gic, self.cpu = gic, cpu

    def update(self) -> None:
        self.gic.update()

    # Each 32-interrupt register n covers IDs 32n..32n+31; n == 0 is the banked SGI/PPI bank.
    def _bits(self, n: int, mask: int) -> int:
        return (mask >> (32 * n)) & 0xFFFF_FFFF

    def read_GICD_CTLR(self) -> int:
        return self.gic.ctlr

    def write_GICD_CTLR(self, value: int) -> None:
        self.gic.ctlr = value

    def read_GICD_TYPER(self) -> int:
        return ((self.gic.num_cpus - 1) << 5) | (self.gic.num_irqs // 32 - 1)

    def read_GICD_IIDR(self) -> int:
        return 0x0200_143B                # implementer Arm (0x43B), GIC-400-like revision

    def read_GICD_IGROUPR(self, n: int) -> int:
        return self._bits(n, self.gic.group)

    def write_GICD_IGROUPR(self, value: int, n: int) -> None:
        g = self.gic
        g.group = (g.group & ~(0xFFFF_FFFF << 32 * n)) | (value << 32 * n)

    def read_GICD_ISENABLER(self, n: int) -> int:
        return self.cpu_state.enabled if n == 0 else self._bits(n, self.gic.enabled)

    read_GICD_ICENABLER = read_GICD_ISENABLER

    def write_GICD_ISENABLER(self, value: int, n: int) -> None:
        if n == 0:
            self.cpu_state.enabled |= value
        elif 32 * n < self.gic.num_irqs:
            self.gic.enabled |= value << (32 * n)

    def write_GICD_ICENABLER(self, value: int, n: int) -> None:
        if n == 0:
            self.cpu_state.enabled &= ~(value & 0xFFFF0000)   # SGI enables are fixed (RAO/WI)
        else:
            self.gic.enabled &= ~(value << (32 * n))

    def read_GICD_ISPENDR(self, n: int) -> int:
        return self._bits(n, self.gic.pending_mask(self.cpu))

    read_GICD_ICPENDR = read_GICD_ISPENDR

    def write_GICD_ISPENDR(self, value: int, n: int) -> None:
        if n == 0:
            self.cpu_state.latch |= value & 0xFFFF0000       # SGIs are set through SPENDSGIR
        elif 32 * n < self.gic.num_irqs:
            self.gic.latch |= value << (32 * n)

    def write_GICD_ICPENDR(self, value: int, n: int) -> None:
        if n == 0:
            self.cpu_state.latch &= ~(value & 0xFFFF0000)
        else:
            self.gic.latch &= ~(value << (32 * n))

    def read_GICD_ISACTIVER(self, n: int) -> int:
        return self.cpu_state.active if n == 0 else self._bits(n, self.gic.active)

    read_GICD_ICACTIVER = read_GICD_ISACTIVER

    def write_GICD_ISACTIVER(self, value: int, n: int) -> None:
        if n == 0:
            self.cpu_state.active |= value
        elif 32 * n < self.gic.num_irqs:
            self.gic.active |= value << (32 * n)

    def write_GICD_ICACTIVER(self, value: int, n: int) -> None:
        if n == 0:
            self.cpu_state.active &= ~value
        else:
            self.gic.active &= ~(value << (32 * n))

    def read_GICD_IPRIORITYR(self, n: int) -> int:
        return sum(self._priority(4 * n + i) << (8 * i) for i in range(4))

    def write_GICD_IPRIORITYR(self, value: int, n: int) -> None:
        for i in range(4):
            intid = 4 * n + i
            prio = (value >> (8 * i)) & 0xFF
            if intid < 32:
                self.cpu_state.priority[intid] = prio
            elif intid < self.gic.num_irqs:
                self.gic.priority[intid] = prio

    def read_GICD_ITARGETSR(self, n: int) -> int:
        if self.gic.num_cpus == 1:
            return 0                          # uniprocessor: RAZ/WI (IHI 0048B 4.3.12)
        value = 0
        for i in range(4):
            intid = 4 * n + i
            # SGI/PPI targets read as the accessing CPU's own bit (4.3.12).
            target = (1 << self.cpu) if intid < 32 else (self.gic.targets[intid] if intid < self.gic.num_irqs else 0)
            value |= target << (8 * i)
        return value

    def write_GICD_ITARGETSR(self, value: int, n: int) -> None:
        if self.gic.num_cpus == 1:
            return
        cpus = (1 << self.gic.num_cpus) - 1
        for i in range(4):
            intid = 4 * n + i
            if 32 <= intid < self.gic.num_irqs:
                self.gic.targets[intid] = (value >> (8 * i)) & cpus

    def read_GICD_ICFGR(self, n: int) -> int:
        edge = self.cpu_state.edge if n < 2 else self.gic.edge
        return sum(((edge >> (16 * n + i)) & 1) << (2 * i + 1) for i in range(16))

    def write_GICD_ICFGR(self, value: int, n: int) -> None:
        if n == 0:
            return                            # SGIs are always edge-triggered (read-only)
        bits = sum(((value >> (2 * i + 1)) & 1) << (16 * n + i) for i in range(16))
        field = 0xFFFF << (16 * n)
        if n == 1:
            self.cpu_state.edge = (self.cpu_state.edge & ~field) | bits
        elif 16 * n < self.gic.num_irqs:
            self.gic.edge = (self.gic.edge & ~field) | bits

    def write_GICD_SGIR(self, value: int) -> None:
        self.gic.send_sgi(self.cpu, value)

    def read_GICD_SPENDSGIR(self, n: int) -> int:
        return sum((self.cpu_state.sgi_sources[4 * n + i] & 0xFF) << (8 * i) for i in range(4))

    read_GICD_CPENDSGIR = read_GICD_SPENDSGIR

    def write_GICD_SPENDSGIR(self, value: int, n: int) -> None:
        for i in range(4):
            self.cpu_state.sgi_sources[4 * n + i] |= (value >> (8 * i)) & 0xFF

    def write_GICD_CPENDSGIR(self, value: int, n: int) -> None:
        for i in range(4):
            self.cpu_state.sgi_sources[4 * n + i] &= ~((value >> (8 * i)) & 0xFF)

    @property
    def cpu_state(self) -> _CpuState:
        return self.gic.cpus[self.cpu]

    def _priority(self, intid: int) -> int:
        if intid < 32:
            return self.cpu_state.priority[intid]
        return self.gic.priority[intid] if intid < self.gic.num_irqs else 0


class GicCpuInterface(RegisterDevice):
    """One GICv2 CPU interface (IHI 0048B 4.4)."""

    size: ClassVar[int] = 0x2000
    unmapped = Unmapped.RAZ_WI
    registers = (
        Reg("GICC_CTLR", 0x00, fields=(Field("EnableGrp0", 0), Field("EOImodeNS", 9))),        # 4.4.1
        Reg("GICC_PMR", 0x04, fields=(Field("Priority", 0, 8),)),
        Reg("GICC_BPR", 0x08, fields=(Field("Binary_Point", 0, 3),)),
        Reg("GICC_IAR", 0x0C, access=Access.RO),
        Reg("GICC_EOIR", 0x10, access=Access.WO),
        Reg("GICC_RPR", 0x14, access=Access.RO),
        Reg("GICC_HPPIR", 0x18, access=Access.RO),
        Reg("GICC_ABPR", 0x1C, fields=(Field("Binary_Point", 0, 3),)),
        Reg("GICC_APR0", 0xD0),
        Reg("GICC_IIDR", 0xFC, access=Access.RO, reset=0x0202_143B),
        Reg("GICC_DIR", 0x1000, access=Access.WO),
    )

    def __init__(self, name: str, gic: Gicv2, cpu: int) -> None:
        super().__init__(name)
        self.gic, self.cpu = gic, cpu

    @property
    def cpu_state(self) -> _CpuState:
        return self.gic.cpus[self.cpu]

    def update(self) -> None:
        self.gic.update()

    def read_GICC_CTLR(self) -> int:
        return self.cpu_state.ctlr

    def write_GICC_CTLR(self, value: int) -> None:
        self.cpu_state.ctlr = value

    def read_GICC_PMR(self) -> int:
        return self.cpu_state.pmr

    def write_GICC_PMR(self, value: int) -> None:
        self.cpu_state.pmr = value

    def read_GICC_BPR(self) -> int:
        return self.cpu_state.bpr

    def write_GICC_BPR(self, value: int) -> None:
        self.cpu_state.bpr = value

    read_GICC_ABPR = read_GICC_BPR
    write_GICC_ABPR = write_GICC_BPR

    def read_GICC_IAR(self) -> int:
        return self.gic.interrupt_id(self.cpu)

    def after_read_GICC_IAR(self, value: int) -> None:
        self.gic.acknowledge(self.cpu)

    def write_GICC_EOIR(self, value: int) -> None:
        self.gic.end_of_interrupt(self.cpu, value)

    def write_GICC_DIR(self, value: int) -> None:
        self.gic.deactivate(self.cpu, value & 0x3FF)

    def read_GICC_RPR(self) -> int:
        running = self.gic.running_priority(self.cpu)
        return 0xFF if running == IDLE_PRIORITY else running

    def read_GICC_HPPIR(self) -> int:
        return self.gic.highest_pending(self.cpu)[0]

    def read_GICC_APR0(self) -> int:
        return 0
