import pytest
from hypothesis import given, strategies as st

from cosim import Access, BusError, Field, PlatformError, Reg, RegisterDevice, Response, Unmapped


class Widget(RegisterDevice):
    """A made-up device exercising every access mode."""

    model = "widget"
    size = 0x100
    registers = (
        Reg("CTRL", 0x00, reset=0x5, fields=(Field("EN", 0), Field("MODE", 1, 2), Field("DONE", 4, access=Access.W1C),
                                              Field("ID", 8, 8, access=Access.RO))),
        Reg("STATUS", 0x04, reset=0xF0, access=Access.RC),
        Reg("CMD", 0x08, access=Access.WO),
        Reg("SET", 0x0C, access=Access.W1S),
        Reg("VERSION", 0x10, reset=0x0102, access=Access.RO),
        Reg("PRIO", 0x20, count=8, sizes=(1, 4), reset=tuple(range(8))),
        Reg("COUNT", 0x40),
        Reg("WIDE", 0x48, width=64, sizes=(4, 8)),
        Reg("FIFO", 0x50, access=Access.RO),
    )

    def __init__(self, name):
        super().__init__(name)
        self.commands = []
        self.fifo = []
        self.updates = 0

    def read_COUNT(self):
        return len(self.commands)

    def read_FIFO(self):
        return self.fifo[0] if self.fifo else 0

    def after_read_FIFO(self, value):
        if self.fifo:
            assert self.fifo.pop(0) == value

    def write_CMD(self, value):
        self.commands.append(value)

    def update(self):
        self.updates += 1


@pytest.fixture
def dut(harness):
    return harness(Widget("w"))


def test_reset_values(dut):
    assert [dut.read(o) for o in (0x00, 0x08, 0x0C, 0x10)] == [0x5, 0, 0, 0x0102]
    assert [dut.read(0x20 + 4 * i) for i in range(8)] == list(range(8))


def test_access_modes_bit_by_bit(dut):
    d = dut.device
    d.regs.CTRL = 0x10 | 0xAB00          # DONE set, ID=0xAB
    dut.write(0x00, 0x0000_0013)          # EN=1, MODE=1, DONE written 1 -> cleared
    assert d.regs.CTRL == 0xAB03          # ID kept (RO field)
    assert dut.read(0x04) == 0xF0 and dut.read(0x04) == 0   # RC
    dut.write(0x04, 0xFF)
    assert d.regs.STATUS == 0                                # RC ignores writes
    dut.write(0x0C, 0x1)
    dut.write(0x0C, 0x4)
    assert dut.read(0x0C) == 0x5                             # W1S accumulates
    dut.write(0x10, 0xFFFF)
    assert dut.read(0x10) == 0x0102                          # RO ignores writes


def test_write_only_register_reads_zero_and_hook_gets_value(dut):
    dut.write(0x08, 0x77)
    assert dut.read(0x08) == 0 and dut.device.commands == [0x77]
    assert dut.read(0x40) == 1


def test_repeated_registers_byte_lanes(dut):
    dut.write(0x21, 0xAA, size=1)
    assert dut.read(0x21, 1) == 0xAA and dut.read(0x20) == 0x0000AA00
    assert dut.read(0x24) == 1


def test_narrow_write_does_not_clear_other_w1c_bits():
    class W(RegisterDevice):
        registers = (Reg("ICR", 0x0, access=Access.W1C, sizes=(1, 4)),)

    w = W("w")
    w.regs.ICR = 0xFFFF
    w.write(1, 1, 0x01)                    # clears bit 8 only
    assert w.regs.ICR == 0xFEFF


def test_wrong_size_and_misaligned_give_burst_error(dut):
    assert dut.status(0x00, size=1) is Response.BURST_ERROR
    assert dut.status(0x22, size=4) is Response.BURST_ERROR
    assert dut.status(0x48, size=8) is Response.OK and dut.status(0x4C, size=4) is Response.OK


def test_unmapped_offsets(dut, harness):
    assert dut.status(0x80) is Response.ADDRESS_ERROR

    class Quiet(Widget):
        unmapped = Unmapped.RAZ_WI

    quiet = harness(Quiet("q"), base=0x1000)
    assert quiet.read(0x80) == 0 and quiet.status(0x80, value=1) is Response.OK


