"""`virt`: an Arm64 machine laid out like QEMU's `virt` board.

The same description yields the models and the device tree the guest is
given (`device_tree()`), so firmware written for QEMU's `virt` finds its
devices where it expects them. docs/virt.md is the user's page.

| region | base | model |
|---|---|---|
| flash (boot ROM: firmware) | 0x0000_0000 | Memory (read-only) |
| GICv2 distributor | 0x0800_0000 | Gicv2 |
| GICv2 CPU interface | 0x0801_0000 | Gicv2 |
| PL011 UART (SPI 1) | 0x0900_0000 | Pl011 |
| PL031 RTC (SPI 2) | 0x0901_0000 | Pl031 |
| PL061 GPIO (SPI 7) | 0x0903_0000 | Pl061 |
| sim-control | 0x090f_0000 | SimControl (a slot QEMU's virt leaves free) |
| virtio-mmio transports (SPI 16 + i) | 0x0a00_0000 + 0x200 * i | VirtioMmio, one per attached device (drives, rng, console, nic) |
| RAM | 0x4000_0000 | Memory |

Generic timer PPIs: CNTP 30, CNTV 27 (as QEMU wires them). With `cpu=kvm` the
timer is the host kernel's (`KvmGenericTimer` reports its output levels).

`cpus=N` (1..8): N CPUs with MPIDR Aff0 = 0..N-1, each with its own generic
timer and PMU wired to its PPIs and its own view of the GIC's banked registers
(a `BusView` of the system bus); CPU 0 starts, the others wait for PSCI CPU_ON.
On the software CPU they share one unicorn engine and take turns (docs/virt.md).
"""

from __future__ import annotations

import datetime
import time
from dataclasses import replace
from pathlib import Path

from typing import TYPE_CHECKING, Any

from cosim import (MS, Bus, Memory, MHz, MiB, Platform, PlatformError, Property, format_time, one_of, parse_size,
                   parse_time)
from cosim.chardev import open_backend
from cosim.cpu import Cpu, CpuBackend, memory_regions
from cosim.cpu.arm64 import COUNTING_MODES
from cosim.fdt import IRQ_TYPE_LEVEL_HIGH, Node, cells64, to_dtb
from cosim.kvm import DEFAULT_WFX_CAP, DEFAULT_WFX_EXIT, SEED_WFX_CAP, SEED_WFX_EXIT, SOURCE_NAMES, budget_source_name
from cosim.models.generic_timer import SYSREG_NAMES, GenericTimer
from cosim.models.gicv2 import Gicv2
from cosim.models.pl011 import Pl011
from cosim.models.pl031 import Pl031
from cosim.models.pl061 import Pl061
from cosim.models.pmu import Pmu
from cosim.models.simctl import SimControl
from cosim.net import open_nic, parse_mac, parse_nic
from cosim.virtio import Drive, VirtioBlk, VirtioConsole, VirtioDevice, VirtioMmio, VirtioRng, parse_drives
from cosim.virtio.net import VirtioNet

if TYPE_CHECKING:     # loaded when the CPU is KVM (it brings the KVM UAPI's cffi definitions)
    from cosim.cpu.arm64.kvm_timer import KvmGenericTimer

__all__ = ["Virt", "VirtLinux", "VIRT_MAP"]

VIRT_MAP = {
    "flash": (0x0000_0000, 0x0800_0000),
    "gic_dist": (0x0800_0000, 0x0001_0000),
    "gic_cpu": (0x0801_0000, 0x0001_0000),
    "uart0": (0x0900_0000, 0x0000_1000),
    "rtc": (0x0901_0000, 0x0000_1000),
    "gpio": (0x0903_0000, 0x0000_1000),
    "simctl": (0x090f_0000, 0x0000_1000),
    "virtio": (0x0a00_0000, 0x0000_0200),       # the first of VIRTIO_TRANSPORTS, 0x200 apart
    "ram": (0x4000_0000, None),
}

