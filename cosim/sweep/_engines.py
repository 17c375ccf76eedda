"""Engines: where runs execute. Each takes runs with `submit` and gives back rows as they finish.

`LocalEngine` runs them one after the other in this process; `DaskEngine` on
Dask distributed (a LocalCluster of worker processes, or an existing cluster
by its scheduler's address: the same code path); `RayEngine` on Ray. Dask and
Ray are imported only when their engine starts, so `cosim run` never pays for
them. A worker that dies under a run turns into a row with outcome `crashed`;
whether to retry is the campaign's decision, not the engine's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from ._run import Row, run_one
from .._errors import CosimError
from ._spec import Run

__all__ = ["EngineError", "Engine", "LocalEngine", "DaskEngine", "RayEngine", "make_engine", "ENGINES"]

ENGINES = ("local", "dask", "ray")


class EngineError(CosimError):
    """An engine that cannot be used as asked: a bad option, a missing extra, a cluster not reached."""


class Engine:
    """The interface: `submit(run)` any number of times, then iterate `completed()`; `close()` at the end."""

    name = "engine"

    def start(self) -> None:
        """Bring the engine up (a cluster, a connection); `submit` does it when needed. Idempotent."""

    def submit(self, run: Run) -> None:
        raise NotImplementedError

    def completed(self) -> Iterator[tuple[Run, Row]]:
        """Yields (run, row) as runs finish, including runs submitted while iterating; ends when none is left."""
        raise NotImplementedError

    def cancel(self) -> None:
        """Drop every run not finished yet."""

    def close(self) -> None:
        """Release what the engine started (a local cluster); idempotent."""

    def describe(self) -> str:
        return self.name

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _crashed(run: Run, error: BaseException) -> Row:
    reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
    return Row(index=run.index, point=dict(run.point), properties=dict(run.properties), outcome="crashed",
               error=reason)


@contextlib.contextmanager
def _ctrl_c_left_to_us() -> Iterator[None]:
    """Processes started inside ignore SIGINT (an ignored signal stays ignored across exec): Ctrl-C reaches
    the whole process group, and it is this process that cancels the campaign and stops the workers,
    rather than every worker dying with a traceback of its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_workers(workers: int | None) -> None:
    if workers is not None and workers < 1:
        raise EngineError(f"--workers must be at least 1, not {workers}")


def _missing(engine: str, package: str) -> EngineError:
    return EngineError(f"engine {engine!r} needs {package}: pip install 'cosim[{engine}]' (or use --engine local)")


class LocalEngine(Engine):
    """Runs in this process, one after the other: no start-up cost, for small sweeps and debugging."""

    name = "local"

    def __init__(self) -> None:
        self._queue: list[Run] = []

    def submit(self, run: Run) -> None:
        self._queue.append(run)

    def completed(self) -> Iterator[tuple[Run, Row]]:
        while self._queue:
            run = self._queue.pop(0)
            yield run, run_one(run)

    def cancel(self) -> None:
        self._queue.clear()


