"""Observing a platform: VCD and Perfetto traces, and per-model logs of register accesses.

This package owns everything that watches a simulation without changing it:
`attach(platform, "run")` writes run.vcd (every interrupt line and timer
output, as platform.device.port) and run.json (Chrome/Perfetto trace events:
one track per CPU with its quanta, exits and idle jumps, one per device with
its bus transactions and interrupt edges); `log_accesses` logs a device's
register accesses. Observers are attached at the choke points (a listener on
each traced signal, a forwarding target in front of each traced device on its
bus, the CPU loop's `observer`) and are simply absent when nothing is traced.
"""

from ._log import configure_logs, log_accesses
from ._tracer import Tracer, attach

__all__ = ["Tracer", "attach", "configure_logs", "log_accesses"]
