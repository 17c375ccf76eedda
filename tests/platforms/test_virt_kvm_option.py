"""`cosim run virt --cpu kvm`: the option, its properties, and the one-line error where KVM Arm64 cannot run."""

import platform

import pytest

from cosim import PlatformError
from cosim.cli import main
from cosim.cpu.arm64.kvm_cpu import kvm_arm64_unavailable
from cosim.platforms.virt import Virt

not_here = pytest.mark.skipif(kvm_arm64_unavailable() is None, reason="this host can run KVM Arm64 guests")


@not_here
def test_cli_says_in_one_line_why_kvm_cannot_run_here(capsys):
    assert main(["run", "virt", "--cpu", "kvm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cosim: error: virt: cpu=kvm: ") and "\n" not in err
    assert "Arm64 Linux host with /dev/kvm" in err or "/dev/kvm" in err
    if platform.machine() != "aarch64":
        assert f"this host is {platform.system()} {platform.machine()}: use the software CPU (--cpu unicorn)" in err


@not_here
def test_the_check_comes_before_any_image_is_fetched(tmp_path):
    with pytest.raises(PlatformError, match="cpu=kvm"):
        Virt(firmware=str(tmp_path / "does-not-exist.bin"), cpu="kvm")


@pytest.mark.parametrize("argv, message", [
    (["run", "virt", "--cpu", "qemu"], "platform 'virt': property cpu='qemu': use unicorn or kvm"),
    (["run", "virt", "-P", "counting=exact"], "platform 'virt': property counting='exact': use block or instruction"),
    (["run", "virt", "--cpu", "kvm", "-P", "kvm_wfx=222"],
     "kvm_wfx expects CAP:EXIT numbers (e.g. 224:38, or 222:35 for the seed patch's) or 'off'"),
])
def test_bad_cpu_options_are_one_line_errors(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_describe_lists_the_kvm_properties(capsys, tmp_path):
    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(b"\0" * 4)
    assert main(["describe", "virt", "-P", "kvm_wfx=240:50", "-P", f"firmware={firmware}", "--console", "none"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "kvm_wfx      = 240:50" in out and "budget       = auto" in out
    assert "kvm (Arm64 Linux host with /dev/kvm)" in out


def test_cpu_kvm_gives_each_cpu_the_kvm_timer(monkeypatch, tmp_path):
    """The KVM timer loads with cpu=kvm only (not with every virt platform); each backend gets its CPU's.
    The KVM backend itself is replaced: it needs an Arm64 host."""
    from cosim.cpu.arm64 import kvm_cpu
    from cosim.cpu.arm64.kvm_timer import KvmGenericTimer

    class Built(Exception):
        pass

    timers = []

    def fake_backend(**options):
        timers.append(options["timer"])
        raise Built

    monkeypatch.setattr(kvm_cpu, "kvm_arm64_unavailable", lambda: None)
    monkeypatch.setattr(kvm_cpu, "KvmArm64Cpu", fake_backend)
    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(bytes(4))
    with pytest.raises(Built):
        Virt(firmware=str(firmware), cpu="kvm")
    assert [type(t) for t in timers] == [KvmGenericTimer]
