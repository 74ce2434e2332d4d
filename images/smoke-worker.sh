#!/usr/bin/env bash
# Smoke checks inside a built worker image (buildah run, chroot isolation):
# `halyard-worker` starts, torch and the server import, the CUDA wheels and
# CuPy are installed, the user is non-root and can write only /tmp and the
# model cache.
#   images/smoke-worker.sh [IMAGE]    default: halyard/worker:<version>
set -euo pipefail
cd "$(dirname "$0")/.."
. images/smoke-lib.sh
smoke_start smoke-worker.sh halyard/worker "$@"

inside halyard-worker --help >/dev/null || fail "halyard-worker --help did not start"
inside halyard-worker serve --help >/dev/null || fail "halyard-worker serve --help did not start"
echo "smoke: halyard-worker --help and serve --help start"

inside python3 -c '
import importlib.metadata as md, torch, cupy, transformers, fastapi
import halyard_worker.server.app, halyard_worker.engine.async_engine
print("smoke: torch", torch.__version__, "(CUDA", torch.version.cuda, end="), ")
print("cupy", cupy.__version__, "transformers", transformers.__version__)
' || fail "torch, cupy or the worker server does not import"
inside python3 -c 'import importlib.util, sys
try:
    sys.exit(importlib.util.find_spec("halyard.cli") is not None)
except ModuleNotFoundError:
    sys.exit(0)' \
  || fail "the worker image has the user tools (package halyard)"
echo "smoke: no user tools"

inside sh -c 'test ! -w /opt/halyard && test ! -w /etc && test -w /tmp && test -w /var/cache/halyard' \
  || fail "uid $uid can write outside /tmp and /var/cache/halyard, or not there"
echo "smoke: only /tmp and the model cache are writable"

size=$(buildah images --format "{{.Size}}" "$image" 2>/dev/null | head -1 || true)
echo "smoke: $image passed${size:+ (size $size)}"
