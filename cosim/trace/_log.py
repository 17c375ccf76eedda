"""Per-model log levels (`--log gic=debug,uart0=info`) and register-access logging.

Each device logs as `cosim.<device>`; at debug level its register accesses are
logged too (name, offset, value, simulated time), through the same forwarding
target the tracer uses, put on the bus only for the devices asked for.
"""

from __future__ import annotations

import logging
from typing import Any

from .._errors import CosimError
from .._time import format_time
from ._tracer import observe

__all__ = ["configure_logs", "log_accesses", "parse_levels"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def parse_levels(text: str) -> dict[str, int]:
    """'gic=debug,uart0=info' -> {'gic': DEBUG, 'uart0': INFO}."""
    levels = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, level = item.partition("=")
        if not sep or not name or level.lower() not in _LEVELS:
            raise CosimError(f"--log expects DEVICE=LEVEL[,...] with LEVEL one of {', '.join(_LEVELS)}, "
                             f"not {item!r}")
        levels[name] = _LEVELS[level.lower()]
    return levels


def log_accesses(platform: Any, device: str, logger: logging.Logger | None = None) -> None:
    """Log every register access of `device` at debug level on `logger` (default `cosim.<device>`)."""
    logger = logger or logging.getLogger(f"cosim.{device}")
    sim = platform.sim

    def watch(target: str, register: str, offset: int, size: int, value: int, write: bool) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s %s (offset %#x) = %#0*x at %s", target, "write" if write else "read", register,
                         offset, 2 + 2 * size, value, format_time(sim.now))

    observed = observe(platform, device)
    if not observed:
        raise CosimError(f"--log {device}: no device of that name on a bus of {platform.name}")
    for target in observed:
        target.watchers.append(watch)


def configure_logs(platform: Any, text: str) -> None:
    """Apply `--log`: a level per device logger; debug also logs that device's register accesses."""
    for device, level in parse_levels(text).items():
        if device not in platform.devices:
            raise CosimError(f"--log: no device named {device!r} (devices: {', '.join(platform.devices)})")
        logging.getLogger(f"cosim.{device}").setLevel(level)
        # The model's own messages (models log under their module's name).
        logging.getLogger(type(platform.devices[device]).__module__).setLevel(level)
        if level <= logging.DEBUG:
            log_accesses(platform, device)
