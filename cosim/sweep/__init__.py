"""Configuration-matrix campaigns: `cosim sweep SPEC.toml` and `cosim.sweep(...)`.

This package owns campaigns of many runs: reading a sweep spec (a platform, a
run bound, fixed properties and a `[matrix]` whose cross product is run, with
an optional console script), running each point as a pure function of its
`Run` that returns a small `Row`, farming the runs out to an engine (in
process, Dask distributed or Ray) with one retry for a run that errs or whose
worker dies, caching finished rows by a hash of what decides them, and
reporting them (table, JSON, CSV, progress). Dask and Ray are optional
extras, imported only when their engine starts. See docs/sweeps.md.
"""

from ._campaign import ResultCache, SweepInterrupted, default_cache_dir, run_campaign, sweep
from ._engines import ENGINES, DaskEngine, Engine, EngineError, LocalEngine, RayEngine, make_engine
from ._report import Progress, failures, table, write_rows
from ._run import OUTCOMES, Row, run_key, run_one
from ._spec import Run, Spec, SpecError, Step, load_spec

__all__ = [
    "sweep", "load_spec", "Spec", "Run", "Step", "Row", "SpecError", "SweepInterrupted", "OUTCOMES",
    "run_one", "run_key", "run_campaign", "ResultCache", "default_cache_dir",
    "Engine", "EngineError", "LocalEngine", "DaskEngine", "RayEngine", "make_engine", "ENGINES",
    "table", "failures", "write_rows", "Progress",
]
