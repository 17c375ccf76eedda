"""The examples in docs/ run: the Countdown model and its tests from the model guides."""

import re
from pathlib import Path

import pytest

from cosim import Simulation
from cosim.fdt import from_dtb
from cosim.testing import Harness

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _python_blocks(name: str) -> str:
    return "\n\n".join(re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), re.S))


def _namespace() -> dict:
    ns: dict = {}
    exec(compile(_python_blocks("writing-models.md"), "writing-models.md", "exec"), ns)
    exec(compile(_python_blocks("testing-models.md"), "testing-models.md", "exec"), ns)
    return ns


NS = _namespace()


def test_countdown_model_file_matches_the_guide():
    """models/countdown.py is the guide's example, verbatim, so users can run what they read."""
    model = (DOCS.parent / "models" / "countdown.py").read_text()
    example = re.findall(r"```python\n(.*?)```", (DOCS / "writing-models.md").read_text(), re.S)[0]
    assert example.strip() in model


def test_platform_guide_example_builds():
    ns: dict = {}
    exec(compile(_python_blocks("writing-platforms.md"), "writing-platforms.md", "exec"), ns)
    board = ns["Board"](ram_size="128M")
    try:
        text = board.describe()
        assert "ram (memory)" in text and "uart0 (pl011)" in text and board.devices["ram"].size == 128 * 2**20
    finally:
        board.sim.close()


def test_platform_guide_extension_adds_a_device_with_its_node():
    ns: dict = {}
    exec(compile(_python_blocks("writing-platforms.md"), "writing-platforms.md", "exec"), ns)
    board = ns["VirtLinuxTwoUarts"](firmware="none", kernel="none", console="none")
    try:
        fdt = from_dtb(board.dtb)
        node = fdt.path_offset("/pl011@9040000")
        assert list(fdt.getprop(node, "interrupts").as_uint32_list()) == [0, 8, 4]
        assert any(m.target is board.uart1 for m in board.buses["sysbus"].mappings)
    finally:
        board.sim.close()


@pytest.mark.parametrize("name", sorted(k for k in NS if k.startswith("test_")))
def test_documented_example(name):
    sim = Simulation()
    NS[name](lambda device, base=0: Harness(sim, device, base))
    sim.close()


def test_concepts_time_examples_give_the_values_their_comments_state():
    """docs/concepts.md's time lines are `expression  # value ...`: each value is checked."""
    import ast

    ns: dict = {}
    checked = 0
    for line in _python_blocks("concepts.md").splitlines():
        code, _, comment = line.partition("#")
        if not comment:
            exec(code, ns)
            continue
        expected = re.match(r"\s*('[^']*'|[0-9_]+)", comment).group(1)
        assert eval(code, ns) == ast.literal_eval(expected), line
        checked += 1
    assert checked == 7


def test_python_api_hypothesis_example_runs():
    """docs/python-api.md's test-kit example under hypothesis (a harness per example) passes as written."""
    block = next(b for b in re.findall(r"```python\n(.*?)```", (DOCS / "python-api.md").read_text(), re.S)
                 if "@given" in b)
    ns: dict = {}
    exec(compile(block, "python-api.md", "exec"), ns)
    ns["test_a_load_shows_in_value"]()


def test_virtio_guide_device_and_its_test_run():
    """docs/virtio.md's Loopback device, its platform and its test, as a user copies them."""
    text = (DOCS / "virtio.md").read_text()
    ns: dict = {}
    source = "\n\n".join(re.findall(r"```python\n(.*?)```", text[text.index("## Writing a virtio device"):], re.S))
    exec(compile(source, "virtio.md", "exec"), ns)
    sim = Simulation()
    try:
        ns["test_loopback_delivers_after_the_delay"](lambda device, base=0: Harness(sim, device, base))
    finally:
        sim.close()
    board = ns["VirtWithLoopback"](kernel="none", initrd="none", console="none")
    try:
        node = from_dtb(board.dtb).path_offset("/virtio_mmio@a000000")
        assert node >= 0 and board.loopback.device.device_id == 0x7FFF
    finally:
        board.sim.close()
