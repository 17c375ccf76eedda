"""The real `cosim` process in the cases CI meets: guests that deadlock or fault for ever,
runs ended by signals on a terminal, and images that must be refused before they run."""

import os
import pty
import signal
import struct
import subprocess
from pathlib import Path
import sys
import termios
import time

import pytest

COSIM = [sys.executable, "-m", "cosim"]
WFI, B_SELF, DAIFSET_IF = 0xD503207F, 0x14000000, 0xD50343DF        # wfi; b .; msr daifset, #3


def firmware(path, code):
    """A flash image from {address: [A64 instruction words]}."""
    size = max(address + 4 * len(words) for address, words in code.items())
    image = bytearray(size)
    for address, words in code.items():
        image[address:address + 4 * len(words)] = struct.pack(f"<{len(words)}I", *words)
    path.write_bytes(image)
    return path


def cosim(*args, stdin=subprocess.DEVNULL, timeout=120):
    return subprocess.run([*COSIM, *args], capture_output=True, text=True, stdin=stdin, timeout=timeout)


def stopped_by(stderr):
    return next(line.split("stopped by", 1)[1].strip() for line in stderr.splitlines() if "stopped by" in line)


# -- failures fail ------------------------------------------------------------------------------
@pytest.mark.parametrize("console", ["none", "stdio"])
def test_a_guest_waiting_for_an_interrupt_nothing_can_raise_is_a_deadlock(tmp_path, console):
    # IRQs masked, no timer armed; with the stdio console, stdin is at EOF (/dev/null).
    image = firmware(tmp_path / "wfi.bin", {0: [DAIFSET_IF, WFI, B_SELF]})
    proc = cosim("run", "virt", "-P", f"firmware={image}", "--console", console, "--until", "10s")
    assert proc.returncode == 3, proc.stderr
    assert stopped_by(proc.stderr).startswith("cpu0: guest idle at PC 0x8 with no pending event: deadlock (status 3)")
    assert "Traceback" not in proc.stderr


def test_x86_hlt_with_interrupts_disabled_is_a_deadlock(tmp_path):
    from cosim.kvm import kvm_unavailable

    if kvm_unavailable():
        pytest.skip(f"needs KVM: {kvm_unavailable()}")
    image = tmp_path / "clihlt.bin"
    image.write_bytes(b"\xfa\xf4")                          # cli; hlt
    proc = cosim("run", "pc", "--image", str(image), "--console", "none", "--until", "1s")
    assert proc.returncode == 3
    assert stopped_by(proc.stderr).startswith("cpu0: guest idle at PC 0x100002 with interrupts disabled: deadlock")


def test_until_reached_is_said_and_exits_0(tmp_path):
    image = firmware(tmp_path / "spin.bin", {0: [B_SELF]})
    proc = cosim("run", "virt", "-P", f"firmware={image}", "--console", "none", "--until", "2ms")
    assert proc.returncode == 0 and stopped_by(proc.stderr) == "--until 2 ms reached"


def test_an_exception_storm_is_reported_instead_of_crawling(tmp_path):
    # Each exception's handler (VBAR_EL1 = 0, +0x200) branches to the next word of zeros (UDF):
    # a fault at a new address every time, so the same-address loop check never sees it.
    image = firmware(tmp_path / "storm.bin", {0: [0xD2820000, 0xD61F0000],        # mov x0, #0x1000; br x0
                                              0x200: [0x91001000, 0xD61F0000]})   # add x0, x0, #4; br x0
    start = time.monotonic()
    proc = cosim("run", "virt", "-P", f"firmware={image}", "--console", "none", "--until", "10s")
    assert proc.returncode == 2 and time.monotonic() - start < 60
    first = proc.stderr.splitlines()[0]
    assert first.startswith("cosim: error: cpu0: guest in an exception storm: 256 exceptions in a row") and "VBAR_EL1=0x0" in first


@pytest.mark.parametrize("argv, message", [
    (["run", "demo", "--until", ""], "cannot read '' as a time"),
    (["run", "virt", "--quantum", "0.5ns", "--console", "none"], "cpu0: quantum 500 ps is shorter than one CPU period (1 ns)"),
])
def test_run_options_that_cannot_mean_anything_are_refused(argv, message):
    proc = cosim(*argv, timeout=60)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and err.startswith("cosim: error: ") and message in err and "\n" not in err


