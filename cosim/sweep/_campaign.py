"""A campaign: every run of a spec through an engine, with the cache, one retry and Ctrl-C handled.

Every run of the matrix ends as exactly one row: finished, taken from the
cache, failed after its retry, or `cancelled` by Ctrl-C. Nothing is dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from ._engines import Engine
from ._run import GOOD, Row, run_key
from ._spec import Spec

__all__ = ["run_campaign", "SweepInterrupted", "ResultCache", "default_cache_dir"]


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; `rows` holds every run: the finished ones, the rest `cancelled`."""

    def __init__(self, rows: list[Row]) -> None:
        super().__init__("sweep interrupted")
        self.rows = rows


def default_cache_dir() -> Path:
    """~/.cache/cosim/sweep, or $COSIM_SWEEP_CACHE."""
    env = os.environ.get("COSIM_SWEEP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cosim" / "sweep"


class ResultCache:
    """Rows of finished runs as JSON files named by their run's key (`run_key`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get(self, key: str) -> Row | None:
        try:
            return Row.from_dict(json.loads((self.root / f"{key}.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None             # absent, or unreadable: run it again

    def put(self, row: Row) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{row.key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(row.to_dict()))
        tmp.replace(self.root / f"{row.key}.json")     # atomic: a reader never sees half a row


def run_campaign(spec: Spec, engine: Engine, cache: ResultCache | None = None,
                 on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Run every run of `spec` on `engine`; rows in matrix order. `on_row` sees each final row as it comes.

    A run whose outcome is not its own (error, timeout, crashed worker) is submitted once more; the row
    kept is the second attempt's, with the first one's reason in `retried`. Ctrl-C raises
    SweepInterrupted carrying every row.
    """
    rows: dict[int, Row] = {}
    first: dict[int, Row] = {}
    keys = {run.index: run_key(run) for run in spec.runs}

    def finish(row: Row) -> None:
        rows[row.index] = row
        if on_row is not None:
            on_row(row)

    try:
        for run in spec.runs:
            hit = cache.get(keys[run.index]) if cache is not None else None
            if hit is not None:
                hit.index, hit.point, hit.cached = run.index, dict(run.point), True
                finish(hit)
            else:
                engine.submit(run)
        for run, row in engine.completed():
            row.key = keys[run.index]
            if row.outcome not in GOOD and run.index not in first:
                first[run.index] = row
                engine.submit(run)
                continue
            if run.index in first:
                earlier = first[run.index]
                row.attempts, row.retried = 2, f"{earlier.outcome}: {earlier.error}"
            if cache is not None and row.outcome in GOOD:
                cache.put(row)
            finish(row)
    except KeyboardInterrupt:
        engine.cancel()
        for run in spec.runs:
            if run.index not in rows:
                rows[run.index] = Row(index=run.index, point=dict(run.point), properties=dict(run.properties),
                                      outcome="cancelled", error="interrupted (Ctrl-C) before it finished",
                                      key=keys[run.index])
        raise SweepInterrupted([rows[i] for i in sorted(rows)]) from None
    missing = [run.index for run in spec.runs if run.index not in rows]
    assert not missing, f"engine {engine.name} lost runs {missing}"     # an engine bug, never a silent drop
    return [rows[i] for i in sorted(rows)]