UART0_SPI = 1
RTC_SPI = 2
GPIO_SPI = 7
VIRTIO_SPI = 16             # transport i: SPI 16 + i
VIRTIO_TRANSPORTS = 32      # as many as QEMU's virt has room for
# GIC PPI numbers (INTID) of the generic timer, and the DT's PPI numbering (INTID - 16).
PPI_CNTPS, PPI_CNTP, PPI_CNTV, PPI_CNTHP = 29, 30, 27, 26
PPI_PMU = 23                # the PMU overflow interrupt, as QEMU's virt wires it
MAX_CPUS = 8                # GICv2's CPU interfaces; MPIDR Aff0 alone numbers them, as on QEMU's virt
UART_CLOCK = MHz(24)
# Where an arm64 kernel maps its image (KIMAGE_VADDR with 48-bit VAs, as Debian's, and no KASLR seed
# in the device tree); another layout only makes UnicornArm64Cpu.static_code cover no code.
KIMAGE_VADDR = 0xFFFF_8000_0800_0000
DTB_MAX = 2 * MiB           # the room a Linux boot leaves for the device tree (booting.rst: at most 2 MiB)
# kernel= names of Debian's arm64 kernels and the `cosim.images.fetch` functions that fetch them.
DEBIAN_KERNELS = {"debian": "linux_kernel", "debian-generic": "linux_generic_kernel", "debian-rt": "linux_rt_kernel"}


def _parse_wfx(value: str) -> tuple[int, int] | None:
    if value.strip().lower() == "off":
        return None
    try:
        cap, exit = (int(part, 0) for part in value.split(":"))
    except ValueError:
        raise PlatformError(f"kvm_wfx expects CAP:EXIT numbers (e.g. {DEFAULT_WFX_CAP}:{DEFAULT_WFX_EXIT}, "
                           f"or {SEED_WFX_CAP}:{SEED_WFX_EXIT} for the seed patch's) or 'off', not {value!r}") from None
    return cap, exit


