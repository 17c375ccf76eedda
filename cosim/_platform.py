"""Platforms: instances, address maps and wires, described in Python.

    class Demo(Platform):
        name = "demo"
        ram_size = Property(64 * MiB, "RAM size in bytes", parse_size)

        def build(self) -> None:
            ram = self.add("ram", Memory, size=self.ram_size)
            self.map("sysbus", 0x4000_0000, ram)
            uart = self.add("uart0", Pl011)
            self.map("sysbus", 0x0900_0000, uart)
            self.wire(uart.irq, gic.spi(1))

Mistakes are reported while the platform is built, naming what is involved.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ._bus import Bus
from ._device import Device
from ._errors import CosimError, PlatformError
from ._kernel import Simulation, Summary
from ._signal import Input, Signal

if TYPE_CHECKING:
    from .fdt import DeviceTree, Node

__all__ = ["Platform", "Property", "parse_size", "one_of", "KiB", "MiB", "GiB", "registered_platforms", "get_platform"]

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
D = TypeVar("D", bound=Device)

_SIZE_RE = re.compile(r"^\s*(0x[0-9a-f]+|[0-9]+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """'128M', '64 MiB', '0x1000', 4096 -> bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE_RE.match(text)
    if not match:
        raise PlatformError(f"cannot read {text!r} as a size (expected e.g. 128M, 64 MiB, 0x1000)")
    number, unit = match.groups()
    scale = {"k": KiB, "m": MiB, "g": GiB}.get((unit or "b")[0].lower(), 1)
    return int(number, 0) * scale


