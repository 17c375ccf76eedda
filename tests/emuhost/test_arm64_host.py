"""The Arm64 KVM tests on a real Arm64 KVM: inside the emulated Arm64 host, on the stock and seed-wfx L1 kernels.

One L1 boot per kernel per session runs the whole inner selection; each outer
test checks one area of it and names every inner test that failed, with its
output. An inner test that skips fails here too (a KVM test that skips inside
means the chain is broken), except the skips the kernel makes right. Where
QEMU cannot be had at all, they skip; where it could be installed, its absence
fails them.
"""

import shutil
import sys

import pytest

from cosim.emuhost import EmulatedHost, host_kernel, qemu_unavailable
from cosim.emuhost.host import KERNELS

pytestmark = [pytest.mark.arm64_host, pytest.mark.slow]

# What issue 10 asks to run on a real Arm64 KVM, by area; one selection, one boot per kernel.
AREAS = {
    "bare-metal": "tests/cpu/arm64/test_guests.py",
    "fallback-teardown-uboot": "tests/cpu/arm64/test_kvm_guests.py",
    "linux-shell": "tests/platforms/test_virt_linux_kvm.py",
    "pmu-budget": "tests/kvm/test_budget.py",
    "smp": "tests/cpu/arm64/test_smp.py",                 # issue 11: vCPUs of one VM, KVM's PSCI
}
# The binding checks (gcc against the UAPI headers) run on the outer host already.
SELECTION = [*AREAS.values(), "-k", "(kvm or budget) and not perf_event_attr_matches"]
# Skips a kernel makes right (the reason must contain the text given).
EXPECTED_SKIPS = {
    "stock": {"tests/cpu/arm64/test_guests.py::test_timer_interrupts_with_wfi_let_time_jump[kvm]": "no WFx exit"},
    "seed-wfx": {},
}
TIMEOUT = 2400.0           # real seconds per boot: ~5 min on 2 idle cores, 20+ when 7 jobs share them


@pytest.fixture(scope="session", params=KERNELS)
def inner(request):
    reason = qemu_unavailable()
    if reason:
        if shutil.which("apt-get"):
            pytest.fail(f"{reason}: the emulated Arm64 host is installable here, so this is a failure")
        pytest.skip(reason)
    result = EmulatedHost(host_kernel(request.param)).pytest(SELECTION, timeout=TIMEOUT)
    print(f"emulated Arm64 host, {request.param} kernel: {result.summary()}", file=sys.stderr)
    return request.param, result


@pytest.mark.parametrize("area", AREAS)
def test_inner_tests_pass(inner, area):
    kernel, result = inner
    tests = [t for t in result.tests if t.path == AREAS[area]]
    assert tests, f"no inner test ran from {AREAS[area]}; inner run: {result.summary()}\n{result.console[-2000:]}"
    expected = EXPECTED_SKIPS[kernel]
    bad = [t for t in tests if t.outcome in ("failed", "error")
           or (t.outcome == "skipped" and expected.get(t.name, "\0") not in t.detail)]
    assert not bad, f"{len(bad)} of {len(tests)} inner tests did not pass on the {kernel} kernel:\n" + "\n".join(
        f"=== {t.outcome.upper()} {t.name} ({t.seconds:.1f} s)\n{t.detail[-4000:]}" for t in bad)


def test_the_wfx_exit_is_on_exactly_with_the_patched_kernel(inner):
    kernel, result = inner
    name = "tests/cpu/arm64/test_guests.py::test_timer_interrupts_with_wfi_let_time_jump[kvm]"
    (idle,) = [t for t in result.tests if t.name == name]
    assert idle.outcome == ("skipped" if kernel == "stock" else "passed"), idle.detail
