"""Character back-ends: parsing the console property, TCP (loopback only), pty, stdio, lines."""

import os
import socket
import termios
import time

import pytest

from cosim import MS, PlatformError, Simulation
from cosim.chardev import (BufferBackend, LineBackend, NullBackend, PtyBackend, StdioBackend, TcpBackend,
                           open_backend)


def poll_until(sim, condition, wall=3.0):
    """Run the simulation 1 ms at a time until `condition()`; fail after `wall` seconds of real time."""
    deadline = time.monotonic() + wall
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        sim.run(until=sim.now + MS)
        time.sleep(0.001)


def received(backend):
    got = bytearray()
    backend.set_receiver(got.extend)
    return got


def test_open_backend_parses_the_console_property():
    assert isinstance(open_backend("none"), NullBackend) and isinstance(open_backend("buffer"), BufferBackend)
    assert isinstance(open_backend("stdio"), StdioBackend)
    mine = BufferBackend()
    assert open_backend(mine) is mine
    tcp = open_backend("tcp:127.0.0.1:0")
    assert isinstance(tcp, TcpBackend) and tcp.address[0] == "127.0.0.1"
    tcp.close()
    tcp = open_backend("tcp:0")                         # host defaults to loopback
    assert tcp.address[0] == "127.0.0.1"
    tcp.close()
    if socket.has_ipv6:
        try:
            tcp = open_backend("tcp:[::1]:0")
        except PlatformError:
            pass                                        # no IPv6 loopback on this host
        else:
            assert tcp.address[0] == "::1" and tcp.describe().startswith("console on tcp:[::1]:")
            tcp.close()
    pty = open_backend("pty")
    assert isinstance(pty, PtyBackend) and os.path.exists(pty.path)
    pty.close()
    for bad, message in (("tcp:127.0.0.1:http", "port must be a number"), ("tcp:99999", "port must be a number"),
                         ("serial", "unknown console 'serial'"), ("pty:x", "unknown console")):
        with pytest.raises(PlatformError, match=message):
            open_backend(bad)


def test_busy_port_is_a_clear_error():
    first = TcpBackend(port=0, announce=False)
    with pytest.raises(PlatformError, match=f"cannot listen on tcp:127.0.0.1:{first.address[1]}"):
        TcpBackend(port=first.address[1], announce=False)
    first.close()


def test_tcp_buffers_output_until_a_client_connects_and_carries_input():
    sim = Simulation()
    tcp = TcpBackend(port=0, announce=False)
    got = received(tcp)
    tcp.attach(sim)
    tcp.write(b"early ")                                # nobody connected yet: kept
    assert tcp.pending == b"early "
    with socket.create_connection(tcp.address, timeout=3) as client:
        poll_until(sim, lambda: tcp.connected)
        tcp.write(b"late")
        data = b""
        while len(data) < 10:
            data += client.recv(100)
        assert data == b"early late"
        client.sendall(b"keys")
        poll_until(sim, lambda: got == b"keys")
    poll_until(sim, lambda: not tcp.connected)          # the client left
    tcp.write(b"kept")
    with socket.create_connection(tcp.address, timeout=3) as again:
        poll_until(sim, lambda: tcp.connected)
        assert again.recv(100) == b"kept"
        sim.close()
    assert tcp.pending == b""


def test_tcp_serves_one_client_at_a_time():
    sim = Simulation()
    tcp = TcpBackend(port=0, announce=False)
    tcp.attach(sim)
    with socket.create_connection(tcp.address, timeout=3) as first:
        poll_until(sim, lambda: tcp.connected)
        with socket.create_connection(tcp.address, timeout=3) as second:
            sim.run(until=sim.now + 5 * MS)
            assert b"busy" in second.recv(100)
        tcp.write(b"still here")
        assert first.recv(100) == b"still here"
    sim.close()


def test_tcp_output_left_at_close_goes_to_stderr(capsys):
    sim = Simulation()
    tcp = TcpBackend(port=0, announce=False)
    tcp.attach(sim)
    tcp.write(b"last words")
    sim.close()
    err = capsys.readouterr().err
    assert "10 bytes of output were not delivered" in err and "last words" in err
    tcp.write(b"too late")
    assert "too late" in capsys.readouterr().err


def test_pty_carries_both_directions_and_announces_its_path(capsys):
    sim = Simulation()
    pty = PtyBackend()
    got = received(pty)
    pty.attach(sim)
    assert pty.path in capsys.readouterr().err
    slave = os.open(pty.path, os.O_RDWR | os.O_NOCTTY)
    try:
        pty.write(b"out\n")
        assert os.read(slave, 100) == b"out\n"          # raw: no \r added
        os.write(slave, b"in")
        poll_until(sim, lambda: got == b"in")
    finally:
        os.close(slave)
        sim.close()


def test_stdio_pipes_escape_and_eof():
    sim = Simulation()
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    stdio = StdioBackend(stdin=in_r, stdout=out_w)
    got = received(stdio)
    stdio.attach(sim)
    stdio.write(b"hi\n")
    assert os.read(out_r, 100) == b"hi\n"                # not a terminal: no raw-mode \r
    os.write(in_w, b"a\x01\x01b\x01x")                   # Ctrl-A Ctrl-A sends Ctrl-A; Ctrl-A X stops
    summary = sim.run(until=10 * MS)
    assert got == b"a\x01b" and summary.stop and "Ctrl-A X" in summary.stop.reason
    for fd in (in_r, in_w, out_r, out_w):
        os.close(fd)


def test_stdio_restores_the_terminal_when_the_simulation_closes():
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)
    sim = Simulation()
    stdio = StdioBackend(stdin=slave, stdout=slave)
    stdio.attach(sim)
    assert termios.tcgetattr(slave) != before            # raw while running
    stdio.write(b"x\n")
    assert os.read(master, 100) == b"x\r\n"
    sim.run(until=5 * MS)                                # ended by the limit, not a stop
    sim.close()
    assert termios.tcgetattr(slave) == before
    os.close(master)
    os.close(slave)


def test_line_backend_passes_whole_lines_and_the_rest_at_close():
    sim = Simulation()
    lines = []
    log = LineBackend(lines.append)
    log.attach(sim)
    log.write(b"a\r\nb")
    log.write(b"c\nd")
    assert lines == ["a", "bc"]
    sim.close()
    assert lines == ["a", "bc", "d"]


def test_buffer_run_until_is_bounded_in_wall_time_too():
    """A guest that never prints the marker but keeps simulated time crawling must not stall a test."""
    import time

    from cosim import SEC, Simulation
    from cosim.chardev import BufferBackend

    sim = Simulation()
    console = BufferBackend()
    console.attach(sim)

    def busy() -> None:              # events every 1 us: simulated time crawls
        sim.schedule(1000 * 1000, busy)

    busy()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="'never' not seen within 0.2 s of wall time"):
        console.run_until("never", 3600 * SEC, wall=0.2)
    assert time.monotonic() - started < 5
    sim.close()
