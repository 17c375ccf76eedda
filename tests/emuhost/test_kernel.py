"""The L1 kernel recipe: our WFx port builds, boots under QEMU with KVM, and behaves as the patch says.

The boot check runs QEMU's emulated Arm64 host (EL2 under TCG) on a tiny
initramfs: busybox-static from cosim.images, and `wfx_probe.c` compiled
statically for aarch64, which asks the L1 kernel's KVM about the capability
and runs a `wfi` guest. The first run builds the kernel (~10 min on 2
cores); later runs find it in the image cache.
"""

import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from cosim.emuhost import kernel
from cosim.images.fetch import fetch_file
from cosim.images.initramfs import Entry, newc
from cosim.kvm._arm64 import (DEFAULT_WFX_CAP, DEFAULT_WFX_EXIT, PORT_WFX_CAP, PORT_WFX_EXIT, SEED_WFX_CAP,
                              SEED_WFX_EXIT)

PROBE = Path(__file__).with_name("wfx_probe.c")
BOOT_TIMEOUT = 600          # seconds of wall time for one boot under TCG on a busy machine
QEMU = ["qemu-system-aarch64", "-cpu", "max,pauth=off", "-icount", "shift=0", "-m", "256", "-nographic", "-no-reboot"]
_INIT = """\
#!/bin/sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
if [ -c /dev/kvm ]; then echo "boot-check: /dev/kvm present"; else echo "boot-check: /dev/kvm missing"; fi
/probe
/bin/busybox poweroff -f
"""


def test_the_patch_numbers_are_cosims_default():
    assert kernel.patch_numbers() == (PORT_WFX_CAP, PORT_WFX_EXIT) == (DEFAULT_WFX_CAP, DEFAULT_WFX_EXIT)
    assert (SEED_WFX_CAP, SEED_WFX_EXIT) == (222, 35)
    # 6.1's last capability and exit are 223 and 37: the port takes the next ones
    assert (PORT_WFX_CAP, PORT_WFX_EXIT) == (224, 38)


def test_patch_numbers_are_read_from_the_added_defines():
    text = "+#define KVM_EXIT_WFX              40\n #define KVM_CAP_X 1\n+#define KVM_CAP_EXIT_ON_WFX 250\n"
    assert kernel.patch_numbers(text) == (250, 40)
    with pytest.raises(kernel.KernelBuildError, match="no '#define KVM_EXIT_WFX' added"):
        kernel.patch_numbers("+#define KVM_CAP_EXIT_ON_WFX 250\n")


def test_the_patch_touches_the_four_files_of_the_seed():
    text = kernel.PATCH.read_text()
    touched = re.findall(r"^\+\+\+ b/(\S+)", text, re.MULTILINE)
    assert touched == ["arch/arm64/include/asm/kvm_host.h", "arch/arm64/kvm/arm.c", "arch/arm64/kvm/handle_exit.c",
                       "include/uapi/linux/kvm.h"]
    header = text.split("\n--- a/", 1)[0]
    assert "224" in header and "38" in header and "222" in header    # the rationale names the numbers


def test_the_cache_key_follows_every_input(monkeypatch):
    base = kernel.build_key("6.1.192-3", "a" * 64, "gcc 12.2.0")
    assert base != kernel.build_key("6.1.192-2", "a" * 64, "gcc 12.2.0")
    assert base != kernel.build_key("6.1.192-3", "b" * 64, "gcc 12.2.0")
    assert base != kernel.build_key("6.1.192-3", "a" * 64, "gcc 12.3.0")
    monkeypatch.setattr(kernel, "L1_CONFIG", kernel.L1_CONFIG + "CONFIG_EXT4_FS=y\n")
    assert base != kernel.build_key("6.1.192-3", "a" * 64, "gcc 12.2.0")


def test_a_config_line_that_does_not_survive_is_named(tmp_path):
    config = tmp_path / ".config"
    config.write_text("\n".join(line for line in kernel.L1_CONFIG.splitlines() if line != "CONFIG_KVM=y"))
    with pytest.raises(kernel.KernelBuildError, match=r"lost CONFIG_KVM=y .*config: .*\.config$"):
        kernel._check_config(config)


def test_a_missing_compiler_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(kernel, "_CROSS", "no-such-cross-")
    with pytest.raises(kernel.KernelBuildError, match=r"no-such-cross-gcc not found \(install .*bootstrap"):
        kernel._compiler(deadline=float("inf"))


def _require(tool: str) -> None:
    # scripts/bootstrap.sh installs these on a Debian host; elsewhere they cannot be had.
    if shutil.which(tool) is None:
        if shutil.which("apt-get") is None:
            pytest.skip(f"{tool} is missing and this host has no apt to install it")
        pytest.fail(f"{tool} is missing: run scripts/bootstrap.sh")


