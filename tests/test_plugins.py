"""Platforms and models from other packages: `cosim.platforms` / `cosim.models` entry points reach
`cosim list`, `cosim run`, `cosim describe` and `cosim.docgen`; a module or file reaches docgen directly."""

import os
import subprocess
import sys
import textwrap

import pytest

PACKAGE = textwrap.dedent('''
    from typing import ClassVar
    from cosim import Memory, MiB, Platform, Reg, RegisterDevice

    class Beeper(RegisterDevice):
        """A beeper with one register."""
        model: ClassVar[str] = "acme-beeper"
        size: ClassVar[int] = 0x1000
        registers = (Reg("BEEP", 0x0, doc="write to beep"),)

    class AcmeBoard(Platform):
        """Acme's board: RAM and a beeper."""
        name = "acme-board"
        summary = "Acme's board: RAM and a beeper"
        def build(self):
            self.map("sysbus", 0, self.add("ram", Memory, size=MiB))
            self.map("sysbus", 0x1000_0000, self.add("beeper", Beeper))
''')


def install(site, name, entry_points, source=PACKAGE):
    """A package as pip would leave it: the module and a dist-info with its entry points."""
    (site / f"{name}.py").write_text(source)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def cosim(site, *args):
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, "-m", "cosim", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def site(tmp_path):
    install(tmp_path, "acme_sim", "[cosim.platforms]\nacme = acme_sim:AcmeBoard\n\n[cosim.models]\nbeeper = acme_sim:Beeper\n")
    return tmp_path


def test_entry_points_reach_list_and_describe(site):
    listed = cosim(site, "list")
    assert listed.returncode == 0, listed.stderr
    assert "acme-board" in listed.stdout and "acme-beeper" in listed.stdout
    described = cosim(site, "describe", "acme-board")
    assert described.returncode == 0 and "beeper (acme-beeper)" in described.stdout


def test_entry_point_platform_runs(site):
    done = cosim(site, "run", "acme-board", "--until", "1ms")
    assert done.returncode == 0, done.stderr
    assert "virt" not in done.stderr and "1 ms" in done.stderr


def test_a_broken_plugin_is_named_and_the_rest_still_work(site):
    install(site, "broken_sim", "[cosim.platforms]\nbroken = broken_sim:Nope\n", source="raise ImportError('no numpy here')\n")
    listed = cosim(site, "list")
    assert listed.returncode == 0 and "acme-board" in listed.stdout
    assert "entry point broken = broken_sim:Nope (group cosim.platforms) failed to load: ImportError: no numpy here" \
        in listed.stderr


def test_docgen_documents_a_model_outside_cosim(site):
    env = dict(os.environ, PYTHONPATH=str(site))
    for target in ("acme_sim", str(site / "acme_sim.py")):
        done = subprocess.run([sys.executable, "-m", "cosim.docgen", target], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        assert "## `acme-beeper` — Beeper" in done.stdout and "| BEEP | 0x000 | 32 | RW |" in done.stdout


def test_docgen_says_when_there_is_nothing_to_document(tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    done = subprocess.run([sys.executable, "-m", "cosim.docgen", str(empty)], capture_output=True, text=True)
    assert done.returncode != 0 and "defines no model" in done.stderr
    missing = subprocess.run([sys.executable, "-m", "cosim.docgen", str(tmp_path / "nope.py")], capture_output=True,
                             text=True)
    assert missing.returncode != 0 and "nope.py does not exist" in missing.stderr and "Traceback" not in missing.stderr
