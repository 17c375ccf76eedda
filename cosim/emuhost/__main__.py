"""python -m cosim.emuhost: build the emulated Arm64 KVM host and run something in it.

    python -m cosim.emuhost run [--kernel stock|seed-wfx|PATH] [--timeout S] -- PYTEST ARGS...
    python -m cosim.emuhost script [--kernel ...] -- benchmarks/bench_kvm_arm64.py ARGS...
    python -m cosim.emuhost build          # the base root file system only (cached)
"""

from __future__ import annotations

import argparse
import sys

from ..images.fetch import ImageError
from .host import KERNELS, EmulatedHost, EmuhostError, host_kernel
from .rootfs import base_archive


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cosim.emuhost", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    for action, what in (("run", "a pytest selection"), ("script", "a Python script (a benchmark)")):
        one = sub.add_parser(action, help=f"boot the emulated host and run {what} in it")
        one.add_argument("--kernel", default="stock", help=f"L1 kernel: {' or '.join(KERNELS)} or a path to an Image")
        one.add_argument("--timeout", type=float, default=1800, help="real seconds before the run is killed")
        one.add_argument("--memory", default="2G", help="L1 RAM (QEMU -m)")
        one.add_argument("--quiet", action="store_true", help="do not copy the console here as it comes")
        one.add_argument("args", nargs="+", help="after --: pytest arguments, or the script and its arguments")
    sub.add_parser("build", help="build (or find cached) the base root file system and print its path")
    options = parser.parse_args(argv)
    try:
        if options.action == "build":
            print(base_archive())
            return 0
        host = EmulatedHost(host_kernel(options.kernel), memory=options.memory,
                            echo=None if options.quiet else sys.stdout)
        if options.action == "script":
            result = host.script(options.args, options.timeout)
            if options.quiet:
                print(result.console)
        else:
            result = host.pytest(options.args, options.timeout)
            for test in result.failures():
                print(f"\n=== {test.outcome.upper()}: {test.name}\n{test.detail}")
        print(f"\ncosim.emuhost: {options.kernel}: {result.summary()}; exit status {result.status}")
        return 1 if result.status is None else result.status
    except (EmuhostError, ImageError) as error:
        print(f"cosim.emuhost: error: {error}", file=sys.stderr)
        return 1


sys.exit(main(sys.argv[1:]))
