"""Several machines in one simulation: who ends the run, with which status, and whose summary row is whose."""

import pytest

from cosim import Platform, PlatformError, Property, us
from cosim.cpu import Cpu
from cosim.net import Cluster
from cosim.testing import ScriptedBackend as S


class Scripted(Platform):
    """A machine whose CPU plays `script` (one instruction per ns)."""

    script = Property((), "the CPU's script")

    def build(self) -> None:
        self.guest = S(list(self.script), period=1000)
        self.add("cpu0", Cpu, backend=self.guest, quantum=us(10))


def test_the_run_ends_when_every_machine_has_stopped():
    cluster = Cluster()
    cluster.add("m0", Scripted, script=(S.spin(), S.stop(0)))
    cluster.add("m1", Scripted, script=(S.spin(), S.spin(), S.spin(), S.stop(0, "psci off")))
    summary = cluster.run(until=us(1000))
    assert summary.status == 0 and "all 2 machines stopped (last m1: psci off)" in summary.stop.reason
    assert summary.stop.time == us(30)
    assert summary.extra["m0 stopped by"].startswith("guest exit (status 0) at 10 us")
    assert "m0 cpu0 instructions" in summary.extra and "m1 cpu0 instructions" in summary.extra


def test_a_failing_machine_fails_the_run_at_once():
    cluster = Cluster()
    cluster.add("m0", Scripted, script=(S.spin(),) * 50)
    cluster.add("m1", Scripted, script=(S.spin(), S.stop(7, "panic")))
    summary = cluster.run(until=us(1000))
    assert summary.status == 7 and summary.stop.reason == "m1: panic" and summary.stop.time == us(10)


def test_the_primary_machine_ends_the_run():
    cluster = Cluster(primary="m1")
    cluster.add("m0", Scripted, script=(S.spin(),) * 50)
    cluster.add("m1", Scripted, script=(S.stop(0, "done", instructions=5),))
    summary = cluster.run(until=us(1000))
    assert summary.status == 0 and summary.stop.reason == "m1 (the primary machine): done"


def test_idle_machines_with_nothing_to_wake_them_deadlock():
    cluster = Cluster()
    cluster.add("m0", Scripted, script=(S.idle(),))
    cluster.add("m1", Scripted, script=(S.stop(0),))
    summary = cluster.run(until=us(1000))
    assert summary.status == 3 and summary.stop.reason.startswith("m0: cpu0: guest idle") and "deadlock" in summary.stop.reason


def test_names_and_primary_are_checked():
    cluster = Cluster(primary="nope")
    cluster.add("m0", Scripted, script=(S.stop(0),))
    with pytest.raises(PlatformError, match="two machines"):
        cluster.add("m0", Scripted)
    with pytest.raises(PlatformError, match="primary machine 'nope'"):
        cluster.run()


def test_a_switch_made_by_the_first_machine_keeps_its_own_summary_rows():
    from cosim.net import switch_named

    class Wired(Scripted):
        def build(self) -> None:
            super().build()
            switch_named(self.sim, "lan").port()

    cluster = Cluster()
    cluster.add("m0", Wired, script=(S.stop(0),))
    cluster.add("m1", Wired, script=(S.stop(0),))
    summary = cluster.run(until=us(100))
    assert "lan frames" in summary.extra and "m0 lan frames" not in summary.extra
