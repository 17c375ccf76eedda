"""Configuration-matrix campaigns: `cosim sweep SPEC.toml` and `cosim.sweep(...)`.

This package owns campaigns of many runs: reading a sweep spec (a platform, a
run bound, fixed properties and a `[matrix]` whose cross product is run, with
an optional console script), running each point as a pure function of its
`Run` that returns a small `Row`, farming the runs out to an engine (in
process, Dask distributed or Ray) with one retry for a run that errs or whose
worker dies, caching finished rows by a hash of what decides them, and
reporting them (table, JSON, CSV, progress). Dask and Ray are optional
extras, imported only when their engine starts. See docs/sweeps.md. `import
cosim` brings only this module (`cosim.sweep(...)`); the submodules load on
first use of one of their names (module `__getattr__`), not with every
`cosim run`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_names

if TYPE_CHECKING:
    from ._campaign import ResultCache, SweepInterrupted, default_cache_dir, run_campaign
    from ._engines import ENGINES, DaskEngine, Engine, EngineError, LocalEngine, RayEngine, make_engine
    from ._report import Progress, failures, table, write_rows
    from ._run import OUTCOMES, Row, run_key, run_one
    from ._spec import Run, Spec, SpecError, Step, load_spec

# Each lazily loaded name and the submodule defining it.
_LAZY = {
    **dict.fromkeys(("ResultCache", "SweepInterrupted", "default_cache_dir", "run_campaign"), "_campaign"),
    **dict.fromkeys(("ENGINES", "DaskEngine", "Engine", "EngineError", "LocalEngine", "RayEngine", "make_engine"),
                    "_engines"),
    **dict.fromkeys(("Progress", "failures", "table", "write_rows"), "_report"),
    **dict.fromkeys(("OUTCOMES", "Row", "run_key", "run_one"), "_run"),
    **dict.fromkeys(("Run", "Spec", "SpecError", "Step", "load_spec"), "_spec"),
}

__all__ = [
    "sweep", "load_spec", "Spec", "Run", "Step", "Row", "SpecError", "SweepInterrupted", "OUTCOMES",
    "run_one", "run_key", "run_campaign", "ResultCache", "default_cache_dir",
    "Engine", "EngineError", "LocalEngine", "DaskEngine", "RayEngine", "make_engine", "ENGINES",
    "table", "failures", "write_rows", "Progress",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


def sweep(spec: str | Path | Mapping[str, Any] | Spec, *, engine: str | Engine = "dask", workers: int | None = None,
          scheduler: str | None = None, address: str | None = None, cache: bool | str | Path = True,
          on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Run a sweep spec (a TOML path, a dict shaped like one, or a loaded Spec); returns one Row per run.

    `engine` is "local", "dask" or "ray" (options as `cosim sweep`'s), or an Engine the caller owns and
    closes. `cache=True` uses default_cache_dir(), a path another directory, False none.
    """
    from ._campaign import ResultCache, default_cache_dir, run_campaign
    from ._engines import make_engine
    from ._spec import Spec, load_spec

    loaded = spec if isinstance(spec, Spec) else load_spec(spec)
    owned = isinstance(engine, str)
    runner = make_engine(engine, workers=workers, scheduler=scheduler, address=address) if owned else engine
    store = None if cache is False else ResultCache(default_cache_dir() if cache is True else Path(cache))
    try:
        return run_campaign(loaded, runner, store, on_row)
    finally:
        if owned:
            runner.close()
