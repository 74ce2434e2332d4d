"""The `halyard-operator` console script.

The operator talks to the API server through its own client
(`kube.client`). kopf imports the official `kubernetes` client library at
import time whenever it is installed, only to recognise that library's model
classes, which costs the long-running process ~18 MB of memory. The entry
point hides the library while kopf is imported; afterwards it can be
imported as usual (reading a kubeconfig outside a cluster uses it, a pod
never does).
"""
from __future__ import annotations

import sys

UNUSED_CLIENTS = ("kubernetes", "kubernetes_asyncio")


def import_kopf_without_client_libraries() -> None:
    hidden = [name for name in UNUSED_CLIENTS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # `import kubernetes` raises ImportError, as if not installed
    try:
        import kopf  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


def main(argv: list[str] | None = None) -> int:
    import_kopf_without_client_libraries()
    from halyard_operator.main import main as run
    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