def test_harness_without_a_mapping_still_attaches_and_resets(harness):
    unmapped = harness(Widget("w"), base=None)             # as for a device reached by system registers
    assert unmapped.device.regs.CTRL == 0x5 and unmapped.device.clock is unmapped.sim
    assert unmapped.status(0x00) is Response.ADDRESS_ERROR and not unmapped.bus.mappings


def test_reset_restores_every_register(dut):
    d = dut.device
    for offset in (0x00, 0x0C, 0x20, 0x24, 0x48):
        dut.write(offset, 0xFFFF_FFFF)
    d.read(0x04, 4)
    d.reset()
    assert d.regs.CTRL == 0x5 and d.regs.SET == 0 and d.regs.STATUS == 0xF0
    assert d.regs.PRIO == list(range(8)) and d.regs.WIDE == 0


def test_update_runs_after_writes_and_side_effect_reads(dut):
    d = dut.device
    before = d.updates
    dut.write(0x00, 1)
    dut.read(0x10)            # plain read: no side effect
    dut.read(0x04)            # RC read: side effect
    dut.read(0x40)            # hooked read without a side effect (a status poll): no update()
    assert d.updates - before == 2
    dut.read(0x50)            # after_read_ hook: a side effect
    assert d.updates - before == 3


def test_debug_read_returns_what_a_read_would_without_side_effects(dut):
    d = dut.device
    d.fifo[:] = [7, 8]
    d.regs.STATUS = 0xF0
    before = d.updates
    assert [d.debug_read(o, 4) for o in (0x04, 0x50, 0x50, 0x08)] == [0xF0, 7, 7, 0]   # RC kept, FIFO not popped, WO reads 0
    assert d.debug_read(0x24, 1) == 1 and d.updates == before and d.regs.STATUS == 0xF0 and d.fifo == [7, 8]
    assert [dut.read(0x50), dut.read(0x50), dut.read(0x04), dut.read(0x04)] == [7, 8, 0xF0, 0]


def test_debug_write_stores_bits_without_hooks_or_update(dut):
    d = dut.device
    before = d.updates
    d.debug_write(0x10, 4, 0x55)          # RO: a debugger may still set it
    d.debug_write(0x08, 4, 0x77)          # WO with a write hook: stored, hook not called
    d.debug_write(0x25, 1, 0xAB)          # narrow: only the written lane changes
    assert d.regs.VERSION == 0x55 and d.regs.CMD == 0x77 and d.commands == [] and d.regs.PRIO[1] == 0xAB01
    assert d.updates == before


def test_debug_access_checks_sizes_and_offsets_like_a_read(dut):
    d = dut.device
    with pytest.raises(BusError) as error:
        d.debug_read(0x00, 1)
    assert error.value.status is Response.BURST_ERROR
    with pytest.raises(BusError) as error:
        d.debug_write(0x80, 4, 1)
    assert error.value.status is Response.ADDRESS_ERROR


def test_describe_offset_names_register_and_index(dut):
    assert dut.device.describe_offset(0x26) == "PRIO[1] (offset 0x26)"


def test_declaration_mistakes_are_caught_at_class_creation():
    with pytest.raises(PlatformError, match="overlaps"):
        class Bad(RegisterDevice):
            registers = (Reg("A", 0x0), Reg("B", 0x2, width=16))
    with pytest.raises(PlatformError, match="outside"):
        Reg("C", 0, width=8, fields=(Field("F", 6, 4),))
    with pytest.raises(PlatformError, match="reset values"):
        Reg("D", 0, count=2, reset=(1, 2, 3))


offsets = st.sampled_from([0x00, 0x04, 0x08, 0x0C, 0x10, 0x20, 0x21, 0x24, 0x40, 0x48, 0x80, 0x3])


@given(st.lists(st.tuples(offsets, st.sampled_from([1, 2, 4, 8]), st.one_of(st.none(), st.integers(0, 2**64 - 1)))))
def test_random_accesses_never_raise_and_fit_the_access(ops):
    from cosim import BusError

    w = Widget("w")
    for offset, size, value in ops:
        try:
            if value is None:
                got = w.read(offset, size)
                assert 0 <= got < 1 << (8 * size)
            else:
                w.write(offset, size, value & ((1 << (8 * size)) - 1))
        except BusError:
            pass
    assert (w.regs.CTRL >> 8) & 0xFF == 0          # the RO ID field never changes


