"""The pytest side of sweeps (entry point `pytest11`): a parametrised test matrix run on an engine.

    MATRIX = {"counting": ["block", "instruction"], "quantum": ["100us", "1ms"]}

    @pytest.mark.parametrize("point", points(MATRIX))
    def test_boots(cosim_sweep, point):
        row = cosim_sweep({"platform": "virt", "until": "1s", "matrix": MATRIX}).row(point)
        assert row.ok, row.error

The first test that asks for a spec runs all of its runs at once, on the
engine chosen with `--cosim-engine` (local by default; dask with
`--cosim-workers N` or `--cosim-scheduler tcp://HOST:PORT`; ray with
`--cosim-address`); the others get their rows from that one campaign.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

import pytest

from . import sweep
from ._engines import ENGINES, Engine, make_engine
from ._run import Row

__all__ = ["points", "SweepRows", "cosim_sweep"]


def points(matrix: Mapping[str, list[Any]]) -> list[Any]:
    """The matrix's cross product as pytest params, each a {property: value} dict with a readable id."""
    names = list(matrix)
    return [pytest.param(dict(zip(names, map(str, values))), id="-".join(f"{k}={v}" for k, v in zip(names, values)))
            for values in itertools.product(*matrix.values())]


class SweepRows:
    """A spec's rows; `row(point)` finds the run of one matrix point."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def row(self, point: Mapping[str, Any]) -> Row:
        wanted = {k: str(v) for k, v in point.items()}
        for row in self.rows:
            if {k: str(v) for k, v in row.point.items()} == wanted:
                return row
        raise KeyError(f"no run of this sweep has {wanted}; its points: {[r.point for r in self.rows]}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cosim-sweep", "cosim sweeps (the cosim_sweep fixture)")
    group.addoption("--cosim-engine", default="local", choices=ENGINES, help="engine of cosim_sweep (default local)")
    group.addoption("--cosim-workers", type=int, help="worker processes of a local Dask cluster or Ray")
    group.addoption("--cosim-scheduler", help="a running Dask cluster's scheduler, tcp://HOST:PORT")
    group.addoption("--cosim-address", help="a running Ray cluster's address")


@pytest.fixture(scope="session")
def cosim_sweep(request: pytest.FixtureRequest):  # -> Callable[[spec], SweepRows]
    """`cosim_sweep(spec)`: every run of `spec` (a dict or a TOML path) on the session's engine, once per session."""
    option = request.config.getoption
    engine: Engine | None = None
    done: dict[str, SweepRows] = {}

    def run(spec: Mapping[str, Any] | str) -> SweepRows:
        nonlocal engine
        key = json.dumps(spec, sort_keys=True, default=str)
        if key not in done:
            if engine is None:
                engine = make_engine(option("--cosim-engine"), workers=option("--cosim-workers"),
                                     scheduler=option("--cosim-scheduler"), address=option("--cosim-address"))
            done[key] = SweepRows(sweep(spec, engine=engine, cache=False))
        return done[key]

    yield run
    if engine is not None:
        engine.close()