# -- signals end cleanly ----------------------------------------------------------------------------
def _run_on_a_pty(argv, signum):
    """Run cosim with a pty as its terminal; once it has put the terminal in raw mode, send `signum`.
    Returns (exit status, output, terminal attributes before, after)."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen([*COSIM, *argv], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    output = bytearray()

    def read_for(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            import select

            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    output.extend(os.read(master, 65536))
                except OSError:
                    return

    try:
        deadline = time.monotonic() + 60
        while termios.tcgetattr(slave)[3] & termios.ICANON and time.monotonic() < deadline:
            read_for(0.05)                       # wait for the stdio console to make the terminal raw
        assert not termios.tcgetattr(slave)[3] & termios.ICANON, output.decode(errors="replace")
        read_for(0.5)                            # the guest is running now
        proc.send_signal(signum)
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            read_for(0.05)
        status = proc.wait(timeout=1)
        read_for(0.2)
        return status, output.decode(errors="replace"), before, termios.tcgetattr(slave)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_run_with_a_summary_and_the_terminal_restored(tmp_path, signum):
    # The guest polls CNTPCT_EL0: every read is a native callback into Python (where a KeyboardInterrupt
    # used to be printed by cffi and dropped).
    image = firmware(tmp_path / "poll.bin", {0: [0xD53BE020, 0x17FFFFFF]})   # mrs x0, cntpct_el0; b .-4
    status, output, before, after = _run_on_a_pty(["run", "virt", "-P", f"firmware={image}"], signum)
    name = signal.Signals(signum).name
    assert status == 128 + signum, output
    assert f"stopped by         {name} received (status {128 + signum})" in output
    assert "Exception ignored" not in output and "Traceback" not in output
    assert after == before                       # echo, canonical mode... all back


def test_pending_console_output_for_a_tcp_client_is_reported_on_sigterm(tmp_path):
    # Nobody connects to the TCP console: what the guest printed is written to stderr at the end.
    image = firmware(tmp_path / "hello.bin", {
        0: [0xD2A12001, 0x52806023, 0xB9003023,         # x1 = UART; w3 = 0x301; str w3, [x1, #0x30] (UARTCR)
            0x52800D03, 0xB9000023,                     # w3 = 'h'; str w3, [x1]
            0x52800D23, 0xB9000023,                     # w3 = 'i'; str w3, [x1]
            B_SELF]})
    proc = subprocess.Popen([*COSIM, "run", "virt", "-P", f"firmware={image}", "--console", "tcp:127.0.0.1:0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    announced = proc.stderr.readline()            # the console's address: the platform is built
    assert "console on tcp" in announced
    time.sleep(1)                                  # the guest prints at once, then spins
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "2 bytes of output were not delivered:\nhi" in err and "SIGTERM received" in err


# -- bad images are refused, not run ------------------------------------------------------------
EM_X86_64, EM_AARCH64, PT_LOAD = 62, 183, 1


def elf64(path, segments, machine=EM_X86_64, entry=0x10_0000, cut=None):
    """A minimal ELF64 file: `segments` as (p_paddr, p_offset, p_filesz, p_memsz); `cut` truncates it."""
    header = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"", 2, machine, 1, entry, 64, 0, 0,
                         64, 56, len(segments), 64, 0, 0)
    phdrs = b"".join(struct.pack("<IIQQQQQQ", PT_LOAD, 7, offset, paddr, paddr, filesz, memsz, 0x1000)
                     for paddr, offset, filesz, memsz in segments)
    body = header + phdrs
    body += bytes(max(0, 0x1000 - len(body))) + b"\xfa\xf4" * 0x800        # code at offset 0x1000: cli; hlt
    path.write_bytes(body[:cut])
    return path


def arm64_image(path, size=0x1000):
    """A tiny arm64 Linux `Image`: booting.rst's 64-byte header, magic at 0x38."""
    header = struct.pack("<II QQQ QQQ 4s I", 0x14000000, 0, 0x80000, size, 0xA, 0, 0, 0, b"ARM\x64", 0)
    path.write_bytes(header + bytes(size - len(header)))
    return path


