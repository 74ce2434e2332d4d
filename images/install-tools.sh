#!/usr/bin/env bash
# Install what the image builds need on a Debian machine (CI runs this as
# root): buildah (builds with --isolation chroot, no daemon) and debootstrap
# (the base root filesystem). Nothing is done when both are present.
set -euo pipefail
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" -eq 0 ] || { echo "install-tools.sh: needs root to install ${missing[*]}" >&2; exit 1; }
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${missing[*]}"
