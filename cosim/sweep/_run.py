"""One run of a sweep: `run_one(run)` builds the platform, drives it and returns a `Row`.

It is a pure function of its `Run` (with the software CPU the same run gives
the same row on any worker, wall time aside) and never raises for what the run
does: a model error, a guest stuck in an exception loop or a console script
that does not complete are outcomes, recorded with their reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from .._errors import CosimError
from .._time import MS, TimeError, format_time
from ._spec import Run

__all__ = ["Row", "run_one", "run_key", "OUTCOMES", "GOOD"]

# ok: ran to its bound or stopped with status 0, script done; failed: the guest's own verdict (a non-zero
# exit status) or a script marker not seen; error: an exception while building or running; timeout: the
# wall-time limit; crashed: the worker died; cancelled: Ctrl-C came first.
OUTCOMES = ("ok", "failed", "error", "timeout", "crashed", "cancelled")
GOOD = ("ok", "failed")         # outcomes the run itself decided: cached, and not retried
_SLICE = 10 * MS                # runs advance in slices of simulated time, so wall limits and scripts are checked


@dataclass
class Row:
    """What one run did. `wall_time`, `worker`, `attempts`, `cached` and `retried` vary between
    identical runs, `key` is the campaign's bookkeeping; the rest is a function of the run (`Row.result()`)."""

    index: int
    point: dict[str, Any]
    properties: dict[str, Any]
    outcome: str
    status: int | None = None       # the guest's exit status when it stopped itself
    stop_reason: str = ""
    sim_time: int = 0               # ps
    wall_time: float = 0.0          # s
    instructions: int | None = None
    summary: dict[str, str] = field(default_factory=dict)
    console_sha256: str = ""
    console_bytes: int = 0
    console: str | None = None      # the whole output, with keep_console
    log: str = ""                   # what the guest wrote to sim-control's log (SIMCTL_PUTC)
    error: str = ""                 # why it is not ok
    key: str = ""                   # cache key
    worker: str = ""
    attempts: int = 1
    cached: bool = False
    retried: str = ""               # why the first attempt was not kept

    VARYING = ("wall_time", "worker", "attempts", "cached", "retried", "key")

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def result(self) -> dict[str, Any]:
        """The fields that identical runs agree on."""
        return {k: v for k, v in asdict(self).items() if k not in self.VARYING}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Row":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def run_one(run: Run) -> Row:
    """Build `run.platform` with its properties, run it to its bound, and describe the outcome."""
    from cosim.chardev import BufferBackend
    from cosim.cpu import Cpu
    from cosim._platform import get_platform

    start = time.perf_counter()
    row = Row(index=run.index, point=dict(run.point), properties=dict(run.properties), outcome="error",
              worker=f"{os.uname().nodename}:{os.getpid()}")
    console = None
    try:
        cls = get_platform(run.platform)
        props = dict(run.properties)
        if "console" in cls.properties() and props.get("console", "buffer") == "buffer":
            console = props["console"] = BufferBackend()
        platform = cls(**props)
        logs = _capture_logs(platform)
        try:
            _drive(platform, console, run, row, start)
        finally:
            platform.sim.close()        # flushes and releases what the models hold, also after an error
        row.log = "".join(log.text for log in logs)
        row.instructions = sum(d.instructions for d in platform.devices.values() if isinstance(d, Cpu)) or None
    except (CosimError, TimeError, OSError) as error:
        row.outcome, row.error = "error", str(error).splitlines()[0]
    except Exception as error:  # noqa: BLE001 — a model's bug is this run's outcome, not the campaign's end
        row.outcome, row.error = "error", f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    output = bytes(console.output) if console is not None else b""
    row.console_sha256, row.console_bytes = hashlib.sha256(output).hexdigest(), len(output)
    if run.keep_console:
        row.console = output.decode(errors="replace")
    row.wall_time = time.perf_counter() - start
    return row


