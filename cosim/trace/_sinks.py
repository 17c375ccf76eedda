"""Trace files: VCD through pyvcd, and Chrome/Perfetto trace-event JSON.

Both take integer picoseconds. VCD keeps them exact (timescale 1 ps); the
trace-event format counts microseconds, so its timestamps are ps / 10**6 as
decimal numbers with six places (exact down to the picosecond).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from .._errors import CosimError

__all__ = ["VcdSink", "JsonSink"]


def _us(ps: int) -> str:
    """Picoseconds as the exact decimal microseconds the trace-event format wants."""
    whole, frac = divmod(ps, 1_000_000)
    return f"{whole}.{frac:06d}"


class VcdSink:
    """One 1-bit wire per signal, scoped platform.device, name = port (GTKWave shows the hierarchy)."""

    def __init__(self, path: Path) -> None:
        try:
            from vcd import VCDWriter
        except ImportError as error:
            raise CosimError("VCD traces need pyvcd: pip install 'cosim[trace]'") from error
        self._file: TextIO = path.open("w")
        self._writer = VCDWriter(self._file, timescale="1 ps", date=None, version="cosim")
        self._vars: dict[str, Any] = {}
        self._last = 0

    def wire(self, path: str, level: bool) -> None:
        scope, _, name = path.rpartition(".")
        self._vars[path] = self._writer.register_var(scope, name, "wire", size=1, init=int(level))

    def change(self, path: str, time: int, level: bool) -> None:
        self._last = time
        self._writer.change(self._vars[path], time, int(level))

    def close(self, time: int) -> None:
        self._writer.close(max(time, self._last))
        self._file.close()


class JsonSink:
    """Trace-event JSON, streamed: a process for the platform, a thread (track) per CPU and per device."""

    def __init__(self, path: Path, platform: str) -> None:
        self._file: TextIO = path.open("w")
        self._file.write('{"displayTimeUnit": "ns", "traceEvents": [\n')
        self._first = True
        self._tracks: dict[str, int] = {}
        self._event({"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": platform}})

    def _event(self, event: dict[str, Any], ts: int | None = None, dur: int | None = None) -> None:
        text = json.dumps(event, separators=(",", ":"))
        # Timestamps are spliced in as exact decimals (json.dumps would go through a float).
        extra = (f',"ts":{_us(ts)}' if ts is not None else "") + (f',"dur":{_us(dur)}' if dur is not None else "")
        self._file.write(("" if self._first else ",\n") + text[:-1] + extra + "}")
        self._first = False

    def track(self, name: str) -> int:
        tid = self._tracks.get(name)
        if tid is None:
            tid = self._tracks[name] = len(self._tracks) + 1
            self._event({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}})
        return tid

    def span(self, track: str, name: str, start: int, duration: int, args: dict[str, Any]) -> None:
        self._event({"name": name, "cat": "cpu", "ph": "X", "pid": 1, "tid": self.track(track), "args": args},
                    start, duration)

    def instant(self, track: str, name: str, time: int, category: str, args: dict[str, Any]) -> None:
        self._event({"name": name, "cat": category, "ph": "i", "s": "t", "pid": 1, "tid": self.track(track),
                     "args": args}, time)

    def close(self, time: int) -> None:
        self._file.write("\n]}\n")
        self._file.close()
