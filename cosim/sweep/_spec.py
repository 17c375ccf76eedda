"""Sweep specs: a TOML file (or the same as a dict) read into a `Spec` of `Run`s.

    platform = "virt"
    until = "1s"
    [properties]
    firmware = "guest.bin"
    [matrix]
    quantum = ["100us", "1ms"]
    counting = ["block", "instruction"]
    [[script]]
    expect = "=> "
    send = "version\\n"

Everything is checked before a run starts: keys, the platform, that every
property exists and parses, times, script steps. Errors name the file and the
line (`spec.toml:7: ...`) where it can be found.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import CosimError
from .._platform import Platform, get_platform
from .._time import TimeError, parse_time

__all__ = ["SpecError", "Spec", "Run", "Step", "load_spec", "DEFAULT_WALL_LIMIT"]

DEFAULT_WALL_LIMIT = 600.0      # seconds of wall time one run may take before it is stopped
_TOP_KEYS = ("platform", "until", "wall_limit", "keep_console", "properties", "matrix", "script")
_STEP_KEYS = ("expect", "send", "timeout")
_CAPTURED = ("buffer", "none")  # the console settings a sweep allows: it captures each run's output itself


class SpecError(CosimError):
    """A sweep spec that cannot be run; the message starts with FILE:LINE where known."""


@dataclass(frozen=True)
class Step:
    """One step of a console script: wait for `expect` (if any), then type `send` (if any)."""

    expect: str = ""
    send: str = ""
    timeout: int | None = None      # simulated ps from the previous step; None: the run's bound


@dataclass(frozen=True)
class Run:
    """Everything one run needs, and nothing else: a run is a pure function of this."""

    index: int
    platform: str
    point: dict[str, Any]           # the matrix values of this run
    properties: dict[str, Any]      # fixed properties and the point together
    until: int | None = None
    script: tuple[Step, ...] = ()
    keep_console: bool = False
    wall_limit: float = DEFAULT_WALL_LIMIT


@dataclass(frozen=True)
class Spec:
    source: str                     # the file name, or "<spec>" for a dict
    platform: str
    runs: tuple[Run, ...] = field(default=())
    matrix: dict[str, list[Any]] = field(default_factory=dict)


class _Locator:
    """Finds the line of `key = ...` inside a `[table]` of the TOML text (tomllib keeps no positions)."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?")

    def __init__(self, source: str, text: str | None) -> None:
        self.source = source
        self.lines = text.splitlines() if text is not None else []

    def line(self, table: str, key: str | None = None) -> int | None:
        current = ""
        for number, line in enumerate(self.lines, 1):
            header = self._HEADER.match(line)
            if header:
                current = header.group(1).strip("\"'")
                if key is None and current == table:
                    return number
                continue
            if key is not None and current == table and re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
                return number
        return None

    def error(self, message: str, table: str = "", key: str | None = None) -> SpecError:
        number = self.line(table, key)
        return SpecError(f"{self.source}:{number}: {message}" if number else f"{self.source}: {message}")


