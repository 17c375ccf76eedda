"""Guest debug on the KVM Arm64 backend (KVM_SET_GUEST_DEBUG, KVM_EXIT_DEBUG), on the fake KVM of
test_kvm_backend.py: what the backend programs and how it reads the debug exits."""

from __future__ import annotations

import pytest

from cosim import SEC
from cosim.cpu import CpuError
from cosim.cpu._debug import DebugStop, StopKind, WatchKind
from cosim.cpu.arm64.kvm_exits import Debug, debug_stop
from cosim.gdb import TargetError, target_for
from cosim.gdb._commands import BreakpointKind
from cosim.kvm._arm64 import (KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW, Arm64Cap, Arm64Ioctl,
                              ffi)
from cosim.kvm._uapi import KVM_RUN_EXIT_UNION_OFFSET, Exit

from .test_kvm_backend import STOCK, executing, fake  # noqa: F401  (fake: the fixture)

DEBUG = STOCK | {Arm64Cap.GUEST_DEBUG_HW_BPS: 6, Arm64Cap.GUEST_DEBUG_HW_WPS: 4}


def programmed(kernel):
    """Every KVM_SET_GUEST_DEBUG the backend made: (control, [(bvr, bcr)], [(wvr, wcr)])."""
    seen = []
    vcpu = kernel.vcpu
    original = vcpu.ioctl

    def ioctl(request, arg=0, what=""):
        if request == Arm64Ioctl.SET_GUEST_DEBUG:
            a = arg.arch
            seen.append((arg.control, [(a.dbg_bvr[i], a.dbg_bcr[i]) for i in range(16) if a.dbg_bcr[i]],
                         [(a.dbg_wvr[i], a.dbg_wcr[i]) for i in range(16) if a.dbg_wcr[i]]))
        return original(request, arg, what)

    vcpu.ioctl = ioctl
    return seen


def debug_exit(esr, far=0):
    def step(kernel, run):
        run.exit_reason = Exit.DEBUG
        # struct kvm_debug_exit_arch: hsr and hsr_high (one little-endian doubleword), far
        cell = ffi.cast("unsigned long long *", ffi.cast("char *", run) + KVM_RUN_EXIT_UNION_OFFSET)
        cell[0], cell[1] = esr, far
        return True
    return step


@pytest.mark.parametrize("esr, stop", [
    (0x31 << 26, DebugStop(StopKind.BREAKPOINT)),
    (0x33 << 26 | 1 << 25, DebugStop(StopKind.STEP)),
    (0x35 << 26, DebugStop(StopKind.WATCH, 0x4020_0004)),
    (0x3C << 26, DebugStop(StopKind.BREAKPOINT)),
])
def test_debug_exits_are_read_by_exception_class(esr, stop):
    assert debug_stop(Debug(esr, 0x4020_0004)) == stop
    with pytest.raises(CpuError, match="ESR 0x54000000: not a breakpoint"):
        debug_stop(Debug(0x15 << 26, 0))


def test_breakpoints_watchpoints_and_step_are_programmed_in_the_debug_registers(fake):
    board, kernel, _ = fake([], offered=DEBUG)
    seen = programmed(kernel)
    target = target_for(board.cpu0)
    assert target.can_step and all(target.supports(kind) for kind in BreakpointKind)
    target.breakpoint(True, BreakpointKind.HARDWARE, 0x4008_0000, 4)
    target.breakpoint(True, BreakpointKind.WRITE, 0x4020_0004, 4)
    target.single_step(True)
    control, breakpoints, watchpoints = seen[-1]
    assert control == KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW | KVM_GUESTDBG_SINGLESTEP
    assert breakpoints == [(0x4008_0000, 0x1E7)]             # E, PMC=EL1+EL0, BAS=0b1111
    assert watchpoints == [(0x4020_0000, 1 | 3 << 1 | 2 << 3 | 0xF0 << 5)]   # stores to bytes 4-7
    target.breakpoint(False, BreakpointKind.HARDWARE, 0x4008_0000, 4)
    target.breakpoint(False, BreakpointKind.WRITE, 0x4020_0004, 4)
    target.single_step(False)
    assert seen[-1] == (0, [], [])
    with pytest.raises(TargetError, match="one aligned doubleword"):
        target.breakpoint(True, BreakpointKind.READ, 0x4020_0006, 4)
    for n in range(6):
        target.breakpoint(True, BreakpointKind.SOFTWARE, 0x4008_0000 + 4 * n, 4)
    with pytest.raises(TargetError, match="all 6 hardware breakpoints are in use"):
        target.breakpoint(True, BreakpointKind.SOFTWARE, 0x4009_0000, 4)


def test_a_host_without_guest_debug_refuses_breakpoints_by_name(fake):
    board, _, _ = fake([])
    target = target_for(board.cpu0)
    with pytest.raises(TargetError, match="all 0 hardware breakpoints are in use"):
        target.breakpoint(True, BreakpointKind.HARDWARE, 0x4008_0000, 4)


def test_a_watchpoint_exit_reaches_the_debugger_with_its_kind(fake):
    board, kernel, _ = fake([executing(10, debug_exit(0x35 << 26, 0x4020_0006))], offered=DEBUG)
    target_for(board.cpu0).breakpoint(True, BreakpointKind.ACCESS, 0x4020_0004, 4)
    stops = []

    class Debugger:
        def before_run(self, cpu):
            return True

        def stopped(self, cpu, result):
            stops.append(result.reason.stop)
            board.sim.request_stop(0, "seen")

    board.cpu0.debugger = Debugger()
    board.run(until=SEC)
    assert stops == [DebugStop(StopKind.WATCH, 0x4020_0006, WatchKind.ACCESS)]
