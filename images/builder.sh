#!/usr/bin/env bash
# Print the image builder to use: $IMAGE_BUILDER if set, else the first of
# buildah, podman, docker that is installed (docker only with a reachable daemon).
set -euo pipefail
if [ -n "${IMAGE_BUILDER:-}" ]; then echo "$IMAGE_BUILDER"; exit 0; fi
for b in buildah podman; do
  if command -v "$b" >/dev/null; then echo "$b"; exit 0; fi
done
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker; exit 0; fi
echo "no image builder: install buildah (apt-get install buildah), podman or docker" >&2
exit 1
