"""The `cosim` command: run, list and describe platforms; fetch and list guest images; sweep
configuration matrices.

Errors are one clear line and a non-zero exit status; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from ._errors import CosimError
from ._platform import Platform, get_platform, registered_platforms
from ._registry import registered_models
from ._kernel import SIGNAL_STATUS_BASE, RealtimeSimulation, Simulation
from ._time import TimeError, parse_time

__all__ = ["main"]

# Shorthand options that set the platform property of the same name, where the platform has it.
_SHORTHANDS = ("console", "cpu", "image", "quantum")


def _doc_line(obj: object) -> str:
    return ((obj.__doc__ or "").strip().splitlines() or [""])[0]


def _properties(pairs: Sequence[str]) -> dict[str, str]:
    props = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CosimError(f"-P expects name=value, not {pair!r}")
        props[key.strip()] = value.strip()
    return props


def _build(args: argparse.Namespace) -> Platform:
    cls = get_platform(args.platform)
    props = _properties(args.prop)
    known = cls.properties()
    for name in _SHORTHANDS:
        value = getattr(args, name, None)
        if value is None:
            continue
        if name not in known:
            raise CosimError(f"platform {args.platform!r} has no --{name} option")
        props[name] = value
    if getattr(args, "realtime", False):
        return cls(RealtimeSimulation(), **props)
    return cls(**props)


# Signals that end a run as QEMU ends on them: summary, terminal restored, console output flushed.
_ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Interrupted(BaseException):
    """A signal that arrived before the simulation ran (while the platform was being built)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _DeferredSignals:
    """While a simulation runs, a signal only sets a flag (`Simulation.signal`): the run stops at
    the next event. Raising from the handler instead could land inside one of unicorn's native
    callbacks, where cffi prints the exception and drops it."""

    def __init__(self) -> None:
        self.sim: Simulation | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        if self.sim is None:
            raise _Interrupted(signum)    # still building: plain Python, safe to unwind
        self.sim.signal(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator["_DeferredSignals"]:
        previous = {signum: signal.signal(signum, self) for signum in _ENDING_SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _cmd_run(args: argparse.Namespace) -> int:
    # `--until ""` is a mistake, not "no limit" (which is leaving --until out).
    until = parse_time(args.until) if args.until is not None else None
    with _DeferredSignals().installed() as signals:
        platform = _build(args)
        signals.sim = platform.sim
        if args.gdb is not None:
            from .gdb import serve

            try:
                serve(platform, args.gdb, wait=not args.gdb_nowait)
            except BaseException:
                platform.sim.close()
                raise
        elif args.gdb_nowait:
            platform.sim.close()
            raise CosimError("--gdb-nowait needs --gdb [HOST:]PORT")
        if args.trace or args.trace_filter or args.log:
            _observe(platform, args)
        try:
            summary = platform.run(until)
        finally:
            platform.sim.close()    # also when --until ended the run: restore the terminal, flush output
    print(f"\ncosim: {platform.name} ended\n{summary}", file=sys.stderr)
    # A process status holds 0..255: a larger guest status (say 256) must not read as success.
    return summary.status if 0 <= summary.status <= 255 else 1


def _observe(platform: Platform, args: argparse.Namespace) -> None:
    """--trace, --trace-filter, --log: observers attached before the run (cosim.trace)."""
    from .trace import attach, configure_logs

    try:
        if args.trace_filter and not args.trace:
            raise CosimError("--trace-filter needs --trace FILE")
        if args.log:
            configure_logs(platform, args.log)
        if args.trace:
            only = {name.strip() for name in (args.trace_filter or "").split(",") if name.strip()} or None
            tracer = attach(platform, args.trace, only=only)
            print(f"cosim: tracing to {', '.join(map(str, tracer.paths))}", file=sys.stderr)
    except BaseException:
        platform.sim.close()
        raise


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import Progress, ResultCache, SweepInterrupted, default_cache_dir, failures, load_spec, make_engine
    from .sweep import run_campaign, table, write_rows

    spec = load_spec(args.spec)
    for out in args.out:
        if Path(out).suffix not in (".json", ".csv"):
            raise CosimError(f"--out {out}: use a .json or .csv file name")
    engine = make_engine(args.engine, workers=args.workers, scheduler=args.scheduler, address=args.address)
    cache = None if args.no_cache else ResultCache(Path(args.cache_dir) if args.cache_dir else default_cache_dir())
    progress = Progress(len(spec.runs)) if Progress.wanted(args.progress) else None
    print(f"cosim sweep: {len(spec.runs)} runs of {spec.platform} on {engine.describe()}", file=sys.stderr)
    interrupted = False
    try:
        with engine:
            rows = run_campaign(spec, engine, cache, on_row=progress.update if progress else None)
    except SweepInterrupted as stop:
        rows, interrupted = stop.rows, True
    finally:
        if progress:
            progress.close()
    for out in args.out:
        write_rows(rows, Path(out), spec.source)
    print(table(rows))
    report = failures(rows)
    if report:
        print(report)
    if interrupted:
        print("cosim sweep: interrupted; finished runs kept" + (f" in {', '.join(args.out)}" if args.out else ""),
              file=sys.stderr)
        return 130
    return 0 if all(row.ok for row in rows) else 1


def _cmd_list(args: argparse.Namespace) -> int:
    print("platforms:")
    for name, cls in registered_platforms().items():
        print(f"  {name:<14} {cls.summary or _doc_line(cls)}")
    print("models:")
    for name, cls in registered_models().items():
        print(f"  {name:<14} {_doc_line(cls)}")
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    platform = _build(args)
    print(platform.describe())
    props = type(platform).properties()
    if props:
        print("\nproperties")
        shown = {name: prop.show(getattr(platform, name)) for name, prop in props.items()}
        name_width = max([12, *map(len, shown)])
        value_width = max([16, *(len(value) for value in shown.values() if len(value) <= 24)])
        for name, prop in props.items():
            print(f"  {name:<{name_width}} = {shown[name]:<{value_width}} {prop.doc}")
    platform.sim.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cosim", description="Run and inspect cosim virtual platforms.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def platform_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("platform", help="platform name (see `cosim list`), or path/to/file.py:Class or module:Class")
        p.add_argument("-P", "--prop", action="append", default=[], metavar="NAME=VALUE",
                       help="set a platform property (repeatable)")
        for name in _SHORTHANDS:
            p.add_argument(f"--{name}", help=f"shorthand for -P {name}=VALUE")

    run = sub.add_parser("run", help="run a platform")
    platform_args(run)
    run.add_argument("--until", help="stop at this simulated time, e.g. '10 ms', '5 s'")
    run.add_argument("--realtime", action="store_true",
                     help="never let simulated time run ahead of wall-clock time (interactive sessions)")
    run.add_argument("--gdb", metavar="[HOST:]PORT",
                     help="serve gdb's remote protocol there (host 127.0.0.1 unless given) and hold the guest "
                          "before its first instruction until gdb attaches and continues")
    run.add_argument("--gdb-nowait", action="store_true",
                     help="with --gdb: do not wait; the guest runs at once and gdb may attach (and stop it) later")
    run.add_argument("--trace", metavar="FILE",
                     help="write FILE.vcd (every signal) and FILE.json (Perfetto/Chrome trace events: CPU quanta, "
                          "bus transactions, interrupt edges, idle jumps)")
    run.add_argument("--trace-filter", metavar="DEVICES",
                     help="trace only these devices (and CPUs), e.g. gic,uart0,cpu0")
    run.add_argument("--log", metavar="DEVICE=LEVEL,...",
                     help="per-model log levels, e.g. gic=debug,uart0=info; debug also logs the device's "
                          "register accesses (name, offset, value, simulated time)")
    run.set_defaults(func=_cmd_run)
    sweep = sub.add_parser("sweep", help="run a configuration matrix (docs/sweeps.md)")
    sweep.add_argument("spec", help="sweep spec (TOML): platform, until, [properties], [matrix], [[script]]")
    sweep.add_argument("--engine", default="dask", help="local (in this process), dask (default) or ray")
    sweep.add_argument("--workers", type=int, help="worker processes of the local Dask cluster or Ray (default: CPUs)")
    sweep.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use a running Dask cluster")
    sweep.add_argument("--address", metavar="HOST:PORT", help="use a running Ray cluster")
    sweep.add_argument("--out", action="append", default=[], metavar="FILE",
                       help="write the rows to FILE.json or FILE.csv (repeatable)")
    sweep.add_argument("--no-cache", action="store_true", help="run everything, even runs with a cached result")
    sweep.add_argument("--cache-dir", help="where results are cached (default ~/.cache/cosim/sweep)")
    sweep.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is no tty")
    sweep.set_defaults(func=_cmd_sweep)
    describe = sub.add_parser("describe", help="print a platform's address map and wiring")
    platform_args(describe)
    describe.set_defaults(func=_cmd_describe)
    listing = sub.add_parser("list", help="list platforms and models")
    listing.set_defaults(func=_cmd_list)
    from .images.commands import configure as configure_images

    configure_images(sub.add_parser("images", help="fetch guest images; list the cached ones (see docs/images.md)"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="cosim: %(name)s: %(levelname)s: %(message)s")
    try:
        return int(args.func(args))
    except (CosimError, TimeError, OSError) as error:
        if args.debug:
            raise
        print(f"cosim: error: {error}", file=sys.stderr)
        return 2
    except _Interrupted as interrupted:
        print(f"cosim: interrupted by {signal.Signals(interrupted.signum).name}", file=sys.stderr)
        return SIGNAL_STATUS_BASE + interrupted.signum
    except KeyboardInterrupt:
        print("cosim: interrupted", file=sys.stderr)
        return SIGNAL_STATUS_BASE + signal.SIGINT
