"""Where cosim keeps what it fetches and builds (no imports beyond the standard library: cosim's
package start-up uses it before anything else is loaded)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path


def cache_dir(override: Path | None = None) -> Path:
    """The artifact cache: ~/.cache/cosim/images, or COSIM_IMAGE_CACHE, or `override`."""
    if override is not None:
        return Path(override)
    env = os.environ.get("COSIM_IMAGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cosim" / "images"


@contextlib.contextmanager
def file_lock(path: Path, wait: float, timeout: Callable[[], Exception],
              on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (the kernel releases it if the holder dies, so it is never
    stale), waiting at most `wait` seconds for another process to let go, then raising `timeout()`.
    `on_wait` is called once if the lock is busy (to say why nothing happens)."""
    import fcntl
    import time

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                    on_wait = None
                if time.monotonic() > deadline:
                    raise timeout() from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
