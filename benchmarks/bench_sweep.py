"""`cosim sweep` on Dask vs a loop in one process: 16 U-Boot boots to the `=>` prompt.

    python benchmarks/bench_sweep.py

The 16 runs (4 quanta x 2 countings x 2 RAM sizes, each driven by a console
script to the prompt) are run three ways in the same process run: a plain loop
of `run_one` (the peer: no engine at all), then on a Dask LocalCluster of 1
and of 2 worker processes. Printed: wall times, the speed-up of 2 workers over
the loop and over 1 worker, the cluster's start-up, and the per-run overhead
of the engine (1 worker's campaign minus the loop, over 16 runs), also on
16 tiny runs (`pc` without a CPU for 1 ms) where the engine is all there is.
On a machine with fewer free cores than workers the speed-up is bounded by them.
"""

from __future__ import annotations

import os
import time

from cosim.images.fetch import uboot_image
from cosim.sweep import DaskEngine, load_spec, run_one, sweep

SPEC = {
    "platform": "virt", "until": "5 s",
    "matrix": {"quantum": ["100us", "250us", "500us", "1ms"], "counting": ["block", "instruction"],
               "ram_size": ["128M", "256M"]},
    "script": [{"expect": "Hit any key", "send": "\n"}, {"expect": "=> "}],
}


TINY = {"platform": "pc", "until": "1 ms", "properties": {"image": "none", "console": "none"},
        "matrix": {"ram_size": [f"{16 + m}M" for m in range(16)]}}


def timed(spec, engine=None) -> tuple[float, list]:
    start = time.perf_counter()
    rows = sweep(spec, engine=engine, cache=False) if engine else [run_one(run) for run in spec.runs]
    return time.perf_counter() - start, rows


def main() -> None:
    uboot_image()                       # fetched once, outside the timings
    spec = load_spec(SPEC)
    runs = len(spec.runs)
    print(f"bench_sweep: {runs} U-Boot boots to the prompt; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")

    loop, reference = timed(spec)
    assert all(row.ok for row in reference), [row.error for row in reference if not row.ok]
    print(f"  loop in one process:  {loop:6.2f} s  ({loop / runs * 1e3:.0f} ms a run)")

    campaign = {}
    for workers in (1, 2):
        start = time.perf_counter()
        with DaskEngine(workers=workers) as engine:
            engine.start()
            up = time.perf_counter() - start
            campaign[workers], rows = timed(spec, engine)
            if workers == 1:
                tiny_spec = load_spec(TINY)
                tiny_loop, _ = timed(tiny_spec)
                tiny_dask, _ = timed(tiny_spec, engine)
        assert [row.result() for row in rows] == [row.result() for row in reference], "rows differ from the loop's"
        print(f"  dask, {workers} worker{'s' if workers > 1 else ' '}:     {campaign[workers]:6.2f} s  "
              f"(+ {up:.2f} s cluster start-up; {len({r.worker for r in rows})} worker process(es) used)")

    print(f"  speed-up, 2 workers over the loop:    {loop / campaign[2]:.2f}x")
    print(f"  speed-up, 2 workers over 1 worker:    {campaign[1] / campaign[2]:.2f}x")
    print(f"  engine overhead per run (1 worker):   {(campaign[1] - loop) / runs * 1e3:+.0f} ms")
    print(f"  tiny runs: loop {tiny_loop / 16 * 1e3:.1f} ms a run, dask (1 worker) {tiny_dask / 16 * 1e3:.1f} ms a run: "
          f"engine overhead {(tiny_dask - tiny_loop) / 16 * 1e3:+.1f} ms a run")


if __name__ == "__main__":
    main()
