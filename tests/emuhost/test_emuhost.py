"""The emulated host's own parts, here and fast: the results channel, the per-run archive, bad input."""

import hashlib
import stat

import pytest

from cosim.emuhost import EmuhostError, host
from cosim.emuhost import rootfs
from cosim.emuhost._inner import Recorder, emit


def newc_entries(blob: bytes) -> dict[str, tuple[int, bytes]]:
    """name -> (mode, data) of a newc archive (Documentation/driver-api/early-userspace/buffer-format.rst)."""
    found, at = {}, 0
    while True:
        fields = [int(blob[at + 6 + 8 * i:at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name = blob[at + 110:at + 110 + name_size - 1].decode()
        at += 110 + name_size
        at += -at % 4
        if name == "TRAILER!!!":
            return found
        found[name] = (mode, blob[at:at + size])
        at += size + (-size % 4)


def test_results_come_back_through_kernel_noise(capsys):
    payload = b'{"tests/x.py::test_a": {"outcome": "passed"}}' * 20
    emit(payload)
    printed = capsys.readouterr().out
    console = "[    3.1] kvm [1]: VHE mode initialized\r\n" + printed.replace("\n", "\r\n") + "[  9.0] reboot: Power down\n"
    assert host.parse_results(console) == payload
    assert host.parse_results("no markers here") is None


def test_garbled_results_are_an_error_not_wrong_outcomes(capsys):
    emit(b"x" * 300)
    lines = capsys.readouterr().out.split("\n")
    lines[3] = lines[3][:10] + "AAAA" + lines[3][14:]         # a line damaged on the way
    with pytest.raises(EmuhostError, match="garbled"):
        host.parse_results("\n".join(lines))


class Report:
    def __init__(self, nodeid, when, outcome, longrepr=None, sections=()):
        self.nodeid, self.when, self.duration = nodeid, when, 0.5
        self.failed, self.skipped = outcome == "failed", outcome == "skipped"
        self.longrepr, self.longreprtext, self.sections = longrepr, str(longrepr or ""), list(sections)


def test_recorder_names_each_test_and_keeps_why_it_did_not_pass():
    recorder = Recorder()
    recorder.pytest_runtest_logreport(Report("t.py::test_ok", "call", "passed"))
    recorder.pytest_runtest_logreport(Report("t.py::test_bad", "call", "failed", "assert 1 == 2",
                                             [("Captured stdout call", "guest said hi")]))
    recorder.pytest_runtest_logreport(Report("t.py::test_setup", "setup", "failed", "fixture broke"))
    recorder.pytest_runtest_logreport(Report("t.py::test_skip", "setup", "skipped", ("t.py", 3, "Skipped: no kvm")))
    tests = {t.name: t for t in host._tests(__import__("json").dumps(recorder.tests).encode())}
    assert tests["t.py::test_ok"].outcome == "passed" and tests["t.py::test_ok"].seconds == 0.5
    assert tests["t.py::test_bad"].outcome == "failed"
    assert "assert 1 == 2" in tests["t.py::test_bad"].detail and "guest said hi" in tests["t.py::test_bad"].detail
    assert tests["t.py::test_setup"].outcome == "error"
    assert tests["t.py::test_skip"].outcome == "skipped" and tests["t.py::test_skip"].detail == "Skipped: no kvm"


def test_run_archive_carries_init_the_command_and_the_checkout(monkeypatch, tmp_path):
    monkeypatch.setattr(host, "_guest_images", lambda: {"linux/boot/vmlinuz": tmp_path / "vmlinuz"})
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    entries = newc_entries(host.run_archive(host.Path(host.__file__).resolve().parents[2], "pytest", ["tests/x.py"]))
    mode, init = entries["init"]
    assert mode & 0o111 and init.startswith(b"#!/bin/busybox sh") and b"cosim.emuhost._inner" in init
    assert entries["cosim-run/command.json"][1] == b'{"kind": "pytest", "args": ["tests/x.py"]}'
    assert stat.S_ISCHR(entries["dev/console"][0])                  # init's stdout before devtmpfs is mounted
    source = entries["cosim/cosim/emuhost/host.py"][1]
    assert hashlib.sha256(source).digest() == hashlib.sha256(host.Path(host.__file__).read_bytes()).digest()
    assert entries["cosim/cosim/platforms"] == (stat.S_IFLNK | 0o777, b"../platforms")
    assert entries["cache/images/linux/boot/vmlinuz"][1] == b"kernel"
    assert all(not name.startswith("cosim/.venv") for name in entries)  # only what git tracks


def test_missing_qemu_and_bad_kernels_are_one_line_errors(monkeypatch, tmp_path):
    assert host.qemu_unavailable() is None or "qemu-system-arm" in host.qemu_unavailable()
    monkeypatch.setattr(host.shutil, "which", lambda name: None)
    assert "install the Debian package qemu-system-arm" in host.qemu_unavailable()
    with pytest.raises(EmuhostError, match="qemu-system-aarch64 not found"):
        host.EmulatedHost(tmp_path / "Image")
    with pytest.raises(EmuhostError, match="kernel 'nope': not 'stock', 'seed-wfx' or an existing file"):
        host.host_kernel("nope")


def test_the_base_archive_is_keyed_by_its_recipe(monkeypatch):
    before = rootfs.recipe_digest()
    monkeypatch.setattr(rootfs, "DEBS", (*rootfs.DEBS, "strace"))
    assert rootfs.recipe_digest() != before


def test_cli_bad_kernel_is_one_line_and_exit_1():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "cosim.emuhost", "run", "--kernel", "nope", "--", "tests/x.py"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "cosim.emuhost: error: kernel 'nope': not 'stock', 'seed-wfx' or an existing file"]
