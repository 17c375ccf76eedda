"""The stub in-process: bad packets get error replies and never end the simulation; target descriptions;
the KVM Arm64 target on a fake backend (this host cannot run it)."""

import socket
import threading
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from cosim import SEC
from cosim.chardev import BufferBackend
from cosim.gdb import GdbServer, TargetError, parse_address, serve, target_for
from cosim.gdb._packet import frame
from cosim.platforms.virt import Virt
from cosim import CosimError


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def expect(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self.buffer += self.sock.recv(4096)
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def reply(self) -> bytes:
        """The next packet's payload (after the '+' the stub sends in ack mode, if any)."""
        while b"#" not in self.buffer or len(self.buffer) < self.buffer.index(b"#") + 3:
            self.buffer += self.sock.recv(4096)
        start = self.buffer.index(b"$")
        end = self.buffer.index(b"#")
        payload, self.buffer = self.buffer[start + 1:end], self.buffer[end + 3:]
        return payload

    def ask(self, payload: bytes) -> bytes:
        self.send(frame(payload))
        return self.reply()


@pytest.fixture
def stub(guest_elf, request):
    guest, wait = getattr(request, "param", ("hello", True))
    board = Virt(firmware=str(guest_elf("aarch64", guest).bin), console=BufferBackend())
    server = serve(board, "0", wait=wait)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("summary", board.run(until=5 * SEC)), daemon=True)
    thread.start()
    client = Client(server.port)
    yield client, server, board, result, thread
    client.sock.close()
    thread.join(30)


def test_bad_packets_get_error_replies_and_the_session_goes_on(stub):
    client, _server, _board, result, thread = stub
    client.send(b"$g#00")                                  # wrong checksum: please resend
    assert client.expect(1) == b"-"
    client.send(frame(b"mzz,4"))                           # malformed: an error reply
    assert client.expect(1) == b"+" and client.reply() == b"E01"
    assert client.ask(b"qTStatus") == b""                  # not implemented: the empty reply
    assert client.ask(b"m7fffffff0000,4") == b"E0e"        # nothing mapped there
    assert client.ask(b"p99") == b"E0e"                    # no such register
    assert client.ask(b"QStartNoAckMode") == b"OK"
    client.send(b"$g#00")                                  # without acks: answered with an error
    assert client.reply() == b"E01"
    assert client.ask(b"m0,4") == b"c1010058"              # the guest's first word, still there
    assert client.ask(b"?") == b"S05" and thread.is_alive()
    client.send(frame(b"k"))
    thread.join(30)
    assert result["summary"].stop.reason == "killed by gdb"


@pytest.mark.parametrize("stub", [("timer_wfi", True)], indirect=True)
def test_ctrl_c_stops_the_running_guest_and_simulated_time_stands_still(stub):
    client, server, board, result, thread = stub
    client.ask(b"QStartNoAckMode")
    client.send(frame(b"c"))
    while board.sim.now < SEC // 2:                         # let it run half way through its 1000 ticks
        threading.Event().wait(0.01)
    client.send(b"\x03")
    assert client.reply() == b"T02thread:1;"
    stopped_at = board.sim.now
    assert client.ask(b"qRcmd," + b"time".hex().encode())
    threading.Event().wait(0.2)
    assert board.sim.now == stopped_at and thread.is_alive()
    client.send(frame(b"c"))
    thread.join(60)
    assert client.reply() == b"W00"                        # the guest powered off after its 1000th tick
    assert "SYSTEM_OFF" in result["summary"].stop.reason


@pytest.mark.parametrize("stub", [("timer_wfi", False)], indirect=True)
def test_without_waiting_the_guest_runs_until_gdb_attaches_and_stops_it(stub):
    client, server, board, result, thread = stub             # connected once the guest had started
    assert client.ask(b"?") == b"T02thread:1;"                # attaching stopped it
    stopped_at = board.sim.now
    threading.Event().wait(0.2)
    assert board.sim.now == stopped_at
    client.send(frame(b"D"))
    assert client.reply() == b"OK"
    thread.join(60)
    assert "SYSTEM_OFF" in result["summary"].stop.reason


