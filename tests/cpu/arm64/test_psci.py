from cosim.cpu.arm64 import psci


def test_psci_0_2_functions():
    assert psci.call(0x8400_0000).x0 == 2
    assert psci.call(0x8400_0008).stop == "off" and psci.call(0x8400_0009).stop == "reset"
    assert psci.call(0xC400_0003, 1).x0 == psci.NOT_SUPPORTED          # CPU_ON until SMP
    assert psci.call(0x8400_000A, 0x8400_0008).x0 == 0
    assert psci.call(0x8400_000A, 0xC400_0003).x0 == psci.NOT_SUPPORTED
    assert psci.call(0x1234).x0 == psci.NOT_SUPPORTED
