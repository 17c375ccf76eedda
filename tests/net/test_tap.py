"""The host TAP back-end, inside a network namespace the test makes (root only; nothing leaves the namespace)."""

import os
import subprocess
import time

import pytest

from cosim import MS, PlatformError
from cosim.net import TapBackend, tap_unavailable

BROADCAST = b"\xff" * 6
GUEST_MAC = bytes.fromhex("525400123456")


UNAVAILABLE = tap_unavailable(("ip", "ping"))
needs_tap = pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))


@pytest.fixture
def tap_in_namespace(sim):
    namespace, name = f"cosim-tap-{os.getpid()}", f"ctapm{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        tap = TapBackend(name)
        tap.attach(sim)
        subprocess.run(["ip", "link", "set", name, "netns", namespace], check=True)
        run = ["ip", "netns", "exec", namespace]
        subprocess.run([*run, "ip", "addr", "add", "10.214.0.1/24", "dev", name], check=True)
        subprocess.run([*run, "ip", "link", "set", name, "address", "02:00:00:00:00:01", "up"], check=True)
        yield tap, run
    finally:
        sim.close()
        subprocess.run(["ip", "netns", "del", namespace], check=False)


@needs_tap
def test_frames_from_the_host_arrive_as_events_and_frames_to_it_leave(sim, tap_in_namespace):
    tap, run = tap_in_namespace
    received = []
    tap.set_receiver(lambda frame: received.append((sim.now, frame)))
    # The host looks for 10.214.0.2: its ARP requests (broadcast) come out of the TAP.
    ping = subprocess.Popen([*run, "ping", "-c", "2", "-i", "0.2", "-W", "1", "10.214.0.2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not received and time.monotonic() < deadline:
        sim.run(until=sim.now + 10 * MS)
    ping.kill()
    ping.wait()
    arp = [f for _, f in received if f[12:14] == b"\x08\x06"]
    assert arp and arp[0][:6] == BROADCAST and arp[0][6:12] == bytes.fromhex("020000000001")
    assert all(t % MS == 0 for t, _ in received)        # delivered by the poll, at its period
    # An ARP reply from the "guest": the host's neighbour table learns it.
    reply = (bytes.fromhex("020000000001") + GUEST_MAC + b"\x08\x06" + bytes.fromhex("0001080006040002") + GUEST_MAC
             + bytes([10, 214, 0, 2]) + bytes.fromhex("020000000001") + bytes([10, 214, 0, 1]))
    tap.send(reply)
    assert tap.sent == 1
    neighbours = subprocess.run([*run, "ip", "neigh", "show", "10.214.0.2"], capture_output=True, text=True).stdout
    assert "52:54:00:12:34:56" in neighbours


@needs_tap
def test_an_idle_simulation_waits_on_the_tap_instead_of_spinning(sim, tap_in_namespace):
    tap, _ = tap_in_namespace
    start_wall, start_cpu = time.monotonic(), time.process_time()
    sim.run(until=20 * MS)                       # nothing but the TAP's polls: each may wait IDLE_WAIT
    wall, cpu = time.monotonic() - start_wall, time.process_time() - start_cpu
    assert wall >= 0.5 * 20 * TapBackend.IDLE_WAIT and cpu < wall / 2


def test_bad_interface_names_are_refused():
    with pytest.raises(PlatformError, match="interface name"):
        TapBackend("a-name-longer-than-15")
    with pytest.raises(PlatformError, match="interface name"):
        TapBackend("bad/name")
