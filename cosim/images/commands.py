"""`cosim images fetch|list` (also `python -m cosim.images ...`): fetch images, show the cache."""

from __future__ import annotations

import argparse

from .cache import ImageCache
from .fetch import IMAGES, cache_dir, fetch_image, known_good

__all__ = ["configure"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the `fetch` and `list` subcommands to `parser` (each sets `func`)."""
    sub = parser.add_subparsers(dest="images_command", required=True)
    fetch = sub.add_parser("fetch", help="fetch an image into the cache (once; --refresh asks the archive again)")
    fetch.add_argument("key", choices=[*IMAGES, "all"], help="image to fetch")
    fetch.add_argument("--refresh", action="store_true", help="take the archive's current version")
    fetch.set_defaults(func=_cmd_fetch)
    listing = sub.add_parser("list", help="show the cached images, their versions and pin status")
    listing.add_argument("--refresh", action="store_true", help="first bring every cached image up to date")
    listing.set_defaults(func=_cmd_list)


def _cmd_fetch(args: argparse.Namespace) -> int:
    for key in IMAGES if args.key == "all" else [args.key]:
        print(fetch_image(key, refresh=args.refresh).path)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    store = ImageCache(cache_dir())
    if args.refresh:
        for key in IMAGES:
            if store.selected(key) is not None:
                fetch_image(key, refresh=True)
    print(f"cache: {store.root}")
    entries = store.entries()
    rows = [("image", "package", "version", "known-good pin", "")]
    for key, image in IMAGES.items():
        selected = store.selected(key)
        if selected is None:
            rows.append((key, image.package, "not cached", "", ""))
            continue
        others = [e for e in entries if e.key == key and e.name != selected.name]
        pin = image.pin
        status = ("yes" if known_good(selected) else
                  f"no (pin: {pin.version}); archive-verified" if pin else "no pin; archive-verified")
        extra = f"also cached: {', '.join(e.version for e in others)}" if others else ""
        rows.append((key, selected.package, selected.version, status, extra))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[4]]).rstrip())
    return 0
