"""A host TAP interface as a NIC's network: frames to and from the host's kernel.

`TapBackend("tap0")` opens /dev/net/tun and attaches to (or creates) the TAP
interface `tap0` with IFF_TAP | IFF_NO_PI (Documentation/networking/tuntap.rst):
each read() is one Ethernet frame, each write() sends one. The descriptor is
non-blocking and read every `poll` of simulated time from inside the
simulation; when nothing else is scheduled (the guests wait for the network),
a poll waits on the descriptor in real time, a bounded while, instead of
spinning, so an idle guest with a quiet TAP leaves the host CPU idle.

Simulated vs wall time: without `--realtime` the guest's clock runs as fast as
the simulation can go (often far ahead of wall time when the guest idles), so a
host peer sees replies quickly but the guest's own timeouts (ARP, TCP) pass in
the blink of an eye; with `--realtime` (RealtimeSimulation) simulated time
tracks wall time and both sides agree on how long things take.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import shutil
import struct

from .._errors import PlatformError
from .._kernel import Simulation
from .._time import MS
from ._backend import ETH_HEADER, FrameReceiver

__all__ = ["TapBackend", "tap_unavailable"]

TUNSETIFF = 0x4004_54CA           # _IOW('T', 202, int)
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16


def tap_unavailable(tools: tuple[str, ...] = ()) -> str | None:
    """Why a TAP cannot be made here (None when it can): root (a namespace-capable CAP_NET_ADMIN),
    /dev/net/tun, and the host `tools` a caller needs besides (e.g. ip and ping for a test)."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN for a TAP interface and network namespaces)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun on this host"
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"needs {' and '.join(missing)} (scripts/bootstrap.sh installs iproute2 and iputils-ping)"
    return None


class TapBackend:
    """A NIC's frames through the host TAP interface `name` (made if absent; needs CAP_NET_ADMIN,
    or a persistent TAP the user owns: `ip tuntap add NAME mode tap user $USER`)."""

    IDLE_WAIT = 0.05      # s of real time a poll may wait when the simulation has nothing else to do
    BURST = 64            # frames read per poll at most: a flood from the host cannot stall the guest

    def __init__(self, name: str, poll: int = MS) -> None:
        if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or name.strip() != name:
            raise PlatformError(f"tap:{name}: an interface name is 1 to {IFNAMSIZ - 1} characters, no '/' or spaces")
        if poll <= 0:
            raise PlatformError(f"tap:{name}: the poll period must be positive, not {poll} ps")
        self.name = name
        self.poll = poll
        self.sent = self.received = self.dropped = 0
        self._receiver: FrameReceiver | None = None
        self._sim: Simulation | None = None
        try:
            self._fd: int | None = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise PlatformError(f"tap:{name}: cannot open /dev/net/tun: {error.strerror}") from None
        try:
            fcntl.ioctl(self._fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        except OSError as error:
            os.close(self._fd)
            self._fd = None
            hint = " (needs CAP_NET_ADMIN, or a TAP you own: ip tuntap add NAME mode tap user $USER)" \
                if error.errno == errno.EPERM else ""
            raise PlatformError(f"tap:{name}: cannot attach the TAP interface: {error.strerror}{hint}") from None

    def attach(self, sim: Simulation) -> None:
        if self._sim is not None:
            return
        self._sim = sim
        sim.add_finalizer(self.close)
        sim.add_summary(lambda: {f"tap:{self.name} frames": f"{self.sent} sent, {self.received} received, "
                                                           f"{self.dropped} dropped"})
        sim.schedule(self.poll, self._tick)

    def set_receiver(self, receiver: FrameReceiver) -> None:
        self._receiver = receiver

    def send(self, frame: bytes) -> None:
        if self._fd is None:
            self.dropped += 1
            return
        try:
            os.write(self._fd, frame)
            self.sent += 1
        except OSError as error:
            # EAGAIN: the host's queue is full; EIO: the interface is down. A wire drops the frame too.
            if error.errno not in (errno.EAGAIN, errno.EIO, errno.EINVAL):
                raise PlatformError(f"tap:{self.name}: write failed: {error.strerror}") from None
            self.dropped += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _tick(self) -> None:
        sim = self._sim
        if self._fd is None or sim is None:
            return
        if sim.quiet:
            select.select([self._fd], [], [], self.IDLE_WAIT)    # nothing else to do: wait for the host
        for _ in range(self.BURST):
            try:
                frame = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.EIO:       # interface down: nothing to read
                    break
                raise PlatformError(f"tap:{self.name}: read failed: {error.strerror}") from None
            if len(frame) < ETH_HEADER or self._receiver is None:
                self.dropped += 1
                continue
            self.received += 1
            self._receiver(frame)
        sim.schedule(self.poll, self._tick)
