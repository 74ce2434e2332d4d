#!/usr/bin/env bash
# Smoke checks inside a built operator image (buildah run, chroot isolation):
# the console scripts start, torch is absent, the user is non-root and the
# operator imports with nothing writable but /tmp.
#   images/smoke.sh [IMAGE]    default: halyard/operator:<version>
set -euo pipefail
cd "$(dirname "$0")/.."
. images/smoke-lib.sh
smoke_start smoke.sh halyard/operator "$@"

scripts=(halyard-operator)
inside sh -c 'command -v halyard-router' >/dev/null 2>&1 && scripts+=(halyard-router)
for script in "${scripts[@]}"; do
  inside "$script" --help >/dev/null || fail "$script --help did not start"
  echo "smoke: $script --help starts"
done

absent='
import importlib.util, sys
def found(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
present = [m for m in sys.argv[1:] if found(m)]
print(" ".join(present)) if present else None
sys.exit(1 if present else 0)'
inside python3 -c "$absent" torch cupy transformers halyard.cli halyard_worker.engine halyard_worker.server \
  || fail "the operator image has the worker stack or the user tools (above)"
echo "smoke: no torch, cupy, transformers, engine, worker server or user tools"

inside sh -c 'test ! -w /opt/halyard && test ! -w /etc && test -w /tmp' || fail "uid $uid can write outside /tmp"
inside python3 -c 'import halyard_operator.handlers, halyard_operator.main' || fail "the operator does not import"
echo "smoke: the operator imports; only /tmp is writable"

size=$(buildah images --format "{{.Size}}" "$image" 2>/dev/null | head -1 || true)
echo "smoke: $image passed${size:+ (size $size)}"
