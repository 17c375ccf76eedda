"""Built-in platforms; importing this package registers them for `cosim run`/`cosim list`."""

from . import cluster, demo, pc, virt  # noqa: F401
