#!/usr/bin/env bash
# Smoke checks inside a built operator image (buildah run, chroot isolation):
# the console scripts start, torch is absent, the user is non-root and the
# operator imports with nothing writable but /tmp.
#   images/smoke.sh [IMAGE]    default: halyard/operator:<version>
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
version=$("$py" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
image=${1:-halyard/operator:$version}
command -v buildah >/dev/null || { echo "smoke.sh: needs buildah (apt-get install buildah)" >&2; exit 1; }

ctr=$(buildah from -q "$image")
trap 'buildah rm "$ctr" >/dev/null' EXIT
inside() { buildah run --isolation "${BUILDAH_ISOLATION:-chroot}" "$ctr" -- "$@"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

user=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$image")
uid=$(inside id -u)
[ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "$uid" != 0 ] || fail "image user is '$user' (uid $uid): must be non-root"
echo "smoke: runs as uid $uid (USER $user)"

scripts=(halyard-operator)
inside sh -c 'command -v halyard-router' >/dev/null 2>&1 && scripts+=(halyard-router)
for script in "${scripts[@]}"; do
  inside "$script" --help >/dev/null || fail "$script --help did not start"
  echo "smoke: $script --help starts"
done

inside python3 -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ("torch", "cupy", "transformers", "halyard_worker")))' \
  || fail "torch, cupy, transformers or the worker package is installed in the operator image"
echo "smoke: no torch, cupy, transformers or halyard_worker"

inside sh -c 'test ! -w /opt/halyard && test ! -w /etc && test -w /tmp' || fail "uid $uid can write outside /tmp"
inside python3 -c 'import halyard_operator.handlers, halyard_operator.main' || fail "the operator does not import"
echo "smoke: the operator imports; only /tmp is writable"

size=$(buildah images --format "{{.Size}}" "$image" 2>/dev/null | head -1 || true)
echo "smoke: $image passed${size:+ (size $size)}"