def _pc(image):
    return ["run", "pc", "--image", str(image), "--console", "none", "--until", "1ms"]


BAD = {
    "linked over the loader's tables": (
        lambda tmp: _pc(elf64(tmp / "low.elf", [(0x2000, 0x1000, 0x100, 0x100)], entry=0x2000)),
        "[0x2000..0x20ff] overlaps the loader's long-mode tables at [0x1000..0x7fff]"),
    "a segment past the end of the file": (
        lambda tmp: _pc(elf64(tmp / "past.elf", [(0x10_0000, 0x1000, 0x8000, 0x8000)])),
        "segment 0 (p_paddr 0x100000): its 0x8000 bytes at offset 0x1000 run past the end of the file (0x2000 bytes)"),
    "a truncated file": (
        lambda tmp: _pc(elf64(tmp / "cut.elf", [(0x10_0000, 0x1000, 0x1000, 0x1000)], cut=0x1800)),
        "run past the end of the file (0x1800 bytes): truncated?"),
    "truncated headers": (
        lambda tmp: _pc(elf64(tmp / "head.elf", [(0x10_0000, 0x1000, 0x10, 0x10)], cut=40)),
        "head.elf: not a valid ELF file: "),
    "program headers cut off": (
        lambda tmp: _pc(elf64(tmp / "phdr.elf", [(0x10_0000, 0x1000, 0x10, 0x10)], cut=80)),
        "phdr.elf: not a valid ELF file: "),
    "an aarch64 ELF on pc": (
        lambda tmp: _pc(elf64(tmp / "arm.elf", [(0x10_0000, 0x1000, 0x10, 0x10)], machine=EM_AARCH64)),
        "arm.elf: ELF for EM_AARCH64, not a machine this platform runs (EM_X86_64, EM_386)"),
    "p_filesz > p_memsz": (
        lambda tmp: _pc(elf64(tmp / "sizes.elf", [(0x10_0000, 0x1000, 0x100, 0x10)])),
        "segment 0 (p_paddr 0x100000): p_filesz 0x100 exceeds p_memsz 0x10"),
    "a huge p_memsz": (
        lambda tmp: _pc(elf64(tmp / "huge.elf", [(0x10_0000, 0x1000, 0x10, 0xFFFF_FFFF_0000)])),
        "segment 0 (p_paddr 0x100000) of 0xffffffff0000 bytes at 0x100000 does not fit in the RAM/ROM there (0x7f00000 bytes)"),
    "an empty raw image": (
        lambda tmp: _pc(tmp / "empty.bin" if (tmp / "empty.bin").write_bytes(b"") == 0 else None),
        "empty.bin: the image is empty"),
    "a 2 GiB sparse raw image": (
        lambda tmp: _pc(_sparse(tmp / "big.bin", 2 << 30)),
        "the image of 0x80000000 bytes at 0x100000 does not fit in the RAM/ROM there (0x7f00000 bytes)"),
    "a 2 GiB sparse firmware": (
        lambda tmp: ["run", "virt", "-P", f"firmware={_sparse(tmp / 'big.fw', 2 << 30)}", "--console", "none"],
        "(0x80000000 bytes at offset 0x0) does not fit in 0x8000000 bytes"),
    "a 2 GiB sparse kernel": (
        lambda tmp: ["run", "virt-linux", "-P", f"kernel={_sparse(tmp / 'Image', 2 << 30)}", "-P", "initrd=none",
                     "--console", "none"],
        "is larger than RAM (0x10000000 bytes)"),
    "an empty initrd": (
        lambda tmp: ["run", "virt-linux", "-P", f"kernel={arm64_image(tmp / 'Image')}",
                     "-P", f"initrd={tmp / 'empty.cpio' if (tmp / 'empty.cpio').write_bytes(b'') == 0 else None}",
                     "--console", "none"],
        "empty.cpio is empty (use initrd=none for no initramfs)"),
    "an initrd with firmware boot": (
        lambda tmp: ["run", "virt", "-P", f"firmware={firmware(tmp / 'fw.bin', {0: [B_SELF]})}",
                     "-P", f"initrd={arm64_image(tmp / 'initrd')}", "--console", "none"],
        "is loaded only with kernel=: firmware finds its own"),
    "ips=nan": (lambda tmp: _pc(tmp / "x") + ["-P", "ips=nan"], "property ips='nan': expected a finite"),
    "ips=inf": (lambda tmp: _pc(tmp / "x") + ["-P", "ips=inf"], "property ips='inf': expected a finite"),
    "an absurd frequency": (lambda tmp: _pc(tmp / "x") + ["-P", "frequency=99999999999999GHz"],
                            "CPU frequency '99999999999999GHz' is above 1 THz"),
    "an absurd ram_size": (lambda tmp: _pc(tmp / "x") + ["-P", "ram_size=0xFFFFFFFFFFFFF000"],
                           "ram: cannot allocate 0xfffffffffffff000 bytes"),
}