def one_of(*names: str) -> Callable[[str], str]:
    """A Property parser accepting only `names`: a bad value is refused as the properties are read."""
    def parse(text: str) -> str:
        if text not in names:
            raise ValueError(f"use {', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else f"use {names[0]}")
        return text
    return parse


@dataclass(frozen=True)
class Property:
    """A platform setting with a default, settable from Python or `cosim run -P name=value`."""

    default: Any
    doc: str
    parse: Callable[[str], Any] = str
    show: Callable[[Any], str] = str  # how `cosim describe` prints the value

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", name)

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        return instance._props.get(self.name, self.default)


_REGISTRY: dict[str, type["Platform"]] = {}


def registered_platforms() -> dict[str, type["Platform"]]:
    """Every registered platform by name: the built-in ones (importing cosim.platforms registers them)
    and those of the `cosim.platforms` entry points (cosim._registry)."""
    import cosim.platforms  # noqa: F401  (registers the built-in platforms)

    from ._registry import load_plugins

    load_plugins("cosim.platforms")         # importing a plugin registers its named platforms

    return dict(sorted(_REGISTRY.items()))


def get_platform(name: str) -> type["Platform"]:
    known = registered_platforms()
    if name not in known:
        raise PlatformError(f"unknown platform {name!r}; known: {', '.join(known) or 'none'}")
    return known[name]


class Platform:
    """Subclass, set `name`, declare `Property`s, and describe the hardware in `build()`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # Old property names still accepted, with a FutureWarning, under their new names.
    renamed: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in vars(cls) and cls.name:  # subclasses that don't rename are variants, not new platforms
            if cls.name in _REGISTRY and _REGISTRY[cls.name].__qualname__ != cls.__qualname__:
                raise PlatformError(f"two platforms are named {cls.name!r}: {_REGISTRY[cls.name].__qualname__} and {cls.__qualname__}")
            _REGISTRY[cls.name] = cls

    @classmethod
    def properties(cls) -> dict[str, Property]:
        found: dict[str, Property] = {}
        for klass in reversed(cls.__mro__):
            found.update({k: v for k, v in vars(klass).items() if isinstance(v, Property)})
        return found

    def __init__(self, sim: Simulation | None = None, **props: Any) -> None:
        known = self.properties()
        self._props: dict[str, Any] = {}
        for key, value in self._renamed(props).items():
            if key not in known:
                raise PlatformError(
                    f"platform {self.name or type(self).__name__!r} has no property {key!r}; "
                    f"known: {', '.join(sorted(known)) or 'none'}"
                )
            self._props[key] = self._parse(key, known[key], value) if isinstance(value, str) else value
        self.sim = sim or Simulation()
        self.devices: dict[str, Device] = {}
        self.buses: dict[str, Bus] = {}
        self.wires: list[tuple[Signal, Input]] = []
        self._finished = False
        self.build()
        self.finish_build()
        self._finished = True
        self._elaborate()

    def _renamed(self, props: dict[str, Any]) -> dict[str, Any]:
        """`props` with deprecated names replaced by the current ones, each warned about once per use."""
        current = dict(props)
        for old, new in self.renamed.items():
            if old in current:
                label = self.name or type(self).__name__
                if new in current:
                    raise PlatformError(f"platform {label!r}: property {old} is the old name of {new}: give only {new}")
                warnings.warn(f"platform {label!r}: property {old} is deprecated, use {new}", FutureWarning,
                              stacklevel=3)
                current[new] = current.pop(old)
        return current

    def _parse(self, key: str, prop: Property, text: str) -> Any:
        try:
            return prop.parse(text)
        except CosimError:
            raise                       # already says what it expected
        except (ValueError, TypeError) as error:    # a plain parser such as int or float
            raise PlatformError(f"platform {self.name or type(self).__name__!r}: property {key}={text!r}: "
                                f"{error}") from error

    # -- the builder API ----------------------------------------------------
    def build(self) -> None:
        """Instantiate, map and wire the platform's devices."""
        raise NotImplementedError(f"{type(self).__name__} must define build()")

    def finish_build(self) -> None:
        """Runs after `build()` — after a subclass's own additions too, when its `build()` calls
        `super().build()` first — for what must see the whole platform: a CPU's view of the memory
        map, the device tree handed to the guest. Devices added or mapped later are refused."""

    def device_tree_nodes(self, root: "Node", bus: str = "sysbus") -> "DeviceTree":
        """Add a node under `root` for every device on `bus` that describes itself (`dt_name`):
        named `<dt_name>@<base>`, `reg` from its mapping (two address and two size cells), the
        rest from the device's `dt_node`. Returns the DeviceTree context, for the platform's own nodes."""
        from .fdt import DeviceTree, cells64

        controllers = [device for device in self.devices.values() if hasattr(device, "interrupt_cells")]
        tree = DeviceTree(root, self.wires, controllers)
        for mapping in self.bus(bus).mappings:
            device = mapping.target
            if getattr(device, "dt_name", ""):
                node = root.add(f"{device.dt_name}@{mapping.base:x}")
                node.set("reg", cells64(mapping.base, mapping.size))
                device.dt_node(node, tree)
        return tree

    def _refuse_after_build(self, what: str) -> None:
        if getattr(self, "_finished", False):
            raise PlatformError(f"{what}: the platform is already built (its CPU and device tree are made): "
                                f"add and map devices in build()")

    def add(self, name: str, cls: type[D], **props: Any) -> D:
        self._refuse_after_build(f"add {name!r}")
        if name in self.devices:
            raise PlatformError(f"two devices are named {name!r}")
        parameters = inspect.signature(cls.__init__).parameters
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        valid = [n for n, p in parameters.items() if n not in ("self", "name") and p.kind is not p.VAR_KEYWORD]
        for key in props:
            if key not in valid and not accepts_any:
                raise PlatformError(
                    f"device {name!r} ({cls.__name__}) has no property {key!r}; known: {', '.join(valid) or 'none'}"
                )
        try:
            device = cls(name, **props)
        except PlatformError:
            raise
        except (TypeError, ValueError) as error:
            raise PlatformError(f"device {name!r} ({cls.__name__}): {error}") from error
        self.devices[name] = device
        return device

    def bus(self, name: str, width: int = 64) -> Bus:
        if name not in self.buses:
            self.buses[name] = Bus(name, width=width, time=self.sim)
        return self.buses[name]

    def map(self, bus: str | Bus, base: int, device: Device, size: int | None = None) -> None:
        self._refuse_after_build(f"map {device.name!r}")
        target_bus = self.bus(bus) if isinstance(bus, str) else bus
        if size is None:
            size = getattr(device, "size", None)
            if size is None:
                raise PlatformError(f"map {device.name!r} on {target_bus.name}: no size given and the model declares none")
        target_bus.map(base, size, device)

    def wire(self, output: Signal, input: Input) -> None:
        if not isinstance(output, Signal) or not isinstance(input, Input):
            raise PlatformError(f"wire({output!r}, {input!r}): expected an output Signal and an Input")
        output.connect(input)
        self.wires.append((output, input))

    # -- after build --------------------------------------------------------
    def _elaborate(self) -> None:
        for device in self.devices.values():
            for port, signal in device.outputs.items():
                if signal.required and not signal.connected:
                    raise PlatformError(f"output {signal.name} of {device.name!r} is required but not connected")
        for device in self.devices.values():
            device.attach(self.sim)
        for device in self.devices.values():
            device.reset()

    def run(self, until: int | str | None = None) -> Summary:
        return self.sim.run(until)

    def describe(self) -> str:
        """The address maps and interrupt wiring as text tables."""
        lines = [f"platform {self.name or type(self).__name__}"]
        for bus in self.buses.values():
            digits = max(4, (bus.width + 3) // 4)
            lines.append(f"\n{bus.name} ({bus.width}-bit)")
            lines.append(f"  {'start':>{digits + 2}}  {'end':>{digits + 2}}  {'size':>10}  device (model)")
            for m in bus.mappings:
                model = getattr(m.target, "model", "") or type(m.target).__name__
                lines.append(f"  {m.base:#0{digits + 2}x}  {m.end:#0{digits + 2}x}  {_human(m.size):>10}  {m.target.name} ({model})")
        if self.wires:
            lines.append("\nwires")
            width = max(len(o.name) for o, _ in self.wires)
            for output, input in self.wires:
                lines.append(f"  {output.name:<{width}} -> {input.name}")
        return "\n".join(lines)


def _human(size: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size:#x}"
