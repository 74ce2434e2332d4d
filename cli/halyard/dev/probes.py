"""Kubelet-style readiness probes run against a local pod process.

`probe_once(probe, container, pod_ip, env)` -> bool for httpGet, tcpSocket and
exec probes. A container without a readinessProbe is ready once started.
"""
from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass

# Probe periods are capped so tests do not wait out production periods (seconds).
MAX_PERIOD_S = 2.0


@dataclass(frozen=True)
class ProbeTiming:
    """When to probe: initial delay and period (seconds), both from the pod spec."""

    initial_delay: float
    period: float

    @classmethod
    def of(cls, probe: dict | None) -> "ProbeTiming":
        probe = probe or {}
        period = min(float(probe.get("periodSeconds", 10)), MAX_PERIOD_S)
        return cls(float(probe.get("initialDelaySeconds", 0)), period)


def _port(port, container: dict) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for entry in container.get("ports") or []:
        if entry.get("name") == port:
            return int(entry["containerPort"])
    raise ValueError(f"probe port {port!r} names no port of container {container['name']!r}")


def _http(spec: dict, container: dict, pod_ip: str, timeout: float) -> bool:
    host = spec.get("host") or pod_ip
    scheme = spec.get("scheme", "HTTP").lower()
    url = f"{scheme}://{host}:{_port(spec['port'], container)}{spec.get('path', '/')}"
    headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            return 200 <= resp.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tcp(spec: dict, container: dict, pod_ip: str, timeout: float) -> bool:
    try:
        with socket.create_connection((spec.get("host") or pod_ip, _port(spec["port"], container)), timeout):
            return True
    except OSError:
        return False


def _exec(spec: dict, env: dict, timeout: float) -> bool:
    try:
        return subprocess.run(spec["command"], env=env, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def probe_once(probe: dict, container: dict, pod_ip: str, env: dict) -> bool:
    timeout = float(probe.get("timeoutSeconds", 1))
    if "httpGet" in probe:
        return _http(probe["httpGet"], container, pod_ip, timeout)
    if "tcpSocket" in probe:
        return _tcp(probe["tcpSocket"], container, pod_ip, timeout)
    if "exec" in probe:
        return _exec(probe["exec"], env, timeout)
    raise ValueError(f"unsupported probe handler: {sorted(probe)}")