def _sparse(path, size):
    with open(path, "wb") as file:
        file.truncate(size)
    return path


@pytest.mark.parametrize("case", BAD)
def test_bad_images_and_values_are_one_line_errors(tmp_path, case):
    argv, message = BAD[case]
    start = time.monotonic()
    proc = cosim(*argv(tmp_path), timeout=60)
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert err.startswith("cosim: error: ") and "\n" not in err and message in err, err
    assert time.monotonic() - start < 30                 # sizes checked before reading anything whole


# -- guest-level fuzz ----------------------------------------------------------------------------
def _random_image(path, seed):
    import random

    rng = random.Random(seed)
    path.write_bytes(rng.randbytes(rng.choice([16, 512, 4096, 65536])))
    return path


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("platform", ["virt", "pc"])
def test_random_bytes_as_a_guest_end_with_a_clear_report_never_a_traceback_or_a_hang(tmp_path, platform, seed):
    if platform == "pc":
        from cosim.kvm import kvm_unavailable

        if kvm_unavailable():
            pytest.skip(f"needs KVM: {kvm_unavailable()}")
    image = _random_image(tmp_path / "random.bin", 1000 * seed + len(platform))
    option = ["-P", f"firmware={image}"] if platform == "virt" else ["--image", str(image)]
    # pc's KVM may be emulated (nested hosts run guests ~4000x below native): a spinning guest gets 2 ms.
    until = "1 s" if platform == "virt" else "2 ms"
    start = time.monotonic()
    proc = cosim("run", platform, *option, "--console", "none", "--until", until, timeout=120)
    assert time.monotonic() - start < 90                      # bounded: never a hang
    err = proc.stderr
    assert "Traceback" not in err and "Exception ignored" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("cosim: error: ")]
    if errors:
        assert proc.returncode == 2 and "stopped by" not in err
    else:
        reason = stopped_by(err)                               # every summary says why the run stopped
        # Random code may happen to spin until --until (then 0, and the summary says so); anything else fails.
        assert proc.returncode != 0 or reason == f"--until {until} reached", err


# -- platforms from outside the repository --------------------------------------------------------
BOARD = '''
from cosim import Platform, Property, parse_time, format_time
from cosim.models.countdown import Countdown
from cosim.models.simctl import SimControl


class Board(Platform):
    """A user's own board: a countdown timer whose interrupt ends the run."""

    period = Property(1000, "countdown LOAD (1 MHz ticks)", int)

    def build(self):
        self.timer = self.add("timer0", Countdown)
        self.map("sysbus", 0x1000, self.timer)
        self.sim.schedule(0, self.start)

    def start(self):
        bus = self.buses["sysbus"]
        bus.write(0x1000, 4, self.period)                 # LOAD
        bus.write(0x1008, 4, 0b11)                        # CTRL: EN | IE
        self.sim.schedule(self.timer.frequency.duration(self.period), lambda: self.sim.request_stop(5, "board done"))
'''


