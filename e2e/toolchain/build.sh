#!/usr/bin/env bash
# Builds the local control plane from Go modules into a versioned cache:
#   $HALYARD_BIN_ROOT/<key>/{kube-apiserver,kube-controller-manager,kube-scheduler,etcd,kwok,kwokctl}
# <key> is derived from the pinned versions and the wrapper go.mod/go.sum files,
# so a pin change builds into a fresh directory and an unchanged pin is a no-op.
# Prints the binary directory on its last line. Idempotent; safe to re-run.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION=v1.33.13
KWOK_VERSION=v0.8.0
ETCD_VERSION=v3.5.35
BIN_ROOT="${HALYARD_BIN_ROOT:-$HOME/.cache/halyard/bin}"

key() {
  { echo "$K8S_VERSION $KWOK_VERSION $ETCD_VERSION $(go env GOVERSION)"
    cat "$HERE"/k8s/go.mod "$HERE"/k8s/go.sum "$HERE"/etcd/go.mod "$HERE"/etcd/go.sum
  } | sha256sum | cut -c1-12
}

KEY="${K8S_VERSION}-${KWOK_VERSION}-${ETCD_VERSION}-$(key)"
OUT="$BIN_ROOT/$KEY"
NAMES=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok kwokctl)

complete() {
  for name in "${NAMES[@]}"; do [ -x "$OUT/$name" ] || return 1; done
  [ -f "$OUT/stages/pod-delete.yaml" ]
}

if complete; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$OUT"
STAGE="$(mktemp -d "$OUT/.stage.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

# GOTOOLCHAIN stays at its default (auto): an older local Go fetches the toolchain
# the pinned modules require (kwok and etcd need go >= 1.26) through the module proxy.
export CGO_ENABLED=0 GOFLAGS=-mod=mod
MINOR="${K8S_VERSION#v1.}"; MINOR="${MINOR%%.*}"
VPKG=k8s.io/component-base/version
K8S_LDFLAGS="-s -w -X $VPKG.gitVersion=$K8S_VERSION -X $VPKG.gitMajor=1 -X $VPKG.gitMinor=$MINOR"
K8S_LDFLAGS="$K8S_LDFLAGS -X $VPKG.gitTreeState=clean -X $VPKG.buildDate=1970-01-01T00:00:00Z"
# kube-apiserver also reports its version through the compatibility package.
K8S_LDFLAGS="$K8S_LDFLAGS -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"

step() { echo "[$(date +%H:%M:%S)] $*" >&2; }

for name in kube-apiserver kube-controller-manager kube-scheduler; do
  [ -x "$OUT/$name" ] && continue
  step "building $name $K8S_VERSION"
  (cd "$HERE/k8s" && go build -trimpath -ldflags "$K8S_LDFLAGS" -o "$STAGE/$name" "k8s.io/kubernetes/cmd/$name")
  mv "$STAGE/$name" "$OUT/$name"
done

if [ ! -x "$OUT/etcd" ]; then
  step "building etcd $ETCD_VERSION"
  (cd "$HERE/etcd" && go build -trimpath -ldflags "-s -w" -o "$STAGE/etcd" go.etcd.io/etcd/server/v3)
  mv "$STAGE/etcd" "$OUT/etcd"
fi

for name in kwok kwokctl; do
  [ -x "$OUT/$name" ] && continue
  step "building $name $KWOK_VERSION"
  GOBIN="$STAGE" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/$name@$KWOK_VERSION"
  mv "$STAGE/$name" "$OUT/$name"
done

# kwok's default node and pod Stages, from the pinned module, so the cluster
# config can replace only the pod-ready stage (see halyard_operator/dev/stages.py).
if [ ! -f "$OUT/stages/pod-delete.yaml" ]; then
  SRC="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  [ -d "$SRC" ] || (cd "$HERE/etcd" && go mod download "sigs.k8s.io/kwok@$KWOK_VERSION")
  mkdir -p "$STAGE/stages"
  cp "$SRC/node/fast/node-initialize.yaml" "$SRC/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "$SRC/pod/fast/pod-complete.yaml" "$SRC/pod/fast/pod-delete.yaml" "$STAGE/stages/"
  chmod -R u+w "$STAGE/stages"
  rm -rf "$OUT/stages" && mv "$STAGE/stages" "$OUT/stages"
fi

step "binaries ready in $OUT"
echo "$OUT"
