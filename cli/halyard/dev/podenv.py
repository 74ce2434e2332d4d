"""A container's command line and environment, resolved the way a kubelet does.

Pure functions of the pod dict (plus a lookup for ConfigMap/Secret keys):
`$(VAR)` references in command, args and env values expand from the
container's own env (earlier entries only, `$$` escapes a dollar, unknown
references stay literal); downward-API `fieldRef`s read the pod (e.g.
`status.podIP` gives POD_IP).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")

# (kind "configMap"|"secret", namespace, name, key or None) -> value, or dict of all keys when key is None
Lookup = Callable[[str, str, str, "str | None"], "str | dict | None"]


@dataclass(frozen=True)
class ContainerLaunch:
    """What to execute for one container: argv (unresolved argv[0]) and env."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    working_dir: str | None


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion."""

    def sub(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REF.sub(sub, text)


def field_value(pod: dict, path: str) -> str:
    """Downward API fieldRef.fieldPath of the pod."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    label = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if label:
        return (meta.get(label.group(1)) or {}).get(label.group(2), "")
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"), "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs", [])),
        "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs", [])),
    }
    if path not in simple:
        raise ValueError(f"fieldRef.fieldPath {path!r} is not supported by the dev pod runner")
    return simple[path] or ""


def _from_source(source: dict, pod: dict, lookup: Lookup) -> str | None:
    namespace = pod["metadata"].get("namespace", "default")
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"]["fieldPath"])
    for kind, field in (("configMap", "configMapKeyRef"), ("secret", "secretKeyRef")):
        if field in source:
            ref = source[field]
            value = lookup(kind, namespace, ref["name"], ref["key"])
            if value is None and not ref.get("optional"):
                raise ValueError(f"env {field} {ref['name']}/{ref['key']} not found")
            return value
    if "resourceFieldRef" in source:
        return ""  # cpu/memory limits: not meaningful for a local process
    raise ValueError(f"unsupported env valueFrom: {sorted(source)}")


def container_env(container: dict, pod: dict, lookup: Lookup) -> dict[str, str]:
    """envFrom first, then env entries in order, each expanding earlier ones."""
    namespace = pod["metadata"].get("namespace", "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind = "configMap" if "configMapRef" in source else "secret"
        ref = source.get("configMapRef") or source.get("secretRef")
        values = lookup(kind, namespace, ref["name"], None) or {}
        env.update({source.get("prefix", "") + k: v for k, v in values.items()})
    for entry in container.get("env") or []:
        if "valueFrom" in entry:
            value = _from_source(entry["valueFrom"], pod, lookup)
            if value is not None:
                env[entry["name"]] = value
        else:
            env[entry["name"]] = expand(entry.get("value", ""), env)
    return env


def container_launch(container: dict, pod: dict, lookup: Lookup) -> ContainerLaunch:
    """The container's command + args with env expansion; a missing command is an error
    (the dev runner has no image entrypoints to fall back on)."""
    env = container_env(container, pod, lookup)
    argv = [expand(part, env) for part in (container.get("command") or []) + (container.get("args") or [])]
    if not container.get("command"):
        raise ValueError(f"container {container['name']!r} has no command; the dev runner cannot use image entrypoints")
    return ContainerLaunch(container["name"], tuple(argv), env, container.get("workingDir"))