def test_a_platform_from_a_users_file_runs_from_the_cli(tmp_path):
    board = tmp_path / "myboard.py"
    board.write_text(BOARD)
    proc = cosim("run", f"{board}:Board", "-P", "period=2000", "--until", "1s", timeout=60)
    assert proc.returncode == 5, proc.stderr
    assert stopped_by(proc.stderr) == "board done (status 5) at 2 ms"
    described = subprocess.run([*COSIM, "describe", f"{board}:Board"], capture_output=True, text=True, timeout=60)
    assert described.returncode == 0 and "timer0 (countdown)" in described.stdout


def test_a_users_virt_linux_with_its_own_device_runs_from_the_cli(tmp_path):
    """Issue 14's 'done when': a device with its DT node added to virt-linux from the user's own file,
    run with `cosim run FILE:Class`: the guest reaches the new UART (here a bare-metal guest that
    writes "ok" to it); its device-tree node is checked in tests/platforms/test_virt_extend.py."""
    from cosim.loaders.arm64_linux import FLAT_LOAD_OFFSET
    from cosim.toolchain import assemble

    guest = assemble(Path(__file__).parent / "guests" / "arm64" / "second_uart.S", "aarch64",
                     0x4000_0000 + FLAT_LOAD_OFFSET, tmp_path / "guest").bin
    spec = f"{Path(__file__).parent / 'platforms' / 'user_virt.py'}:VirtTwoUarts"
    proc = cosim("run", spec, "-P", f"kernel={guest}", "-P", "initrd=none", "-P", "console=none",
                 "-P", "console1=stdio", "--until", "1s", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok" and "SIMCTL_EXIT (status 0)" in stopped_by(proc.stderr), (proc.stdout, proc.stderr)
    described = subprocess.run([*COSIM, "describe", spec], capture_output=True, text=True, timeout=60)
    assert described.returncode == 0 and "uart1 (pl011)" in described.stdout


def test_a_platform_from_an_importable_module_runs_from_the_cli():
    proc = cosim("run", "cosim.platforms.pc:Pc", "--console", "none", "--until", "1ms", timeout=60)
    assert proc.returncode == 0 and stopped_by(proc.stderr) == "--until 1 ms reached", proc.stderr


@pytest.mark.parametrize("spec, message", [
    ("{tmp}/missing.py:Board", "missing.py does not exist"),
    ("{tmp}/myboard.py:Nope", "myboard.py has no Platform subclass 'Nope'; it defines: Board"),
    ("{tmp}/broken.py:Board", "cannot load {tmp}/broken.py: SyntaxError: "),
    ("no.such.module:Board", "cannot load no.such.module: ModuleNotFoundError: No module named 'no'"),
    ("cosim:Simulation", "cosim has no Platform subclass 'Simulation'"),
    (":Board", "expected path/to/file.py:Class or module:Class"),
])
def test_a_platform_that_cannot_be_loaded_is_one_line(tmp_path, spec, message):
    (tmp_path / "myboard.py").write_text(BOARD)
    (tmp_path / "broken.py").write_text("class Board(:\n")
    proc = cosim("run", spec.format(tmp=tmp_path), timeout=60)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and err.startswith("cosim: error: platform ") and "\n" not in err, err
    assert message.format(tmp=tmp_path) in err


def test_ctrl_c_from_python_stops_a_unicorn_run_and_raises_keyboard_interrupt(tmp_path):
    # In-process API (a script, a pytest run): the same deferral as the CLI, then KeyboardInterrupt.
    image = firmware(tmp_path / "poll.bin", {0: [0xD53BE020, 0x17FFFFFF]})   # mrs x0, cntpct_el0; b .-4
    script = f"""
import os, signal, threading, time
from cosim.platforms.virt import Virt
board = Virt(firmware={str(image)!r}, console="none", counting="instruction")
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
start = time.monotonic()
try:
    board.run(until=10**15)                               # 1000 s: far longer than the test waits
except KeyboardInterrupt:
    print("interrupted after", round(time.monotonic() - start), "s:", board.sim.stop_request.reason)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "interrupted after" in proc.stdout and "SIGINT received" in proc.stdout, proc.stdout + proc.stderr
    assert "Exception ignored" not in proc.stderr
