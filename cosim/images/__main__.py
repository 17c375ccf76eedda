import sys

from .fetch import PACKAGES, ImageError, fetch_file


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "fetch" or argv[1] not in (*PACKAGES, "all"):
        print(f"usage: python -m cosim.images fetch {{{'|'.join(PACKAGES)}|all}}", file=sys.stderr)
        return 2
    try:
        for key in PACKAGES if argv[1] == "all" else [argv[1]]:
            for member in PACKAGES[key].files:
                print(fetch_file(key, member))
    except ImageError as error:
        print(f"cosim: error: {error}", file=sys.stderr)
        return 1
    return 0


sys.exit(main(sys.argv[1:]))
