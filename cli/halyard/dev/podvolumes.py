"""A pod's volumes as local directories, and container paths mapped onto them.

A local process has no mount namespace, so the runner materialises each
volume under `<pod dir>/volumes/<name>` (configMap and secret keys as files,
emptyDir empty, projected sources including the service account token;
a hostPath volume is its own directory) and rewrites every argv token and env value that names a
path under a container's `volumeMounts` (or its `terminationMessagePath`) to
the local copy: `--config /etc/halyard/config.yaml` becomes
`--config <pod dir>/volumes/config/config.yaml`. A path that exists on this
machine is left alone (the dev cluster's `file://` models are host paths,
even under a mount such as `/tmp`); the termination message file is always
mapped. Code that hard-codes an
in-pod path outside argv/env does not see the mapping; for the service
account the runner also writes a kubeconfig (see `podaccess.py`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from halyard.dev.podenv import Lookup, field_value

# (namespace, service account, pod name, pod uid, expiration s) -> bearer token
TokenSource = Callable[[str, str, str, str, int], str]
DEFAULT_TERMINATION_PATH = "/dev/termination-log"


@dataclass(frozen=True)
class Mount:
    """One container path and the local path standing in for it."""

    container_path: str
    local_path: str
    always: bool = False  # map even when the container path exists on this machine


def container_mounts(container: dict, pod_dir: Path, volumes: list | None = None) -> tuple[Mount, ...]:
    """The container's volumeMounts (subPath honoured; a hostPath volume is its own
    path) plus its termination message file, longest first."""
    host = {v["name"]: v["hostPath"]["path"] for v in volumes or () if "hostPath" in v}
    mounts = [Mount(m["mountPath"].rstrip("/") or "/",
                    str(Path(host.get(m["name"]) or pod_dir / "volumes" / m["name"]) / m.get("subPath", "")).rstrip("/"))
              for m in container.get("volumeMounts") or []]
    mounts.append(Mount(termination_path(container), str(termination_file(container, pod_dir)), always=True))
    return tuple(sorted(mounts, key=lambda m: -len(m.container_path)))


def termination_path(container: dict) -> str:
    return container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH


def termination_file(container: dict, pod_dir: Path) -> Path:
    return pod_dir / "termination" / container["name"]


def map_path(text: str, mounts: tuple[Mount, ...], exists: Callable[[str], bool] = os.path.exists) -> str:
    """`text` with a leading in-container path (or the value of `--flag=path`) moved onto its mount."""
    if "=" in text and not text.startswith("/"):
        key, _, value = text.partition("=")
        mapped = map_path(value, mounts, exists)
        return text if mapped == value else f"{key}={mapped}"
    for mount in mounts:
        root = mount.container_path
        if text == root or text.startswith(root.rstrip("/") + "/"):
            if not mount.always and exists(text):
                return text
            return mount.local_path + text[len(root):]
    return text


def map_env(env: Mapping[str, str], mounts: tuple[Mount, ...],
            exists: Callable[[str], bool] = os.path.exists) -> dict[str, str]:
    return {k: map_path(v, mounts, exists) for k, v in env.items()}


def materialize(pod: dict, pod_dir: Path, lookup: Lookup, token: TokenSource) -> None:
    """Write every volume of `pod` under `pod_dir/volumes` (files rewritten on each call)."""
    for volume in pod["spec"].get("volumes") or []:
        if "hostPath" in volume:
            continue  # the node's own directory: used as it is
        target = pod_dir / "volumes" / volume["name"]
        target.mkdir(parents=True, exist_ok=True)
        for rel, content in volume_files(volume, pod, lookup, token).items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    for container in pod["spec"]["containers"]:
        path = termination_file(container, pod_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def volume_files(volume: dict, pod: dict, lookup: Lookup, token: TokenSource) -> dict[str, str]:
    """relative path -> content for one volume (empty for emptyDir and kinds with no files)."""
    ns = pod["metadata"].get("namespace", "default")
    if "configMap" in volume or "secret" in volume:
        kind = "configMap" if "configMap" in volume else "secret"
        source = volume[kind]
        name = source.get("name") or source.get("secretName")
        return _keys(lookup(kind, ns, name, None) or {}, source.get("items"))
    if "projected" in volume:
        files: dict[str, str] = {}
        for source in volume["projected"].get("sources") or []:
            files.update(_projected(source, pod, lookup, token))
        return files
    return {}


def _keys(data: Mapping[str, str], items: list | None) -> dict[str, str]:
    if not items:
        return dict(data)
    return {item.get("path", item["key"]): data[item["key"]] for item in items if item["key"] in data}


def _projected(source: dict, pod: dict, lookup: Lookup, token: TokenSource) -> dict[str, str]:
    meta = pod["metadata"]
    ns = meta.get("namespace", "default")
    if "serviceAccountToken" in source:
        sat = source["serviceAccountToken"]
        account = pod["spec"].get("serviceAccountName") or "default"
        value = token(ns, account, meta["name"], meta.get("uid", ""), int(sat.get("expirationSeconds", 3607)))
        return {sat.get("path", "token"): value}
    if "configMap" in source or "secret" in source:
        kind = "configMap" if "configMap" in source else "secret"
        return _keys(lookup(kind, ns, source[kind]["name"], None) or {}, source[kind].get("items"))
    if "downwardAPI" in source:
        return {item["path"]: field_value(pod, item["fieldRef"]["fieldPath"])
                for item in source["downwardAPI"].get("items") or [] if "fieldRef" in item}
    return {}