class DaskEngine(Engine):
    """Dask distributed: `scheduler=None` starts a LocalCluster of `workers` processes (one thread each,
    as a run holds the GIL); `scheduler="tcp://HOST:PORT"` uses a running cluster."""

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, connect_timeout: float = 20.0) -> None:
        _check_workers(workers)
        if workers is not None and scheduler:
            raise EngineError("--workers starts a local cluster; a cluster given by --scheduler has its own workers")
        self.workers = workers or os.cpu_count() or 1
        self.scheduler = scheduler
        self.connect_timeout = connect_timeout
        self._client: Any = None
        self._cluster: Any = None
        self._pending: Any = None       # distributed.as_completed
        self._runs: dict[str, Run] = {}

    def describe(self) -> str:
        return f"dask ({self.scheduler})" if self.scheduler else f"dask (local cluster, {self.workers} workers)"

    def start(self) -> None:
        if self._client is not None:
            return
        try:
            import dask
            from distributed import Client, LocalCluster, as_completed
        except ImportError:
            raise _missing("dask", "dask[distributed]") from None
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            # Its chatter is not the sweep's: what happens to a run (a worker's death too) is in its row.
            logging.getLogger("distributed").setLevel(logging.ERROR)
            # Ctrl-C inside distributed's sync() trips a NameError in its cancel callback, logged by tornado.
            logging.getLogger("tornado.application").setLevel(logging.CRITICAL)
        if self.scheduler:
            try:
                self._client = Client(self.scheduler, timeout=self.connect_timeout)
            except (OSError, TimeoutError) as error:
                raise EngineError(f"cannot reach the Dask scheduler at {self.scheduler}: {error}") from None
        else:
            # A worker dying under a run is reported at once (KilledWorker) so the campaign retries it
            # exactly once, rather than the scheduler re-running it up to three times on its own.
            try:
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}), _ctrl_c_left_to_us():
                    self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                 dashboard_address=None, silence_logs=logging.CRITICAL)
            except (OSError, RuntimeError, TimeoutError) as error:
                raise EngineError(f"cannot start a local Dask cluster of {self.workers} workers: {error}") from None
            self._client = Client(self._cluster)
        self._pending = as_completed()

    def submit(self, run: Run) -> None:
        self.start()
        future = self._client.submit(run_one, run, pure=False, key=f"cosim-run-{run.index}-{os.urandom(4).hex()}")
        self._runs[future.key] = run
        self._pending.add(future)

    def completed(self) -> Iterator[tuple[Run, Row]]:
        if self._pending is None:
            return
        for future in self._pending:
            run = self._runs.pop(future.key)
            try:
                row = future.result()
            except Exception as error:  # noqa: BLE001 — run_one catches its own errors: this is the worker's death
                row = _crashed(run, error)
            future.release()
            yield run, row

    def cancel(self) -> None:
        if self._pending is not None:
            futures = list(self._pending.futures)
            self._pending.clear()
            if futures:
                self._client.cancel(futures)
            self._runs.clear()

    def close(self) -> None:
        client, cluster, self._client, self._cluster, self._pending = self._client, self._cluster, None, None, None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


class RayEngine(Engine):
    """Ray: `address=None` starts a local Ray with `workers` CPUs; an address joins a running cluster."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        _check_workers(workers)
        self.workers = workers or os.cpu_count() or 1
        self.address = address
        self._ray: Any = None
        self._remote: Any = None
        self._runs: dict[Any, Run] = {}
        self._started_here = False

    def describe(self) -> str:
        return f"ray ({self.address})" if self.address else f"ray (local, {self.workers} CPUs)"

    def start(self) -> None:
        if self._ray is not None:
            return
        try:
            import ray
        except ImportError:
            raise _missing("ray", "ray") from None
        if not ray.is_initialized():
            # "local": a new Ray of our own, never one a `ray start` on this machine left behind.
            options: dict[str, Any] = ({"address": self.address} if self.address else
                                       {"address": "local", "num_cpus": self.workers})
            try:
                ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, **options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise EngineError(f"cannot start or reach Ray ({self.address or 'local'}): "
                                f"{str(error).splitlines()[0]}") from None
            self._started_here = True
        self._ray = ray
        # max_retries=0: as with Dask, a dead worker comes back as an error and the campaign retries once.
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_one)

    def submit(self, run: Run) -> None:
        self.start()
        self._runs[self._remote.remote(run)] = run

    def completed(self) -> Iterator[tuple[Run, Row]]:
        while self._runs:
            done, _ = self._ray.wait(list(self._runs), num_returns=1)
            for ref in done:
                run = self._runs.pop(ref)
                try:
                    row = self._ray.get(ref)
                except Exception as error:  # noqa: BLE001 — the worker died (WorkerCrashedError) or was lost
                    row = _crashed(run, error)
                yield run, row

    def cancel(self) -> None:
        for ref in list(self._runs):
            self._ray.cancel(ref, force=True)
        self._runs.clear()

    def close(self) -> None:
        if self._ray is not None and self._started_here:
            self._ray.shutdown()
        self._ray = None


def make_engine(name: str, workers: int | None = None, scheduler: str | None = None,
                address: str | None = None) -> Engine:
    """The engine `cosim sweep --engine NAME` means, with its options checked."""
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}: use {', '.join(ENGINES)}")
    if scheduler and name != "dask":
        raise EngineError("--scheduler is the Dask scheduler's address: use it with --engine dask")
    if address and name != "ray":
        raise EngineError("--address is a Ray cluster's address: use it with --engine ray")
    if name == "local":
        if workers not in (None, 1):
            raise EngineError("the local engine runs one run at a time: use --engine dask for --workers")
        return LocalEngine()
    if name == "dask":
        return DaskEngine(workers=workers, scheduler=scheduler)
    return RayEngine(workers=workers, address=address)
