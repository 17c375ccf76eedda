import pytest

from cosim.kvm import kvm_unavailable


@pytest.fixture(scope="session")
def kvm_device():
    """/dev/kvm, or a skip saying why it cannot be used on this host."""
    reason = kvm_unavailable()
    if reason:
        pytest.skip(f"needs KVM: {reason}")
    return "/dev/kvm"
