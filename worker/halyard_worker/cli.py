"""`halyard-worker` entry point: `halyard-worker serve --model PATH ...`."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("halyard-worker: 'serve' is not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
