#!/usr/bin/env bash
# Make the Debian base image the Containerfiles build FROM when no registry
# can be pulled from: `debootstrap --variant=minbase` a root filesystem and
# import it. The root filesystem tarball is cached (HALYARD_IMAGE_CACHE), so a
# second run, or a fresh container storage, only re-imports it.
#   images/base.sh [IMAGE]        default IMAGE: localhost/halyard-base:bookworm
set -euo pipefail

image=${1:-localhost/halyard-base:bookworm}
suite=${DEBIAN_SUITE:-bookworm}
cache=${HALYARD_IMAGE_CACHE:-$HOME/.cache/halyard/images}
tarball=$cache/debian-$suite-minbase.tar

builder=$("$(dirname "$0")/builder.sh")
if "$builder" image inspect "$image" >/dev/null 2>&1 \
   || { [ "$builder" = buildah ] && buildah inspect --type image "$image" >/dev/null 2>&1; }; then
  echo "base image $image: present"
  exit 0
fi

if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { echo "base.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  [ "$(id -u)" -eq 0 ] || { echo "base.sh: debootstrap needs root" >&2; exit 1; }
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  echo "base image: debootstrap --variant=minbase $suite (cached in $tarball)"
  debootstrap --variant=minbase "$suite" "$root" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  # Nothing the image does not need at run time: apt lists, caches, docs.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
  mkdir -p "$cache"
  tar --numeric-owner -C "$root" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi

echo "base image: importing $tarball as $image"
case $builder in
  buildah) cid=$(buildah from scratch)
           buildah add "$cid" "$tarball" / >/dev/null
           buildah config --cmd /bin/bash "$cid"
           buildah commit --rm -q "$cid" "$image" >/dev/null ;;
  *)       "$builder" import --change 'CMD ["/bin/bash"]' "$tarball" "$image" >/dev/null ;;
esac
echo "base image $image: imported"