def _initramfs(tmp_path: Path, wfx: tuple[int, int], other_cap: int) -> Path:
    probe = tmp_path / "probe"
    subprocess.run(["aarch64-linux-gnu-gcc", "-static", "-O2", "-Wall", "-Werror", f"-DWFX_CAP={wfx[0]}",
                    f"-DWFX_EXIT={wfx[1]}", f"-DOTHER_CAP={other_cap}", "-o", str(probe), str(PROBE)], check=True)
    d, f = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755
    entries = [Entry(p, d) for p in ("bin", "dev", "proc", "sys")]
    entries += [Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
                Entry("bin/busybox", f, fetch_file("busybox").read_bytes()),
                Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
                Entry("init", f, _INIT.encode()),
                Entry("probe", f, probe.read_bytes())]
    path = tmp_path / "initramfs.cpio"
    path.write_bytes(newc(entries))
    return path


def boot(image: Path, initramfs: Path, gic: int = 3) -> tuple[str, dict[str, str]]:
    """Boot `image` in QEMU's emulated Arm64 host; the console text and the probe's key=value lines."""
    _require("qemu-system-aarch64")
    try:
        proc = subprocess.run([*QEMU, "-M", f"virt,virtualization=on,gic-version={gic}", "-kernel", str(image), "-initrd", str(initramfs),
                               "-append", "console=ttyAMA0 rdinit=/init panic=-1"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                              timeout=BOOT_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the L1 kernel did not power off within {BOOT_TIMEOUT} s:\n{(error.stdout or '')[-3000:]}")
    console = proc.stdout
    assert "probe: done" in console, f"the probe did not finish (QEMU exit {proc.returncode}):\n{console[-3000:]}"
    return console, dict(re.findall(r"^probe: (\w+)=(.*?)\r?$", console, re.MULTILINE))


@pytest.fixture(scope="module")
def patched_image():
    for tool in ("aarch64-linux-gnu-gcc", "make", "flex", "bison", "bc", "patch"):
        _require(tool)
    return kernel.patched_kernel()


@pytest.mark.slow
@pytest.mark.parametrize("gic", [3, 2], ids=["gicv3", "gicv2"])
def test_the_patched_kernel_boots_with_kvm_and_exits_on_a_blocking_wfi(patched_image, tmp_path, gic):
    console, probe = boot(patched_image, _initramfs(tmp_path, (PORT_WFX_CAP, PORT_WFX_EXIT), SEED_WFX_CAP), gic)
    assert re.search(r"kvm \[\d+\]: (VHE|Hyp) mode initialized successfully", console), console[-3000:]
    assert "boot-check: /dev/kvm present" in console
    assert probe["check_user_irq"] == "1"
    assert probe["check_wfx"] == "1" and probe["enable_wfx"] == "0", probe
    assert probe["check_other"] == "0"            # the seed's number means nothing here
    # nothing pending: the WFI exits to user space, the PC still on it; ESR EC 0x01 (WFx), ISS bit 0 clear (WFI)
    esr = int(probe["first_esr"], 16)
    assert (probe["first_exit"], probe["first_pc"]) == (str(PORT_WFX_EXIT), "0") and esr >> 26 == 0x01
    assert not esr & 1
    assert (probe["again_exit"], probe["again_pc"]) == (str(PORT_WFX_EXIT), "0")
    # with the IRQ line raised the WFI completes in the kernel and the next instruction's store exits as MMIO
    assert (probe["pending_exit"], probe["pending_pc"], probe["pending_mmio"]) == ("6", "4", "0x100000"), probe


@pytest.mark.slow
def test_the_stock_kernel_offers_neither_numbering(tmp_path):
    console, probe = boot(kernel.stock_kernel(), _initramfs(tmp_path, (PORT_WFX_CAP, PORT_WFX_EXIT), SEED_WFX_CAP))
    assert re.search(r"kvm \[\d+\]: (VHE|Hyp) mode initialized successfully", console), console[-3000:]
    assert probe["check_user_irq"] == "1"
    assert (probe["check_wfx"], probe["check_other"]) == ("0", "0")
    assert probe["enable_wfx"] == "-22"           # EINVAL: not a capability this kernel can enable


def test_bootstrap_installs_what_the_recipe_and_the_boot_check_need():
    bootstrap = (Path(__file__).resolve().parents[2] / "scripts" / "bootstrap.sh").read_text()
    listed = set(re.findall(r"[\w.+-]+", " ".join(re.findall(r"debs\+?=\(([^)]*)\)", bootstrap))))
    assert set(kernel.BUILD_PACKAGES) | {"qemu-system-arm", "libc6-dev-arm64-cross"} <= listed


def test_a_failed_step_names_itself_and_its_first_error(tmp_path):
    log = tmp_path / "build.log"
    log.write_text("x.c:1:1: error: from an earlier step that succeeded\n")
    script = "echo 'CC a.o'; echo 'a.c:1:2: error: expected ;'; echo 'make: *** [a.o] Error 1'; exit 2"
    with pytest.raises(kernel.KernelBuildError) as error:
        kernel._run(["sh", "-c", script], "make Image", deadline=float("inf"), log=log)
    assert str(error.value) == f"make Image failed (exit 2): a.c:1:2: error: expected ;; log: {log}"


def test_the_recipe_is_bounded(tmp_path):
    with pytest.raises(kernel.KernelBuildError, match="make Image: timed out"):
        kernel._run(["sleep", "5"], "make Image", deadline=time.monotonic() + 0.2)