def load_spec(spec: str | Path | Mapping[str, Any]) -> Spec:
    """Read and check a sweep spec: a TOML file's path, or a dict shaped like one."""
    if isinstance(spec, Mapping):
        return _parse(dict(spec), _Locator("<spec>", None), base=None)
    import tomllib      # here, not at the top: `import cosim` stays cheap for `cosim run`

    path = Path(spec)
    try:
        text = path.read_text()
    except OSError as error:
        raise SpecError(f"{path}: cannot read the sweep spec: {error.strerror or error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib says "... (at line N, column M)": lead with the position, as compilers do.
        found = re.search(r"\(at line (\d+), column \d+\)", str(error))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        where = f"{path}:{found.group(1)}" if found else str(path)
        raise SpecError(f"{where}: not valid TOML: {message}") from None
    return _parse(data, _Locator(str(path), text), base=path.resolve().parent)


def _parse(data: dict[str, Any], where: _Locator, base: Path | None) -> Spec:
    for key in data:
        if key not in _TOP_KEYS:
            raise where.error(f"unknown key {key!r}; known: {', '.join(_TOP_KEYS)}", "", key)
    name = data.get("platform")
    if not isinstance(name, str) or not name:
        raise where.error("'platform' must name a platform (see `cosim list`)", "", "platform")
    try:
        cls = get_platform(name)
    except CosimError as error:
        raise where.error(str(error), "", "platform") from None
    until = _time(data.get("until"), where, "", "until")
    wall_limit = data.get("wall_limit", DEFAULT_WALL_LIMIT)
    if isinstance(wall_limit, bool) or not isinstance(wall_limit, (int, float)) or not wall_limit > 0:
        raise where.error(f"'wall_limit' must be a positive number of seconds, not {wall_limit!r}", "", "wall_limit")
    keep_console = data.get("keep_console", False)
    if not isinstance(keep_console, bool):
        raise where.error(f"'keep_console' must be true or false, not {keep_console!r}", "", "keep_console")

    fixed = _table(data, "properties", where)
    matrix = _table(data, "matrix", where)
    known = cls.properties()
    properties = {key: _value(cls, known, key, value, where, "properties", base)[1] for key, value in fixed.items()}
    axes: dict[str, list[tuple[str, Any]]] = {}       # per property: (as written, as the platform gets it)
    for key, values in matrix.items():
        if key in fixed:
            raise where.error(f"property {key!r} is both fixed in [properties] and swept in [matrix]", "matrix", key)
        if not isinstance(values, list) or not values:
            raise where.error(f"matrix {key!r} must be a non-empty list of values, not {values!r}", "matrix", key)
        axes[key] = [_value(cls, known, key, value, where, "matrix", base) for value in values]
        if len({shown for shown, _ in axes[key]}) != len(axes[key]):
            raise where.error(f"matrix {key!r} lists a value twice", "matrix", key)

    script = _script(data.get("script", []), where)
    console = properties.get("console")
    if "console" in axes or (console is not None and console not in _CAPTURED):
        raise where.error("a sweep captures each run's console itself: 'console' may only be fixed to "
                          "'buffer' (the default) or 'none'", "matrix" if "console" in axes else "properties", "console")
    if script and ("console" not in known or console == "none"):
        raise where.error(f"a console script needs a console; platform {name!r} "
                          + ("has none" if "console" not in known else "has console = 'none'"), "script")

    runs = tuple(Run(index=i, platform=name, point={k: shown for k, (shown, _) in zip(axes, values)},
                     properties={**properties, **{k: value for k, (_, value) in zip(axes, values)}}, until=until,
                     script=script, keep_console=keep_console, wall_limit=float(wall_limit))
                 for i, values in enumerate(itertools.product(*axes.values())))
    return Spec(source=where.source, platform=name, runs=runs,
                matrix={k: [shown for shown, _ in values] for k, values in axes.items()})


def _table(data: dict[str, Any], name: str, where: _Locator) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise where.error(f"'{name}' must be a table ([{name}]), not {table!r}", "", name)
    return table


def _time(value: Any, where: _Locator, table: str, key: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise where.error(f"{key!r} must be a time with its unit, e.g. \"10 ms\", not {value!r}", table, key)
    try:
        return parse_time(value)
    except TimeError as error:
        raise where.error(f"{key} = {value!r}: {error}", table, key) from None


def _value(cls: type[Platform], known: dict[str, Any], key: str, value: Any, where: _Locator, table: str,
           base: Path | None) -> tuple[str, str]:
    """A property value as written and as the platform gets it: checked with the property's own parser,
    a relative path made absolute."""
    if key not in known:
        raise where.error(f"platform {cls.name!r} has no property {key!r}; known: {', '.join(sorted(known))}",
                          table, key)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise where.error(f"property {key!r}: expected a string or an integer, not {value!r}", table, key)
    text = str(value)
    try:
        known[key].parse(text)
    except (CosimError, TimeError, ValueError, TypeError) as error:
        raise where.error(f"property {key}={text!r}: {error}", table, key) from None
    if base is not None and isinstance(value, str) and not Path(value).is_absolute() and (base / value).is_file():
        return text, str(base / value)  # a guest image beside the spec: workers are not started where it is
    return text, text


def _script(steps: Any, where: _Locator) -> tuple[Step, ...]:
    if not isinstance(steps, list) or not all(isinstance(step, dict) for step in steps):
        raise where.error("'script' must be a list of steps ([[script]] tables with expect/send/timeout)", "script")
    parsed = []
    for number, step in enumerate(steps, 1):
        for key, value in step.items():
            if key not in _STEP_KEYS:
                raise where.error(f"script step {number}: unknown key {key!r}; known: {', '.join(_STEP_KEYS)}",
                                  "script", key)
            if not isinstance(value, str):
                raise where.error(f"script step {number}: {key!r} must be a string, not {value!r}", "script", key)
        if not step.get("expect") and not step.get("send"):
            raise where.error(f"script step {number}: give 'expect' (a marker to wait for), 'send' (text to type) "
                              "or both", "script")
        parsed.append(Step(expect=step.get("expect", ""), send=step.get("send", ""),
                           timeout=_time(step.get("timeout"), where, "script", "timeout")))
    return tuple(parsed)
