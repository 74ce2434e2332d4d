"""The `halyard-operator` console script.

The operator talks to the API server through its own client
(`kube.client`); kopf imports the official `kubernetes` client library
whenever it is installed, only to recognise its model classes, which costs
the long-running process ~18 MB of memory. The entry point hides that
library from this process before kopf is imported.
"""
from __future__ import annotations

import sys

UNUSED_CLIENTS = ("kubernetes", "kubernetes_asyncio")


def main(argv: list[str] | None = None) -> int:
    for name in UNUSED_CLIENTS:
        sys.modules.setdefault(name, None)  # `import kubernetes` now raises ImportError, as if not installed
    from halyard_operator.main import main as run
    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
