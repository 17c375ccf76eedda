"""Where cosim keeps what it fetches and builds (no imports beyond the standard library: cosim's
package start-up uses it before anything else is loaded)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(override: Path | None = None) -> Path:
    """The artifact cache: ~/.cache/cosim/images, or COSIM_IMAGE_CACHE, or `override`."""
    if override is not None:
        return Path(override)
    env = os.environ.get("COSIM_IMAGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cosim" / "images"
