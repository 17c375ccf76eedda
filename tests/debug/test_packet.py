"""The RSP framing and command parser: checksums, escapes, run-length encoding, bad packets."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosim.gdb._commands import (Action, Breakpoint, BreakpointKind, CommandError, Monitor, ReadFeatures,
                                 ReadMemory, ReadRegister, Resume, SetThread, Simple, Unsupported, WriteMemory,
                                 WriteRegister, parse)
from cosim.gdb._packet import BadPacket, Control, Packet, PacketReader, checksum, escape, expand_rle, frame, unescape


def test_checksum_is_the_byte_sum_modulo_256():
    assert checksum(b"OK") == 0x9A
    assert frame(b"OK") == b"$OK#9a"
    assert frame(b"") == b"$#00"


def test_special_bytes_are_escaped_and_the_checksum_covers_the_escaped_form():
    assert escape(b"a#b$c}d*") == b"a}\x03b}\x04c}]d}\x0a"
    assert frame(b"#") == b"$}\x03#80"
    assert unescape(escape(b"#$}*")) == b"#$}*"


@given(st.binary(max_size=200))
def test_escaping_round_trips(data):
    assert unescape(escape(data)) == data


def test_run_length_encoding_expands():
    assert expand_rle(b"0* ") == b"0" * 4          # ' ' is 32: three more
    assert expand_rle(b"ab*\"c") == b"a" + b"b" * 6 + b"c"   # '"' is 34: five more


@pytest.mark.parametrize("bad", [b"*a", b"a*", b"a*\x10"])
def test_bad_run_length_encoding_is_refused(bad):
    with pytest.raises(ValueError):
        expand_rle(bad)


def test_the_reader_reassembles_packets_split_anywhere_and_sees_acks_and_ctrl_c():
    reader = PacketReader()
    stream = b"+$g#67-\x03$m0,4#fd" + frame(b"X}#")
    events = [event for byte in stream for event in reader.feed(bytes([byte]))]
    assert events == [Control.ACK, Packet(b"g"), Control.NAK, Control.INTERRUPT, Packet(b"m0,4"),
                      Packet(b"X}#")]


def test_a_bad_checksum_is_reported_and_the_reader_carries_on():
    reader = PacketReader()
    events = reader.feed(b"$g#00$g#zz$?#3f")
    assert isinstance(events[0], BadPacket) and "does not match" in events[0].reason
    assert isinstance(events[1], BadPacket) and "hex" in events[1].reason
    assert events[2] == Packet(b"?")


def test_an_overlong_packet_is_dropped_not_buffered_forever():
    reader = PacketReader()
    events = reader.feed(b"$" + b"a" * 0x9000)
    assert isinstance(events[0], BadPacket) and "longer" in events[0].reason
    assert reader.feed(b"$?#3f") == [Packet(b"?")]


@pytest.mark.parametrize("payload, command", [
    (b"m40000000,10", ReadMemory(0x4000_0000, 16)),
    (b"M10,2:abcd", WriteMemory(0x10, b"\xab\xcd")),
    (b"X10,2:\x01\x02", WriteMemory(0x10, b"\x01\x02")),
    (b"p20", ReadRegister(32)),
    (b"P20=0100000000000000", WriteRegister(32, b"\x01" + b"\0" * 7)),
    (b"Z0,1000,4", Breakpoint(True, BreakpointKind.SOFTWARE, 0x1000, 4)),
    (b"z2,40200000,8", Breakpoint(False, BreakpointKind.WRITE, 0x4020_0000, 8)),
    (b"c", Resume(Action.CONTINUE)),
    (b"s1000", Resume(Action.STEP, 0x1000)),
    (b"vCont;s:1;c", Resume(Action.STEP, None, 1)),
    (b"vCont;c", Resume(Action.CONTINUE)),
    (b"Hg-1", SetThread("g", -1)),
    (b"Hc0", SetThread("c", 0)),
    (b"qXfer:features:read:target.xml:0,ffb", ReadFeatures("target.xml", 0, 0xFFB)),
    (b"qRcmd,74696d65", Monitor("time")),
    (b"qTStatus", Unsupported(b"qTStatus")),
    (b"?", Simple.HALT_REASON), (b"g", Simple.READ_REGISTERS), (b"k", Simple.KILL), (b"D;1", Simple.DETACH),
    (b"vKill;1", Simple.KILL), (b"QStartNoAckMode", Simple.START_NO_ACK), (b"qAttached:1", Simple.ATTACHED),
])
def test_packets_parse_into_typed_commands(payload, command):
    assert parse(payload) == command


@pytest.mark.parametrize("payload", [b"", b"mzz,4", b"m10", b"M10,4:ab", b"M10,1:zz", b"Z9,0,0", b"Z0,1",
                                     b"P1", b"Hx1", b"vCont;q", b"qRcmd,ff", b"pq"])
def test_malformed_packets_are_command_errors(payload):
    with pytest.raises(CommandError):
        parse(payload)


@given(st.binary(max_size=64))
def test_any_payload_parses_or_is_a_command_error(payload):
    try:
        parse(payload)
    except CommandError:
        pass
