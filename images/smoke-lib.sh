# Shared by the smoke scripts (sourced): `smoke_start NAME REPO [IMAGE]` picks the
# image (default REPO:<version from pyproject.toml>), opens a working container on
# it and defines `inside CMD...` (buildah run, chroot isolation) and `fail MSG`;
# then it checks the image runs as a non-root user.
smoke_start() {
  local name=$1 repo=$2 py=${PYTHON:-python3} version user uid
  version=$("$py" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
  image=${3:-$repo:$version}
  command -v buildah >/dev/null || { echo "$name: needs buildah (apt-get install buildah)" >&2; exit 1; }
  ctr=$(buildah from -q "$image")
  trap 'buildah rm "$ctr" >/dev/null' EXIT
  user=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$image")
  uid=$(inside id -u)
  [ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "$uid" != 0 ] || fail "image user is '$user' (uid $uid): must be non-root"
  echo "smoke: runs as uid $uid (USER $user)"
}
inside() { buildah run --isolation "${BUILDAH_ISOLATION:-chroot}" "$ctr" -- "$@"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
