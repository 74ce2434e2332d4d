#!/usr/bin/env bash
# Build a Halyard image: images/build.sh operator|worker
#   BASE_IMAGE     image to build FROM (default: the local debootstrapped base,
#                  made by images/base.sh when missing)
#   IMAGE_PYTHON   CPython version of the base image (default 3.11, bookworm's)
#   IMAGE_BUILDER  buildah, podman or docker (default: the first installed)
# The wheel set comes from this machine's pip configuration (its index and
# find-links), pinned by images/<name>/requirements.txt, so the build itself
# needs no index: pip inside the image installs with --no-index.
# Tag: halyard/<name>:<version from pyproject.toml>.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: images/build.sh operator|worker}
[ -f "images/$name/Containerfile" ] || { echo "build.sh: no image '$name' (operator, worker)" >&2; exit 2; }
py=${PYTHON:-python3}
image_python=${IMAGE_PYTHON:-3.11}
builder=$(images/builder.sh)
version=$("$py" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
base=${BASE_IMAGE:-localhost/halyard-base:bookworm}
[ -n "${BASE_IMAGE:-}" ] || images/base.sh "$base"

context=build/images/$name
rm -rf "$context" && mkdir -p "$context/wheels"
cp "images/$name/Containerfile" "images/$name/requirements.txt" "$context/"
"$py" -m pip wheel -q --no-deps --wheel-dir "$context/wheels" .
# Every manylinux tag glibc 2.36 (bookworm) runs, newest first.
platforms=()
for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
"$py" -m pip download -q --no-deps --only-binary=:all: --dest "$context/wheels" \
  --python-version "$image_python" --implementation cp "${platforms[@]}" \
  -r "images/$name/requirements.txt"

tag=halyard/$name:$version
echo "building $tag with $builder from $base"
case $builder in
  buildah) bud=(buildah bud --isolation "${BUILDAH_ISOLATION:-chroot}" --layers) ;;
  *)       bud=("$builder" build) ;;
esac
"${bud[@]}" --build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version" \
  -f "$context/Containerfile" -t "$tag" "$context"
rm -rf "$context"  # the wheel set (3 GB for the worker) is in the image now
echo "built $tag"