def _drive(platform: Any, console: Any, run: Run, row: Row, start: float) -> None:
    """Run in slices until the bound, a stop, the end of the script or the wall limit; fill in `row`."""
    sim = platform.sim
    steps, step, mark = list(run.script), 0, 0      # mark: where in the output the next marker is looked for
    step_deadline = _deadline(sim.now, steps[0].timeout) if steps else None
    summary = None
    while True:
        while step < len(steps):                    # the script: as many steps as the output allows
            marker = steps[step].expect
            if marker:
                found = console.output.find(marker.encode(), mark)
                if found < 0:
                    break
                mark = found + len(marker)
            if steps[step].send:
                console.feed(steps[step].send)
                mark = len(console.output)          # what the guest echoes is not a marker
            step += 1
            step_deadline = _deadline(sim.now, steps[step].timeout) if step < len(steps) else None
        stop = sim.stop_request
        if steps and step == len(steps):
            row.outcome, row.stop_reason = "ok", "console script done"
            break
        if stop is not None:
            row.status, row.stop_reason = stop.status, stop.reason
            row.outcome = "ok" if stop.status == 0 and not steps else "failed"
            if steps:
                row.error = _unseen(steps, step, console, f"the guest stopped first ({stop.reason})")
            elif stop.status:
                row.error = f"exit status {stop.status}: {stop.reason}"
            break
        bound = min(x for x in (run.until, step_deadline, math.inf) if x is not None)
        if sim.now >= bound or (summary is not None and sim.peek() == math.inf):
            quiet = sim.now < bound
            bounded = run.until is not None and sim.now >= run.until
            row.stop_reason = ("no more events" if quiet else f"until {format_time(sim.now)}" if bounded
                               else f"script step {step + 1} timed out at {format_time(sim.now)}")
            row.outcome = "failed" if steps else "ok"
            if steps:
                row.error = _unseen(steps, step, console, "nothing left to run" if quiet else
                                    f"not seen by {format_time(sim.now)}")
            break
        if time.perf_counter() - start > run.wall_limit:
            row.outcome, row.stop_reason = "timeout", f"wall limit {run.wall_limit:g} s"
            row.error = f"wall limit of {run.wall_limit:g} s reached at {format_time(sim.now)} simulated"
            break
        summary = platform.run(min(sim.now + _SLICE, bound) if bound != math.inf else sim.now + _SLICE)
    row.sim_time = sim.now
    if summary is not None:
        # MIPS is instructions over wall time: it varies between identical runs and the row has both.
        row.summary = {k: v for k, v in summary.extra.items() if not k.endswith(" MIPS")}


def _capture_logs(platform: Any) -> list[Any]:
    """Sim-control logs go to the row instead of the worker's stdout."""
    from cosim.chardev import BufferBackend
    from cosim.models.simctl import SimControl

    logs = []
    for device in platform.devices.values():
        if isinstance(device, SimControl):
            device.log = BufferBackend()
            logs.append(device.log)
    return logs


def _deadline(now: int, timeout: int | None) -> int | None:
    return None if timeout is None else now + timeout


def _unseen(steps: list, step: int, console: Any, why: str) -> str:
    tail = bytes(console.output[-60:]).decode(errors="replace").replace("\r", "").replace("\n", "\\n")
    return f"console script step {step + 1}: {steps[step].expect!r} {why}; output ends {tail!r}"


# -- the cache key ----------------------------------------------------------
def run_key(run: Run) -> str:
    """A hash of what decides a run's result: platform, properties (a file's contents, not its name),
    bound, script, and cosim's own code (models, platforms and pinned images included)."""
    props = {k: _identity(v) for k, v in sorted(run.properties.items())}
    text = json.dumps({"platform": run.platform, "properties": props, "until": run.until,
                       "script": [asdict(s) for s in run.script], "keep_console": run.keep_console,
                       "code": _code_digest()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _identity(value: Any) -> Any:
    if isinstance(value, str) and os.sep in value and Path(value).is_file():
        return {"sha256": _file_digest(Path(value))}
    return value


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@lru_cache(maxsize=1)
def _code_digest() -> str:
    import cosim
    import cosim.models
    import cosim.platforms

    digest = hashlib.sha256()
    for root in (Path(cosim.__file__).parent, Path(cosim.models.__file__).parent, Path(cosim.platforms.__file__).parent):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".toml", ".S", ".ld") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