def _parse_epoch(value: str) -> int:
    """Seconds since 1970 (UTC): a number, an ISO 8601 date/time, or 'now' (the host's clock)."""
    text = value.strip()
    if text.lower() == "now":
        return int(time.time())
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PlatformError(f"rtc_start expects seconds since 1970, an ISO date (2000-01-01T00:00:00Z) or 'now', "
                            f"not {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp())


def _show_epoch(value: int) -> str:
    return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_rng(value: str) -> int | str | None:
    """rng=none (no device), host (the host's entropy) or seed:N (a seeded generator: runs repeat)."""
    text = value.strip().lower()
    if text in ("none", "host"):
        return None if text == "none" else "host"
    if text.startswith("seed:"):
        try:
            return int(text[5:], 0)
        except ValueError:
            pass
    raise PlatformError(f"rng expects none, host or seed:N (a number), not {value!r}")


def _show_rng(value: int | str | None) -> str:
    return "none" if value is None else "host" if value == "host" else f"seed:{value}"


def _show_drives(value: tuple[Drive, ...]) -> str:
    return ",".join(str(drive) for drive in value) or "none"


def _parse_cpus(value: str) -> int:
    try:
        count = int(value, 0)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_CPUS:
        raise ValueError(f"cpus must be a number from 1 to {MAX_CPUS}, not {value!r}")
    return count


def _show_wfx(value: tuple[int, int] | None) -> str:
    return "off" if value is None else f"{value[0]}:{value[1]}"


def _image(what: str, value: str | Path, fetchers: dict[str, str]) -> Path:
    """A path, or the key of an image the project fetches (`cosim.images.fetch`)."""
    if str(value) in fetchers:
        from cosim.images import fetch

        try:
            return getattr(fetch, fetchers[str(value)])()
        except fetch.ImageError as error:
            raise PlatformError(f"{what} image {value!r}: {error}") from error
    path = Path(value)
    if not path.is_file():
        raise PlatformError(f"{what} image {path} does not exist")
    return path


def _read_bounded(what: str, path: Path, limit: int) -> bytes:
    """The file's bytes, once its size is known to fit in `limit` (RAM): never read a huge file whole."""
    size = path.stat().st_size
    if size > limit:
        raise PlatformError(f"{what} image {path} ({size:#x} bytes) is larger than RAM ({limit:#x} bytes)")
    return path.read_bytes()


class Virt(Platform):
    """Arm64 `virt` machine: GICv2, PL011, generic timer, firmware in flash (U-Boot by default)."""

    name = "virt"
    summary = "Arm64 machine laid out like QEMU's virt; boots Debian's U-Boot by default"
    ram_size = Property(128 * MiB, "RAM size in bytes", parse_size)
    firmware = Property("uboot", "image in flash at 0x0: a path, 'uboot' (Debian's u-boot-qemu, fetched) or 'none'")
    kernel = Property("none", "image booted directly, as QEMU's -kernel: an arm64 Linux Image (booting.rst) or any "
                              "flat binary (loaded at RAM + 0x80000, x0 = the DTB); a path, 'debian' (Debian's cloud "
                              "kernel, fetched), 'debian-generic', 'debian-rt' or 'none'")
    initrd = Property("none", "initramfs for the kernel: a path, 'busybox' (built from Debian's busybox-static) or 'none'")
    bootargs = Property("console=ttyAMA0 earlycon=pl011,0x9000000", "kernel command line (/chosen/bootargs)")
    rtc_start = Property(946_684_800, "PL031 RTC's time at simulated time zero: seconds since 1970, an ISO date "
                         "or 'now' (the host's clock: runs no longer repeat)", _parse_epoch, _show_epoch)
    console = Property("stdio", "PL011 console: stdio, buffer, none, pty, tcp:[HOST:]PORT (or a CharBackend from Python)")
    quantum = Property(MS, "CPU quantum (simulated time per run of the guest)", parse_time, format_time)
    cpus = Property(1, f"number of CPUs, 1..{MAX_CPUS} (CPU 0 boots; the others wait for PSCI CPU_ON)", _parse_cpus)
    cpu = Property("unicorn", "CPU backend: unicorn (software, any host) or kvm (Arm64 Linux host with /dev/kvm)",
                   one_of("unicorn", "kvm"))
    counting = Property("block", "cpu=unicorn: instruction counting: block (fast) or instruction (exact mid-block time)",
                        one_of(*COUNTING_MODES))
    kvm_wfx = Property((DEFAULT_WFX_CAP, DEFAULT_WFX_EXIT),
                       "cpu=kvm: numbers of the WFx patch's KVM_CAP_EXIT_ON_WFX and KVM_EXIT_WFX as CAP:EXIT "
                       "(our 6.1 port's by default; the seed's are 222:35), or 'off' to use the wall-clock fallback",
                       _parse_wfx, _show_wfx)
    budget = Property("auto", f"cpu=kvm: what ends a quantum: auto, {', '.join(SOURCE_NAMES)}", budget_source_name)
    drive = Property((), "virtio-blk disks: PATH[,ro][,PATH[,ro]...] (raw images; ro: read-only), 'none'; "
                         "each gets a virtio-mmio transport, /dev/vda, vdb, ... in order", parse_drives, _show_drives)
    rng = Property(None, "virtio-rng: none, host (the host's entropy) or seed:N (seeded: runs repeat)",
                   _parse_rng, _show_rng)
    hvc = Property("none", "virtio-console (Linux's /dev/hvc0): none, or a back-end as for console "
                   "(stdio, buffer, pty, tcp:[HOST:]PORT, or a CharBackend from Python)")
    nic = Property(None, "virtio-net: none, switch:NAME (the simulated switch NAME, shared by the machines of one "
                         "simulation) or tap:NAME (the host TAP interface NAME)", parse_nic, lambda v: v or "none")
    mac = Property("52:54:00:12:34:56", "virtio-net's MAC address", lambda text: (parse_mac(text), text)[1])
    renamed = {"kvm_budget": "budget"}      # pc's name for the same choice
    guest_pmu = False       # set by build(): the CPU backend gives the guest a PMUv3 (KVM on hosts that offer one)

    def build(self) -> None:
        if not (isinstance(self.cpus, int) and 1 <= self.cpus <= MAX_CPUS):
            raise PlatformError(f"{self.name}: cpus must be 1..{MAX_CPUS}, not {self.cpus!r}")
        if self.kernel == "none" and self.initrd != "none" and "initrd" in self._props:   # set, not a default
            raise PlatformError(f"initrd={self.initrd!r} is loaded only with kernel=: firmware finds its own")
        if self.cpu == "kvm":
            from cosim.cpu.arm64.kvm_cpu import kvm_arm64_unavailable

            reason = kvm_arm64_unavailable()
            if reason:
                raise PlatformError(f"{self.name}: cpu=kvm: {reason}")
        flash_base, flash_size = VIRT_MAP["flash"]
        image = None if self.firmware == "none" else _image("firmware", self.firmware, {"uboot": "uboot_image"})
        self.flash = self.add("flash", Memory, size=flash_size, read_only=True, on_write="ignore", image=image)
        self.map("sysbus", flash_base, self.flash)
        self.ram = self.add("ram", Memory, size=self.ram_size)
        self.map("sysbus", VIRT_MAP["ram"][0], self.ram)

        self.gic = self.add("gic", Gicv2, num_cpus=self.cpus, num_spis=256)
        self.map("sysbus", VIRT_MAP["gic_dist"][0], self.gic.distributor)
        self.map("sysbus", VIRT_MAP["gic_cpu"][0], self.gic.cpu_interface(0))

        self.uart = self.add("uart0", Pl011, backend=open_backend(self.console), frequency=UART_CLOCK)
        self.map("sysbus", VIRT_MAP["uart0"][0], self.uart)
        self.wire(self.uart.irq, self.gic.spi(UART0_SPI))

        if not 0 <= self.rtc_start < 1 << 32:
            raise PlatformError(f"rtc_start {_show_epoch(self.rtc_start)} is outside the PL031's 32-bit counter")
        self.rtc = self.add("rtc", Pl031, start=self.rtc_start)
        self.map("sysbus", VIRT_MAP["rtc"][0], self.rtc)
        self.wire(self.rtc.irq, self.gic.spi(RTC_SPI))

        self.gpio = self.add("gpio", Pl061)
        self.map("sysbus", VIRT_MAP["gpio"][0], self.gpio)
        self.wire(self.gpio.irq, self.gic.spi(GPIO_SPI))

        self.simctl = self.add("simctl", SimControl)          # mapping only: guests know the address
        self.map("sysbus", VIRT_MAP["simctl"][0], self.simctl)

        self.virtio: list[VirtioMmio] = []
        for index, drive in enumerate(parse_drives(self.drive)):
            self.add_virtio(f"drive{index}", VirtioBlk(drive))
        if self.rng is not None:
            self.add_virtio("rng", VirtioRng(seed=None if self.rng == "host" else self.rng))
        if self.hvc != "none":
            self.add_virtio("hvc", VirtioConsole(open_backend(self.hvc)))
        if self.nic is not None:
            self.net = VirtioNet(open_nic(self.nic, self.sim), mac=self.mac)
            self.add_virtio("net0", self.net)

        # A generic timer and a PMU per CPU, on that CPU's PPIs; CPU 0's are "timer" and "pmu".
        self.timers: list[GenericTimer | KvmGenericTimer] = []
        self.pmus: list[Pmu] = []
        timer_class: type[GenericTimer | KvmGenericTimer] = GenericTimer
        if self.cpu == "kvm":
            from cosim.cpu.arm64 import kvm_timer
            timer_class = kvm_timer.KvmGenericTimer
        for c in range(self.cpus):
            suffix = str(c) if c else ""
            timer = self.add(f"timer{suffix}", timer_class)
            self.wire(timer.cntp, self.gic.ppi(c, PPI_CNTP))
            self.wire(timer.cntv, self.gic.ppi(c, PPI_CNTV))
            self.timers.append(timer)
            if self.cpu == "kvm":
                self.wire(timer.pmu, self.gic.ppi(c, PPI_PMU))       # the host kernel's PMU
            else:
                pmu = self.add(f"pmu{suffix}", Pmu)
                self.wire(pmu.irq, self.gic.ppi(c, PPI_PMU))
                self.pmus.append(pmu)
        self.timer = self.timers[0]
        if self.pmus:
            self.pmu = self.pmus[0]

    def add_virtio(self, name: str, device: VirtioDevice) -> VirtioMmio:
        """Put `device` behind the next free virtio-mmio transport, named `name` (0x0a00_0000 + 0x200 * i,
        SPI 16 + i, in the order of the calls); a subclass's build() calls it after super().build()."""
        index = len(self.virtio)
        if index >= VIRTIO_TRANSPORTS:
            raise PlatformError(f"{name}: virt has room for {VIRTIO_TRANSPORTS} virtio devices")
        transport = self.add(name, VirtioMmio, device=device, memory=self.bus("sysbus"))
        base, size = VIRT_MAP["virtio"]
        self.map("sysbus", base + size * index, transport)
        self.wire(transport.irq, self.gic.spi(VIRTIO_SPI + index))
        self.virtio.append(transport)
        return transport

    def finish_build(self) -> None:
        """The CPU, the device tree and the boot images: after every device is mapped (a subclass's
        too), so the CPU sees all of them and each describes itself in the device tree."""
        backends = self._backends()               # first: the device tree lists a PMU only if the guest has one
        self.guest_pmu = bool(getattr(backends[0], "guest_pmu", False))
        if self.kernel == "none":
            self.dtb = self.device_tree()
            self.ram.load(self.dtb, 0)                # U-Boot for virt looks for it at the start of RAM
        else:
            self._kernel_text: tuple[int, int] | None = None
            self._load_linux()
            if self._kernel_text and hasattr(backends[0], "static_code"):     # the software CPU
                backends[0].static_code(*self._kernel_text)
        self.cpu_list = [self.add(f"cpu{c}", Cpu, backend=backend, quantum=self.quantum, machine=self)
                         for c, backend in enumerate(backends)]
        for c, cpu in enumerate(self.cpu_list):
            self.wire(self.gic.irq(c), cpu.pins["irq"])
            if c:
                cpu.power_off()                   # until PSCI CPU_ON
        self.cpu0 = self.cpu_list[0]

    def _power_on(self, index: int, entry: int, context_id: int) -> None:
        self.cpu_list[index].backend.boot(entry, context_id)
        self.cpu_list[index].power_on()

    def _power_off(self, index: int) -> None:
        self.cpu_list[index].power_off()

    def _kvm_power(self, index: int, on: bool) -> None:
        """KVM's PSCI turned vCPU `index` on or off."""
        if on:
            self.cpu_list[index].power_on()
        else:
            self.cpu_list[index].power_off()

    def _load_linux(self) -> None:
        """Kernel, initrd and device tree in RAM as booting.rst asks, and a boot stub in flash
        (in place of firmware) that enables the PL011 and enters the kernel."""
        from cosim.loaders.arm64_linux import (boot_stub, decompress_kernel, is_linux_image, parse_image,
                                               plan_flat_layout, plan_layout)
        from cosim.models.pl011 import CR_RXE, CR_TXE, CR_UARTEN

        if self.firmware != "none":
            raise PlatformError(f"kernel={self.kernel!r} boots without firmware: set firmware=none")
        ram_size = self.ram.size
        image = decompress_kernel(_read_bounded("kernel", _image("kernel", self.kernel, DEBIAN_KERNELS), ram_size),
                                  limit=ram_size)
        if not image:
            raise PlatformError(f"kernel image {self.kernel} is empty")
        initrd = b"" if self.initrd == "none" else _read_bounded(
            "initrd", _image("initrd", self.initrd, {"busybox": "busybox_initramfs_image"}), ram_size)
        if self.initrd != "none" and not initrd:
            raise PlatformError(f"initrd image {self.initrd} is empty (use initrd=none for no initramfs)")
        # As QEMU's -kernel: a Linux Image by its header, any other file as a flat binary at RAM + 0x80000.
        if is_linux_image(image):
            header = parse_image(image)
            layout = plan_layout(header, ram_size, DTB_MAX, len(initrd))
            self._kernel_text = (KIMAGE_VADDR, KIMAGE_VADDR + header.image_size - 1)
        else:
            layout = plan_flat_layout(len(image), ram_size, DTB_MAX, len(initrd))
        ram_base = VIRT_MAP["ram"][0]
        self.ram.load(image, layout.kernel)
        if initrd:
            self.ram.load(initrd, layout.initrd)
        self.dtb = self.device_tree(bootargs=self.bootargs, initrd=(ram_base + layout.initrd, len(initrd)) if initrd else None)
        if len(self.dtb) > DTB_MAX:
            raise PlatformError(f"device tree of {len(self.dtb):#x} bytes exceeds the 2 MiB booting.rst allows "
                                f"(bootargs are {len(self.bootargs)} bytes)")
        self.ram.load(self.dtb, layout.dtb)
        control = next(reg.offset for reg in Pl011.registers if reg.name == "UARTCR")
        uart_cr = (VIRT_MAP["uart0"][0] + control, CR_UARTEN | CR_TXE | CR_RXE)
        self.flash.load(boot_stub(ram_base + layout.kernel, ram_base + layout.dtb, uart_cr))

    def _backends(self) -> list[CpuBackend]:
        """One backend per CPU; CPU c > 0 sees its own GIC distributor and CPU interface.
        PSCI is ours on the software CPU, the host kernel's on KVM (which reports power changes)."""
        bus = self.buses["sysbus"]
        if self.cpu == "kvm":
            smp: dict[str, Any] = {"power": self._kvm_power} if self.cpus > 1 else {}
        else:
            from cosim.cpu.arm64.psci import Psci

            smp = {"psci": Psci([(1 << 31) | c for c in range(self.cpus)], self._power_on, self._power_off)}
        backends = [self._backend(bus, **smp)]
        for c in range(1, self.cpus):
            view = bus.view(f"sysbus.cpu{c}", {VIRT_MAP["gic_dist"][0]: self.gic.distributors[c],
                                                VIRT_MAP["gic_cpu"][0]: self.gic.cpu_interfaces[c]})
            backends.append(self._backend(view, index=c, share=backends[0], **smp))
        return backends

    def _backend(self, bus: Bus, **smp: Any) -> CpuBackend:
        memory = memory_regions(bus)
        c = smp.get("index", 0)
        # Boot state of the arm64 booting document: x0 = the DTB (at the start of RAM here).
        if self.cpu == "kvm":
            from cosim.cpu.arm64.kvm_cpu import KvmArm64Cpu

            wfx = self.kvm_wfx
            return KvmArm64Cpu(bus=bus, memory=memory, timer=self.timers[c], budget=self.budget,
                               use_wfx=wfx is not None, **({"wfx_cap": wfx[0], "wfx_exit": wfx[1]} if wfx else {}),
                               entry=VIRT_MAP["flash"][0], registers={"x0": VIRT_MAP["ram"][0]}, **smp)
        from cosim.cpu.arm64.unicorn_cpu import UnicornArm64Cpu

        mmio = [(m.base, m.size) for m in bus.mappings if not isinstance(m.target, Memory)]
        return UnicornArm64Cpu(bus=bus, memory=memory, mmio=mmio, timer=self.timers[c], sysreg_names=SYSREG_NAMES,
                               pmu=self.pmus[c], entry=VIRT_MAP["flash"][0], registers={"x0": VIRT_MAP["ram"][0]},
                               counting=self.counting,
                               pl011s=[(VIRT_MAP["uart0"][0], self.uart)], **smp)

    def device_tree(self, bootargs: str | None = None, initrd: tuple[int, int] | None = None) -> bytes:
        """The device tree blob describing this platform, as QEMU's virt would."""
        root = Node("")
        root.set("#address-cells", 2).set("#size-cells", 2)
        root.set("compatible", "linux,dummy-virt").set("model", "cosim virt")
        gic_dist, gic_cpu = VIRT_MAP["gic_dist"], VIRT_MAP["gic_cpu"]
        intc = root.add(f"intc@{gic_dist[0]:x}")
        intc.set("compatible", "arm,cortex-a15-gic").set("#interrupt-cells", 3).set("interrupt-controller", True)
        intc.set("reg", cells64(gic_dist[0], gic_dist[1], gic_cpu[0], gic_cpu[1]))
        root.set("interrupt-parent", intc.ref())

        memory = root.add(f"memory@{VIRT_MAP['ram'][0]:x}")
        memory.set("device_type", "memory").set("reg", cells64(VIRT_MAP["ram"][0], self.ram.size))

        cpus = root.add("cpus")
        cpus.set("#address-cells", 1).set("#size-cells", 0)
        for c in range(self.cpus):               # reg: MPIDR_EL1's affinity fields (Aff0 = the index)
            cpu = cpus.add(f"cpu@{c}")
            cpu.set("device_type", "cpu").set("compatible", "arm,cortex-a57").set("reg", c)
            cpu.set("enable-method", "psci")
        root.add("psci").set("compatible", ["arm,psci-0.2", "arm,psci"]).set("method", "hvc")

        # Timer PPIs in the GIC binding: <1 (PPI) INTID-16 flags>, listed secure, non-secure, virtual, hyp.
        flags = ((1 << self.cpus) - 1) << 8 | IRQ_TYPE_LEVEL_HIGH    # the PPI's CPU mask (GIC binding)
        timer = root.add("timer")
        timer.set("compatible", "arm,armv8-timer").set("always-on", True)
        timer.set("interrupts", [c for ppi in (PPI_CNTPS, PPI_CNTP, PPI_CNTV, PPI_CNTHP) for c in (1, ppi - 16, flags)])
        if self.guest_pmu:
            root.add("pmu").set("compatible", "arm,armv8-pmuv3").set("interrupts", [1, PPI_PMU - 16, flags])

        self.device_tree_nodes(root)              # the devices that describe themselves: UART, RTC, GPIO, ...

        chosen = root.add("chosen")
        chosen.set("stdout-path", f"/pl011@{VIRT_MAP['uart0'][0]:x}")
        if bootargs is not None:
            chosen.set("bootargs", bootargs)
        if initrd is not None:
            chosen.set("linux,initrd-start", cells64(initrd[0])).set("linux,initrd-end", cells64(initrd[0] + initrd[1]))
        return to_dtb(root)


class VirtLinux(Virt):
    """`virt` booting Debian's arm64 Linux straight into a busybox initramfs (no firmware)."""

    name = "virt-linux"
    summary = "virt booting Debian 12's arm64 Linux kernel to a busybox shell"
    # Virt's properties with other defaults.
    ram_size = replace(Virt.ram_size, default=256 * MiB)
    firmware = replace(Virt.firmware, default="none")
    kernel = replace(Virt.kernel, default="debian")
    initrd = replace(Virt.initrd, default="busybox")
