import argparse
import logging
import sys

from .commands import configure
from .errors import ImageError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cosim.images", description="Fetch and list guest images.")
    configure(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="cosim: %(message)s")
    try:
        return args.func(args)
    except ImageError as error:
        print(f"cosim: error: {error}", file=sys.stderr)
        return 1


sys.exit(main(sys.argv[1:]))