def test_target_xml_matches_the_register_packet(stub):
    client, server, *_ = stub
    client.ask(b"QStartNoAckMode")
    document = client.ask(b"qXfer:features:read:target.xml:0,3fff")
    assert document.startswith(b"l")
    root = ET.fromstring(document[1:])
    assert root.findtext("architecture") == "aarch64"
    features = [feature.get("name") for feature in root.iter("feature")]
    assert features == ["org.gnu.gdb.aarch64.core", "org.gnu.gdb.aarch64.fpu"]
    bits = sum(int(reg.get("bitsize")) for reg in root.iter("reg"))
    registers = client.ask(b"g")
    assert len(registers) == bits // 4                     # two hex digits a byte
    pc = server.target.arch.number("pc")
    assert client.ask(f"p{pc:x}".encode()) == b"00" * 8    # held at the reset address
    assert client.ask(b"qfThreadInfo") == b"m1" and client.ask(b"qsThreadInfo") == b"l"
    client.send(frame(b"D"))
    assert client.reply() == b"OK"


def test_listen_addresses_are_checked():
    assert parse_address("1234") == ("127.0.0.1", 1234)
    assert parse_address("0.0.0.0:99") == ("0.0.0.0", 99)
    for bad in ("", "host:", "99999", "x:y"):
        with pytest.raises(CosimError, match="HOST:]PORT"):
            parse_address(bad)


class FakeKvmArm64:
    """The KVM Arm64 backend's register interface (read_register by name) without KVM."""

    name = "kvm-arm64"

    def __init__(self) -> None:
        self.regs = {f"x{i}": i for i in range(31)} | {"sp": 0x4010_0000, "pc": 0x4008_0000, "pstate": 0x3C5}
        self.bus = SimpleNamespace(find=lambda address: None, read=None, write=None)

    def read_register(self, name: str) -> int:
        return self.regs[name]

    def write_register(self, name: str, value: int) -> None:
        self.regs[name] = value


def test_the_kvm_arm64_target_serves_the_core_registers_and_no_step_it_lacks():
    backend = FakeKvmArm64()
    target = target_for(SimpleNamespace(name="cpu0", backend=backend))
    names = [reg.name for reg in target.arch.registers]
    assert names[:3] == ["x0", "x1", "x2"] and names[-3:] == ["sp", "pc", "cpsr"]
    assert target.read_register(names.index("cpsr")) == (0x3C5).to_bytes(4, "little")
    target.write_register(names.index("pc"), (0x4008_0004).to_bytes(8, "little"))
    assert backend.regs["pc"] == 0x4008_0004
    assert not target.can_step and not any(map(target.supports, range(5)))
    with pytest.raises(TargetError, match="nothing mapped"):
        target.read_memory(0, 4)


def test_a_backend_without_debug_support_is_named():
    cpu = SimpleNamespace(name="cpu0", backend=SimpleNamespace(name="toy"))
    with pytest.raises(TargetError, match="no debugger support for the 'toy' CPU backend"):
        target_for(cpu)
    with pytest.raises(CosimError, match="no CPU"):
        GdbServer(None, [], "0")


@pytest.mark.parametrize("args, message", [
    (["--gdb-nowait"], "--gdb-nowait needs --gdb [HOST:]PORT"),
    (["--gdb", "localhost:http"], "--gdb expects [HOST:]PORT"),
])
def test_cli_refuses_bad_gdb_options_in_one_line(capsys, args, message):
    from cosim.cli import main

    assert main(["run", "virt", "-P", "firmware=none", "--console", "none", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_port_in_use_is_one_clear_error(guest_elf):
    board = Virt(firmware=str(guest_elf("aarch64", "hello").bin), console=BufferBackend())
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(CosimError, match=rf"--gdb {taken.getsockname()[1]}: cannot listen on 127.0.0.1"):
            serve(board, str(taken.getsockname()[1]))
    finally:
        taken.close()
        board.sim.close()
