import pytest

from cosim import Input, PlatformError, Signal, us


def test_listeners_see_changes_only():
    sig = Signal("irq")
    a, b = [], []
    sig.connect(a.append)
    sig.connect(b.append)
    sig.set(True)
    sig.set(True)
    sig.lower()
    assert a == b == [True, False]


def test_pulse_gives_an_edge_to_edge_receivers():
    sig = Signal("irq")
    edges = []
    sig.connect(lambda level: edges.append(level))
    sig.pulse()
    assert edges == [True, False] and not sig.level


def test_an_input_can_have_only_one_driver():
    pin = Input("gic.spi1", lambda level: None)
    Signal("uart0.irq").connect(pin)
    with pytest.raises(PlatformError, match="uart0.irq.*uart1.irq|wired twice"):
        Signal("uart1.irq").connect(pin)


def test_late_connection_sees_current_level():
    sig = Signal("line")
    sig.raise_()
    got = []
    sig.connect(got.append)
    assert got == [True]


def test_processes_can_wait_for_a_level_or_a_change(sim):
    sig = Signal("irq")
    woke = []

    def waiter():
        level = yield sig.wait_level(sim.env, True)
        woke.append((sim.now, level))
        level = yield sig.wait_change(sim.env)
        woke.append((sim.now, level))

    sim.process(waiter())
    sim.schedule(us(3), sig.raise_)
    sim.schedule(us(5), sig.lower)
    sim.run()
    assert woke == [(us(3), True), (us(5), False)]


def test_wait_level_already_true_fires_immediately(sim):
    sig = Signal("irq", level=True)
    woke = []

    def waiter():
        yield sig.wait_level(sim.env, True)
        woke.append(sim.now)

    sim.process(waiter())
    sim.run()
    assert woke == [0]
