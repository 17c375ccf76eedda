"""Runs inside the emulated host (started by its /init): the command, then the results over the console.

The only channel out is the serial console, shared with whatever the kernel
prints, so results travel as base64 lines between marker lines, with a digest
the host side checks (`host.parse_results`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import runpy
import sys
from pathlib import Path

from .host import RESULTS_BEGIN, RESULTS_END
_LINE = 76


def emit(payload: bytes) -> None:
    """Print `payload` between the markers, base64 in short lines, the END line carrying its SHA-256."""
    text = base64.b64encode(payload).decode()
    lines = [RESULTS_BEGIN, *(text[i:i + _LINE] for i in range(0, len(text), _LINE)), f"{RESULTS_END} {hashlib.sha256(payload).hexdigest()}"]
    sys.stdout.write("\n" + "\n".join(lines) + "\n")
    sys.stdout.flush()


class Recorder:
    """A pytest plugin keeping each test's node id, outcome, duration and, when it did not pass, why."""

    def __init__(self) -> None:
        self.tests: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report) -> None:
        entry = self.tests.setdefault(report.nodeid, {"outcome": "passed", "seconds": 0.0, "detail": ""})
        entry["seconds"] += report.duration
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            captured = "".join(f"\n--- {title} ---\n{text}" for title, text in report.sections)
            entry["detail"] += f"[{report.when}] {report.longreprtext}{captured}\n"
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            entry["detail"] = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.tests[report.nodeid or "<collection>"] = {"outcome": "error", "seconds": 0.0,
                                                          "detail": f"[collect] {report.longreprtext}"}


def run_pytest(args: list[str]) -> int:
    import pytest

    recorder = Recorder()
    status = pytest.main([*args, "-p", "cosim.testing", "-p", "no:cacheprovider", "--color=no"], plugins=[recorder])
    emit(json.dumps(recorder.tests).encode())
    return int(status)


def run_script(args: list[str]) -> int:
    sys.argv = list(args)
    try:
        runpy.run_path(args[0], run_name="__main__")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    return run_pytest(spec["args"]) if spec["kind"] == "pytest" else run_script(spec["args"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