def test_narrow_write_to_hooked_register_merges_with_the_read_hook():
    class Prio(RegisterDevice):
        registers = (Reg("PRIO", 0x0, count=2, sizes=(1, 4)),)

        def __init__(self, name):
            super().__init__(name)
            self.bytes = [0] * 8

        def read_PRIO(self, n):
            return int.from_bytes(bytes(self.bytes[4 * n:4 * n + 4]), "little")

        def write_PRIO(self, value, n):
            self.bytes[4 * n:4 * n + 4] = list(value.to_bytes(4, "little"))

    p = Prio("p")
    p.write(0x1, 1, 0xAA)
    p.write(0x2, 1, 0xBB)
    assert p.bytes[:4] == [0, 0xAA, 0xBB, 0]


def test_bits_outside_the_fields_are_reserved(dut):
    d = dut.device
    dut.write(0x00, 0xFFFF_FFFF)           # CTRL declares EN[0], MODE[2:1], DONE[4] (W1C), ID[15:8] (RO)
    assert d.regs.CTRL == 0x7 and dut.read(0x00) == 0x7
    d.debug_write(0x00, 4, 0xFFFF_FFFF)    # not even a debugger can set a reserved bit
    assert d.regs.CTRL == 0xFF17
    assert dut.read(0x10) == 0x0102        # a register without fields has no reserved bits


def test_write_hooks_receive_the_value_without_reserved_bits():
    class Timer(RegisterDevice):
        registers = (Reg("CONTROL", 0x0, fields=(Field("EN", 0), Field("MODE", 4, 2),
                                                  Field("SPARE", 8, 4, access=Access.RESERVED))),)

        def write_CONTROL(self, value):
            self.seen = value

    t = Timer("t")
    t.write(0, 4, 0xFFFF_FFFF)
    assert t.seen == 0x31 and t.register("CONTROL").mask(Access.RESERVED) == 0xFFFF_FFCE


def test_fields_by_name_give_masks():
    reg = Widget.register("CTRL")
    assert reg.bits.MODE.mask == 0x6 and reg.bits.MODE.get(0x5) == 2 and reg.bits.ID.put(0, 0xAB) == 0xAB00
    with pytest.raises(AttributeError, match="register CTRL has no field SPEED"):
        reg.bits.SPEED
    with pytest.raises(KeyError, match="Widget has no register 'CTRL2'"):
        Widget.register("CTRL2")


def test_overlapping_fields_and_reserved_reset_bits_are_rejected():
    with pytest.raises(PlatformError, match="register R: field B overlaps another field"):
        Reg("R", 0, fields=(Field("A", 0, 4), Field("B", 3)))
    with pytest.raises(PlatformError, match=r"register R: reset value 0x11 sets reserved bits \(0xfffffffe"):
        Reg("R", 0, reset=0x11, fields=(Field("A", 0),))


class Modem(RegisterDevice):
    registers = (Reg("CR", 0x0, reset=0x1, fields=(Field("EN", 0), Field("DTR", 1, tagged=True),
                                                    Field("RTS", 2, tagged=True))),
                 Reg("BANK", 0x4, count=2, fields=(Field("IRDA", 0, tagged=True),)))


def test_tagged_fields_are_stored_and_warn_once_when_changed(caplog):
    m = Modem("modem")
    m.write(0x0, 4, 0x1)                   # the reset value: no warning
    m.write(0x0, 4, 0x0)                   # EN is modelled: no warning
    assert caplog.records == []
    m.write(0x0, 4, 0x3)
    m.write(0x0, 4, 0x1)
    m.write(0x0, 4, 0x3)                   # DTR again: already reported
    m.write(0x8, 4, 0x1)                   # BANK[1]: its own warning
    assert m.read(0x0, 4) == 0x3
    assert [r.getMessage() for r in caplog.records] == [
        "modem: CR.DTR is not modelled (written 0x1): it is stored and does nothing else",
        "modem: BANK[1].IRDA is not modelled (written 0x1): it is stored and does nothing else"]
    assert all(r.levelname == "WARNING" and r.name == __name__ for r in caplog.records)


def test_module_docstring_example_declares_valid_registers():
    import re
    import textwrap

    import cosim._regs

    example = re.search(r"\n(    class Sp804\(RegisterDevice\):.*?\n)\n", cosim._regs.__doc__, re.S).group(1)
    body = textwrap.dedent(example).replace(": ...", ":\n            return 0")
    ns = {"RegisterDevice": RegisterDevice, "Reg": Reg, "Field": Field, "Access": Access}
    exec(body, ns)
    assert [reg.name for reg in ns["Sp804"].registers][:2] == ["TimerXLoad", "TimerXValue"]
