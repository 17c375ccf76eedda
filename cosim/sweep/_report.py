"""Showing and saving rows: the table on stdout, failures with their reasons, JSON and CSV, the progress bar."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from .._time import format_time
from ._run import Row
from .._errors import CosimError

__all__ = ["table", "failures", "write_rows", "Progress"]

_FIXED_COLUMNS = ("index", "outcome", "status", "stop_reason", "sim_time", "wall_time", "instructions",
                  "console_sha256", "console_bytes", "error", "attempts", "cached", "retried", "worker", "key")


def _point(row: Row) -> str:
    return " ".join(f"{k}={v}" for k, v in row.point.items())


def table(rows: list[Row]) -> str:
    """One line per run: its matrix values, outcome, status, simulated and wall time, instructions, stop."""
    axes = list(rows[0].point) if rows else []
    head = ["#", *axes, "outcome", "status", "sim time", "wall", "instructions", "stopped by"]
    body = [[str(r.index), *(str(r.point.get(a, "")) for a in axes), r.outcome + (" (cached)" if r.cached else ""),
             "" if r.status is None else str(r.status), format_time(r.sim_time), f"{r.wall_time:.2f} s",
             "" if r.instructions is None else f"{r.instructions:,}", r.stop_reason[:48]] for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [head, *body])


def failures(rows: list[Row]) -> str:
    """Every run that is not ok, with why, and every run that needed its retry; empty when there are none."""
    bad = [r for r in rows if not r.ok]
    lines = [f"{len(bad)} of {len(rows)} runs not ok:"] if bad else []
    for r in bad:
        retry = f" (retried after {r.retried})" if r.retried else ""
        lines.append(f"  #{r.index} {_point(r) or '(no matrix)'}: {r.outcome}: {r.error or r.stop_reason}{retry}")
    recovered = [r for r in rows if r.ok and r.retried]
    if recovered:
        lines.append(f"{len(recovered)} runs ok on their second attempt:")
        lines += [f"  #{r.index} {_point(r) or '(no matrix)'}: first attempt {r.retried}" for r in recovered]
    return "\n".join(lines)


def write_rows(rows: list[Row], path: Path, spec_source: str) -> None:
    """JSON (every field, summary rows nested) or CSV (one column per field and per summary row)."""
    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps({"spec": spec_source, "rows": [r.to_dict() for r in rows]}, indent=1) + "\n")
    elif path.suffix == ".csv":
        import csv

        axes = list(dict.fromkeys(k for r in rows for k in r.point))
        extra = list(dict.fromkeys(k for r in rows for k in r.summary))
        with path.open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow([*_FIXED_COLUMNS[:1], *axes, *_FIXED_COLUMNS[1:], *extra])
            for r in rows:
                data = r.to_dict()
                out.writerow([r.index, *(r.point.get(a, "") for a in axes), *(data[c] for c in _FIXED_COLUMNS[1:]),
                              *(r.summary.get(k, "") for k in extra)])
    else:
        raise CosimError(f"--out {path}: use a .json or .csv file name")


class Progress:
    """`[#####-----] 7/16  ok 6  failed 1  cached 2  ETA 12 s` on one rewritten stderr line."""

    def __init__(self, total: int, stream: IO[str] | None = None, width: int = 24) -> None:
        self.total, self.width = total, width
        self.stream = stream or sys.stderr
        self.counts: Counter[str] = Counter()
        self.start = time.perf_counter()
        self.ran = 0                # finished here, not from the cache: what the ETA is measured on

    def update(self, row: Row) -> None:
        self.counts["cached" if row.cached else row.outcome] += 1
        self.ran += not row.cached
        self.draw()

    def draw(self) -> None:
        done = sum(self.counts.values())
        filled = self.width * done // max(self.total, 1)
        left = self.total - done
        if left and self.ran:
            eta = f"ETA {(time.perf_counter() - self.start) / self.ran * left:.0f} s"
        else:
            eta = "" if left else f"done in {time.perf_counter() - self.start:.1f} s"
        counts = "  ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        self.stream.write(f"\r[{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total}  {counts}  {eta}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()

    @staticmethod
    def wanted(forced: bool, stream: Any = None) -> bool:
        return forced or bool(getattr(stream or sys.stderr, "isatty", lambda: False)())
