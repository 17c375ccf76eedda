"""The simulated Ethernet switch: timing, learning, flooding, queueing, pcap, bad frames."""

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim import PlatformError, Simulation, us
from cosim.net import Switch, parse_bandwidth, read_pcap, switch_named

A, B, C = (bytes([0x52, 0x54, 0, 0x12, 0x34, n]) for n in (0x56, 0x57, 0x58))
BROADCAST = b"\xff" * 6


def frame(dst: bytes, src: bytes, size: int = 64) -> bytes:
    return dst + src + b"\x08\x00" + bytes(size - 14)


def wired(sim, n=3, **props):
    switch = Switch(**props)
    inboxes = []
    for _ in range(n):
        port = switch.port()
        port.attach(sim)
        inbox = []
        port.set_receiver(lambda f, inbox=inbox: inbox.append((sim.now, f)))
        inboxes.append(inbox)
    return switch, inboxes


def test_a_frame_arrives_after_latency_plus_serialisation(sim):
    switch, inboxes = wired(sim, latency=us(10), bandwidth="1G")
    sim.schedule(us(1), lambda: switch.ports[0].send(frame(B, A, 1000)))
    sim.run()
    # 1000 bytes at 1 Gbit/s: 8 us on the wire, then 10 us of latency.
    assert inboxes[1] == [(us(1) + us(8) + us(10), frame(B, A, 1000))]
    assert inboxes[2] == inboxes[1] and inboxes[0] == []       # unknown destination: flooded


def test_learned_destinations_get_unicast_and_broadcast_floods(sim):
    switch, inboxes = wired(sim)
    switch.ports[1].send(frame(BROADCAST, B))          # the switch learns B on port 1
    switch.ports[0].send(frame(B, A))
    sim.run()
    assert [f[:6] for _, f in inboxes[1]] == [B]
    assert [f[:6] for _, f in inboxes[2]] == [BROADCAST]
    assert [f[:6] for _, f in inboxes[0]] == [BROADCAST]
    assert (switch.forwarded, switch.flooded) == (1, 1)
    assert switch.table == {B: switch.ports[1], A: switch.ports[0]}


def test_a_hub_floods_everything(sim):
    switch, inboxes = wired(sim, learning=False)
    switch.ports[1].send(frame(BROADCAST, B))
    switch.ports[0].send(frame(B, A))
    sim.run()
    assert len(inboxes[2]) == 2 and switch.table == {}


def test_frames_queue_on_a_busy_egress_in_order(sim):
    switch, inboxes = wired(sim, n=2, latency=0, bandwidth="8M")    # 1 byte per us
    for size in (100, 50, 64):
        switch.ports[0].send(frame(B, A, size))
    sim.run()
    assert [t for t, _ in inboxes[1]] == [us(100), us(150), us(214)]
    assert [len(f) for _, f in inboxes[1]] == [100, 50, 64]


def test_a_frame_back_to_its_own_port_is_filtered(sim):
    switch, inboxes = wired(sim, n=2)
    switch.ports[0].send(frame(BROADCAST, A))
    switch.ports[0].send(frame(A, B))          # A lives on port 0: nothing leaves
    sim.run()
    assert switch.filtered == 1 and inboxes[0] == []


def test_runts_and_giants_are_counted_not_forwarded(sim):
    switch, inboxes = wired(sim, n=2)
    switch.ports[0].send(b"\x01" * 13)
    switch.ports[0].send(bytes(65536))
    sim.run()
    assert switch.malformed == 2 and inboxes[1] == []


def test_a_port_without_a_nic_drops(sim):
    switch = Switch()
    sender, silent = switch.port(), switch.port()
    sender.attach(sim)
    sender.send(frame(BROADCAST, A))
    sim.run()
    assert silent.dropped == 1 and "1 to no NIC" in switch.summary()["switch0 frames"]


def test_bad_properties_are_refused():
    with pytest.raises(PlatformError, match="bandwidth"):
        Switch(bandwidth="fast")
    with pytest.raises(PlatformError, match="positive"):
        parse_bandwidth(0)
    with pytest.raises(PlatformError, match="latency"):
        Switch(latency=-1)
    assert parse_bandwidth("100M") == 10**8 and parse_bandwidth("10 Mbit/s") == 10**7


def test_named_switches_are_one_per_simulation(sim):
    assert switch_named(sim, "lan") is switch_named(sim, "lan")
    assert switch_named(Simulation(), "lan") is not switch_named(sim, "lan")
    with pytest.raises(PlatformError, match="once"):
        switch_named(sim, "lan", latency=us(1))
    other = Switch("x")
    other.attach(Simulation())
    with pytest.raises(PlatformError, match="another simulation"):
        other.attach(sim)


def test_pcap_records_every_frame_with_its_time(sim, tmp_path):
    path = tmp_path / "lan.pcap"
    switch, _ = wired(sim, n=2, pcap=path)
    sim.schedule(us(3), lambda: switch.ports[0].send(frame(B, A, 60)))
    sim.schedule(us(5), lambda: switch.ports[1].send(frame(A, B, 98)))
    sim.run()
    sim.close()
    assert read_pcap(path) == [(us(3), frame(B, A, 60)), (us(5), frame(A, B, 98))]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (scripts/bootstrap.sh installs it)")
def test_tcpdump_reads_the_capture(sim, tmp_path):
    path = tmp_path / "lan.pcap"
    switch, _ = wired(sim, n=2, pcap=path)
    sim.schedule(us(3), lambda: switch.ports[0].send(frame(B, A, 60)))
    sim.run()
    sim.close()
    out = subprocess.run(["tcpdump", "-nn", "-e", "-r", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "52:54:00:12:34:56 > 52:54:00:12:34:57" in out.stdout and out.stdout.startswith("00:00:00.000003")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from([A, B, C, BROADCAST]), st.integers(0, 1600),
                          st.integers(0, 50)), max_size=20))
def test_any_traffic_is_delivered_deterministically_without_overtaking(sends):
    def play():
        sim = Simulation()
        switch, inboxes = wired(sim, latency=us(2), bandwidth="100M")
        sources = [A, B, C]
        for port, dst, size, at in sends:
            data = dst + sources[port] + bytes(max(0, size - 12))
            sim.schedule(us(at), lambda p=port, d=data: switch.ports[p].send(d))
        sim.run()
        return inboxes

    first = play()
    assert first == play()
    for inbox in first:
        times = [t for t, _ in inbox]
        assert times == sorted(times)            # one egress: frames leave in the order they queued
