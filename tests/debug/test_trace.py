"""Traces of a guest on virt: the VCD (read back with vcdvcd) and the trace-event JSON (Perfetto's
trace processor where its binary can be had, else the documented fallback check), filters, logs."""

import json
import logging
import os

import pytest

from cosim import MS, CosimError
from cosim.chardev import BufferBackend
from cosim.platforms.virt import Virt
from cosim.testing import Probe
from cosim.trace import attach, configure_logs


@pytest.fixture
def board(guest_elf):
    return Virt(firmware=str(guest_elf("aarch64", "timer_wfi").bin), console=BufferBackend())


def planned_expiries(board):
    """The times the generic timer model schedules its virtual timer's expiry for."""
    timer, planned = board.timer, []
    original = timer.virtual.update

    def update():
        original()
        if timer.virtual._call is not None:
            planned.append(timer.time_of(timer.virtual.cval))

    timer.virtual.update = update
    return planned


def test_the_vcd_shows_the_timer_edges_when_the_model_planned_them(board, tmp_path):
    vcdvcd = pytest.importorskip("vcdvcd")
    planned = planned_expiries(board)
    probe = Probe(board.cpu0.pins["irq"].driver, board.sim)
    tracer = attach(board, tmp_path / "run", json=False)
    board.run(until=10 * MS)
    board.sim.close()
    assert tracer.paths == [tmp_path / "run.vcd"]
    vcd = vcdvcd.VCDVCD(str(tmp_path / "run.vcd"))
    assert vcd.timescale["unit"] == "ps" and vcd.timescale["magnitude"] == 1
    cntv = vcd["virt.timer.cntv"].tv
    rises = [t for t, v in cntv if v == "1"]
    assert len(rises) == 9 and rises == planned[:9]               # 1 ms ticks, at the planned picosecond
    assert rises[1] - rises[0] >= MS
    # The CPU's interrupt input follows the GIC's output, edge for edge.
    assert [(t, v == "1") for t, v in vcd["virt.cpu0.irq"].tv[1:]] == probe.history
    assert [t for t, v in vcd["virt.gic.irq0"].tv if v == "1"] == rises


def trace_events(path):
    """The fallback check of a trace-event file (docs/debugging.md): the JSON Object Format with
    the keys and phases the Chrome/Perfetto importers need, timestamps as numbers of microseconds."""
    document = json.loads(path.read_text())
    events = document["traceEvents"]
    tracks = {}
    for event in events:
        assert event["ph"] in ("M", "X", "i") and isinstance(event["pid"], int) and isinstance(event["tid"], int)
        if event["ph"] == "M":
            tracks[event["tid"]] = event["args"]["name"]
        else:
            assert isinstance(event["ts"], (int, float)) and event["ts"] >= 0
            if event["ph"] == "X":
                assert isinstance(event["dur"], (int, float)) and event["dur"] >= 0
    return [dict(event, track=tracks.get(event["tid"])) for event in events if event["ph"] != "M"]


def perfetto_query(path, sql):
    """Rows of `sql` from Perfetto's trace processor, or None where its binary cannot be had
    (it is downloaded on first use; set PERFETTO_TRACE_PROCESSOR to a local trace_processor_shell)."""
    processor = pytest.importorskip("perfetto.trace_processor")
    config = processor.TraceProcessorConfig(bin_path=os.environ.get("PERFETTO_TRACE_PROCESSOR"))
    try:
        with processor.TraceProcessor(trace=str(path), config=config) as tp:
            return [row.__dict__ for row in tp.query(sql)]
    except Exception as error:  # noqa: BLE001 - any failure to start it means: not available here
        logging.getLogger(__name__).warning("perfetto trace processor unavailable: %s", error)
        return None


def test_the_json_has_quanta_exits_bus_transactions_and_interrupt_edges(board, tmp_path):
    attach(board, tmp_path / "run", vcd=False)
    board.run(until=5 * MS)
    board.sim.close()
    path = tmp_path / "run.json"
    events = trace_events(path)
    quanta = [e for e in events if e["track"] == "cpu0" and e["name"] == "quantum"]
    assert quanta and {e["args"]["exit"] for e in quanta} >= {"idle"}
    jumps = [e for e in events if e["name"] == "idle jump"]
    assert len(jumps) >= 4 and all(e["dur"] > 900 for e in jumps[1:])       # most of each 1 ms tick is skipped
    bus = [e for e in events if e.get("cat") == "bus"]
    iar = [e for e in bus if e["args"]["register"] == "GICC_IAR"]
    assert len(iar) == 4 and all(e["args"]["value"] == "0x1b" and e["track"] == "gic" for e in iar)
    assert any(e["name"] == "write GICD_CTLR" and e["args"]["access"] == "write" for e in bus)
    assert len([e for e in events if e["name"] == "timer.cntv rise"]) == 4
    rows = perfetto_query(path, "select s.name as name, count(*) as n from slice s group by s.name")
    if rows is not None:
        counts = {row["name"]: row["n"] for row in rows}
        assert counts["quantum"] == len(quanta) and counts["read GICC_IAR"] == 4


def test_a_filter_keeps_only_the_named_devices(board, tmp_path):
    attach(board, tmp_path / "run", only={"timer"})
    board.run(until=3 * MS)
    board.sim.close()
    events = trace_events(tmp_path / "run.json")
    assert events and {e["track"] for e in events} == {"timer"}
    vcdvcd = pytest.importorskip("vcdvcd")
    assert sorted(vcdvcd.VCDVCD(str(tmp_path / "run.vcd")).signals) == ["virt.timer.cntp", "virt.timer.cntv"]
    with pytest.raises(CosimError, match="no device named nosuch"):
        attach(board, tmp_path / "other", only={"nosuch"})


def test_debug_level_logs_register_accesses_with_time(board, caplog):
    caplog.set_level(logging.DEBUG)
    configure_logs(board, "gic=debug,uart0=info")
    board.run(until=2 * MS)
    board.sim.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "cosim.gic"]
    assert "gic.cpu0 read GICC_IAR (offset 0xc) = 0x0000001b at 1.000022 ms" in lines
    assert not [r for r in caplog.records if r.name == "cosim.uart0" and r.levelno < logging.INFO]
    with pytest.raises(CosimError, match="DEVICE=LEVEL"):
        configure_logs(board, "gic=loud")


def test_the_command_line_traces_filters_and_logs(guest_elf, tmp_path, capsys, caplog):
    from cosim.cli import main

    firmware = guest_elf("aarch64", "timer_wfi").bin
    base = ["run", "virt", "-P", f"firmware={firmware}", "--console", "buffer", "--until", "3ms"]
    caplog.set_level(logging.DEBUG)
    assert main([*base, "--trace", str(tmp_path / "boot.json"), "--trace-filter", "timer,cpu0",
                 "--log", "gic=debug"]) == 0
    assert f"tracing to {tmp_path / 'boot.vcd'}, {tmp_path / 'boot.json'}" in capsys.readouterr().err
    assert {e["track"] for e in trace_events(tmp_path / "boot.json")} == {"timer", "cpu0"}
    assert any("read GICC_IAR" in r.getMessage() for r in caplog.records if r.name == "cosim.gic")
    assert main([*base, "--trace-filter", "gic"]) == 2
    assert "--trace-filter needs --trace FILE" in capsys.readouterr().err
    assert main([*base, "--log", "gic"]) == 2
    assert "--log expects DEVICE=LEVEL" in capsys.readouterr().err
