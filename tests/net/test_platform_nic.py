"""The platform side: virt's nic and mac properties, and virt-cluster's, checked as the platform is built."""

import pytest

from cosim import PlatformError, Simulation
from cosim.net import switch_named


def virt(sim=None, **props):
    from cosim.platforms.virt import Virt

    return Virt(sim, firmware="none", console="none", **props)


def test_nic_switch_puts_a_virtio_net_on_a_transport_and_machines_share_the_switch():
    sim = Simulation()
    a = virt(sim, nic="switch:lan")
    b = virt(sim, nic="switch:lan", mac="52:54:00:12:34:57")
    assert "net0 (virtio-mmio)" in a.describe() and "net0.irq   -> gic.spi16" in a.describe()
    assert a.net.mac.hex(":") == "52:54:00:12:34:56" and b.net.mac.hex(":") == "52:54:00:12:34:57"
    assert len(switch_named(sim, "lan").ports) == 2
    assert b"virtio,mmio" in a.dtb


def test_no_nic_by_default():
    assert "net0" not in virt().describe()


@pytest.mark.parametrize("props, message", [
    ({"nic": "wifi"}, "nic expects none, switch:NAME"),
    ({"nic": "switch:"}, "nic expects"),
    ({"nic": "switch:lan", "mac": "52:54:00:12:34"}, "not a MAC address"),
    ({"nic": "switch:lan", "mac": "01:00:5e:00:00:01"}, "multicast"),
    ({"nic": "tap:a/b"}, "interface name"),
])
def test_bad_nic_settings_are_refused_with_what_and_where(props, message):
    with pytest.raises(PlatformError, match=message):
        virt(**props)


@pytest.mark.parametrize("props, message", [
    ({"machines": "0"}, "1 to 200"),
    ({"primary": "n7"}, "primary 'n7' is not one of the machines n0, n1"),
    ({"subnet": "10.0.0.0/30", "machines": "3"}, "room for 2 machines"),
    ({"bandwidth": "fast"}, "bandwidth"),
    ({"console": "stdio"}, "use lines, buffer or none"),
])
def test_bad_cluster_settings_are_refused(props, message):
    from cosim.platforms.cluster import VirtCluster

    with pytest.raises(PlatformError, match=message):
        VirtCluster(**props)
