import subprocess
import sys

import pytest

from cosim import PlatformError
from cosim.cli import main


def test_list_shows_platforms_and_models(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "countdown" in out


def test_describe_prints_map_and_properties(capsys):
    assert main(["describe", "demo", "-P", "period=2ms"]) == 0
    out = capsys.readouterr().out
    assert "timer0 (countdown)" in out and "2 ms" in out


def test_run_demo_ends_with_summary_and_status(capsys):
    assert main(["run", "demo", "-P", "ticks=2", "-P", "period=5ms"]) == 0
    captured = capsys.readouterr()
    assert "timer interrupt 2/2 at 10 ms" in captured.out
    assert "simulated time    10 ms" in captured.err and "demo finished" in captured.err


def test_realtime_run_paces_simulated_time_to_the_wall_clock(capsys):
    import time

    start = time.perf_counter()
    assert main(["run", "demo", "--realtime", "-P", "ticks=2", "-P", "period=25ms"]) == 0
    assert time.perf_counter() - start >= 0.050          # 50 ms simulated took at least 50 ms of wall time
    assert "timer interrupt 2/2 at 50 ms" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["run", "nope"], "unknown platform 'nope'; known: "),
    (["run", "demo", "--until", "10 parsecs"], "unknown time unit 'parsecs'"),
    (["run", "demo", "-P", "tick=3"], "no property 'tick'; known: period, ticks"),
    (["run", "demo", "-P", "ticks"], "-P expects name=value"),
    (["run", "demo", "--console", "stdio"], "platform 'demo' has no --console option"),
    (["run", "pc", "-P", "load_address=zz"], "property load_address='zz': invalid literal for int()"),
    (["run", "pc", "-P", "ips=fast"], "property ips='fast': could not convert"),
    (["run", "pc", "--cpu", "unicorn"], "unknown CPU backend 'unicorn' for pc: use kvm"),
    (["run", "pc", "--image", "/nonexistent/guest.elf"], "guest image /nonexistent/guest.elf does not exist"),
    (["run", "virt", "-P", "firmware=/nonexistent/u-boot.bin"], "firmware image /nonexistent/u-boot.bin does not exist"),
    (["run", "virt-linux", "-P", "kernel=/nonexistent/Image"], "kernel image /nonexistent/Image does not exist"),
])
def test_errors_are_one_line_and_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cosim: error: ") and message in err and "\n" not in err


def test_overlapping_mappings_in_a_user_platform_are_one_line(capsys):
    from cosim import Memory, MiB, Platform
    from cosim.models.pl011 import Pl011

    class Overlapping(Platform):
        name = "test-cli-overlap"

        def build(self) -> None:
            self.map("sysbus", 0, self.add("ram", Memory, size=MiB))
            self.map("sysbus", 0x1000, self.add("uart0", Pl011))

    assert main(["run", "test-cli-overlap"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "cosim: error: sysbus: uart0 [0x1000..0x1fff] overlaps ram [0x0..0xfffff]"


def test_virt_with_nothing_in_flash_stops_with_an_error_instead_of_hanging(capsys):
    # Zeros are UDF: the guest faults at 0, then at every vector it is sent to (VBAR_EL1 = 0).
    assert main(["run", "virt", "-P", "firmware=none", "--console", "none", "--until", "1s"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cosim: error: cpu0: guest stuck in an exception loop: ") and "Traceback" not in err
    assert "VBAR_EL1=0x0" in err.splitlines()[0]


def test_virt_kvm_on_a_host_without_arm64_kvm_is_one_line(capsys):
    from cosim.cpu.arm64.kvm_cpu import kvm_arm64_unavailable

    reason = kvm_arm64_unavailable()
    if not reason:
        pytest.skip("this host runs the KVM Arm64 backend")
    for platform in ("virt", "virt-linux"):
        assert main(["run", platform, "--cpu", "kvm", "--until", "1ms"]) == 2
        assert capsys.readouterr().err.strip() == f"cosim: error: {platform}: cpu=kvm: {reason}"


@pytest.mark.parametrize("platform, prop", [("pc", "budget"), ("virt", "budget")])
def test_a_bad_budget_source_is_refused_as_properties_are_read(capsys, monkeypatch, tmp_path, platform, prop):
    from cosim.kvm import _system

    def opened(*args, **kwargs):
        raise AssertionError("/dev/kvm opened: the CPU was built (and calibrated) before the budget was checked")

    monkeypatch.setattr(_system.Kvm, "__init__", opened)
    image = tmp_path / "hlt.bin"
    image.write_bytes(b"\xf4")
    extra = ["-P", f"image={image}"] if platform == "pc" else ["--cpu", "kvm"]
    assert main(["run", platform, "-P", f"{prop}=bogus", *extra]) == 2
    assert capsys.readouterr().err.strip() == (f"cosim: error: platform {platform!r}: property {prop}='bogus': "
                                               "unknown budget source 'bogus': use auto, pmu, task-clock, posix-timer")


def test_debug_shows_the_traceback():
    from cosim import PlatformError

    with pytest.raises(PlatformError):
        main(["--debug", "run", "nope"])


def test_pc_without_an_image_runs_its_devices_alone(capsys):
    assert main(["run", "pc", "--image", "none", "--console", "none", "--until", "1ms"]) == 0
    assert "simulated time    1 ms" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "cosim", "run", "demo", "--until", "2.5s"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "2/10 at 2 s" in proc.stdout and "simulated time    2.5 s" in proc.stderr


def test_virts_old_kvm_budget_name_still_works_with_a_warning(tmp_path):
    from cosim.platforms.virt import Virt

    firmware = tmp_path / "firmware.bin"
    firmware.write_bytes(b"\0" * 4)
    with pytest.warns(FutureWarning, match="property kvm_budget is deprecated, use budget"):
        board = Virt(firmware=str(firmware), console="none", kvm_budget="posix-timer")
    assert board.budget == "posix-timer"
    board.sim.close()
    with pytest.raises(PlatformError, match="kvm_budget is the old name of budget: give only budget"):
        Virt(firmware=str(firmware), console="none", kvm_budget="pmu", budget="pmu")
