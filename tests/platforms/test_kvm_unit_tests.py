"""kvm-unit-tests on `virt` (software CPU): the yardstick no one here wrote.

Every case QEMU 7.2 TCG passes on this machine (../shared/kvm-unit-tests.md) is listed; each
must print `EXIT: STATUS=1` on cosim. Cases that need what `virt` does not model yet are
strict xfails with the reason, so the day one starts passing the list must be updated.
"""

from __future__ import annotations

import pytest

from .kvm_unit_tests import (DEFAULTS, KNOWN_GAPS, PASSED, QEMU_PASSES, SNAPSHOT, WALL_TIMEOUT, Case, KutError,
                             build, cases, run_case)

pytestmark = pytest.mark.skipif(not SNAPSHOT.is_dir(), reason=f"no kvm-unit-tests snapshot at {SNAPSHOT} "
                                "(it ships beside the repository as ../shared/kvm-unit-tests)")

def _all_cases() -> dict[str, Case]:
    found = cases()
    found.update(DEFAULTS)
    return found


@pytest.fixture(scope="module")
def suite():
    try:
        return build()
    except KutError as error:        # the compiler is installed by scripts/bootstrap.sh: a failure, not a skip
        pytest.fail(str(error))


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[name]))
                                  if name in KNOWN_GAPS else name for name in QEMU_PASSES])
def test_case_qemu_passes_passes_on_virt(suite, name):
    case = _all_cases()[name]
    outcome = run_case(suite, case, wall_timeout=WALL_TIMEOUT.get(name, 300))
    assert outcome.status == PASSED, f"{name}: EXIT: STATUS={outcome.status}\n{outcome.output[-4000:]}"
    assert outcome.exit_code == 0


def test_the_config_is_read_as_the_suite_means_it():
    found = cases()
    assert found["selftest-setup"] == Case("selftest-setup", "selftest.flat", 2, "setup smp=2 mem=256", 256)
    assert found["gicv2-ipi"].smp == 8 and found["gicv2-mmio-3p"].smp == 3 and found["psci"].smp == 8
    assert found["pmu-cycle-counter"].args == "cycle-counter 0"
    assert "pci-test" in found and all(case.file.endswith(".flat") for case in found.values())
    assert set(QEMU_PASSES) <= set(found) | set(DEFAULTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["debug-bp-migration", "debug-wp-migration", "debug-sstep-migration"])
def test_debug_migration_cases_pass_with_a_key_press_for_the_migration(suite, name):
    """These need QEMU's migration (`disabled_if` TARGET != qemu in unittests.cfg); cosim has none. Each
    pauses at "Now migrate the VM, then press a key": a key resumes it with no migration, so what this
    checks is that the debug state (comparators, MDSCR_EL1, the step state) holds across the pause."""
    outcome = run_case(suite, _all_cases()[name], keys=b"\n")
    assert "Now migrate the VM" in outcome.output
    assert outcome.status == PASSED, f"{name}: EXIT: STATUS={outcome.status}\n{outcome.output[-4000:]}"
    assert outcome.exit_code == 0
