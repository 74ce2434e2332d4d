"""Pod watch for the operator benchmark: when each LLMDeployment's first pod runs."""
from __future__ import annotations

import os
import threading
import time


class RunningTimes:
    """Monotonic timestamps per LLMDeployment: its create call, its first child
    Deployment seen (the operator's share), its first Running pod (end to end)."""

    LABEL = "halyard.dev/deployment"

    def __init__(self, api_client, namespace: str):
        self.api_client, self.namespace = api_client, namespace
        self.created: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.children: dict[str, float] = {}
        self.cond = threading.Condition()

    def started(self, name: str) -> None:
        with self.cond:
            self.created[name] = time.monotonic()

    def latency(self, name: str) -> float:
        return self.running[name] - self.created[name]

    def operator_latency(self, name: str) -> float | None:
        return self.children[name] - self.created[name] if name in self.children else None

    def start(self) -> None:
        from kubernetes import client

        core, apps = client.CoreV1Api(self.api_client), client.AppsV1Api(self.api_client)
        threading.Thread(target=self._watch, args=(core.list_namespaced_pod, self._observe),
                         daemon=True, name="bench-pod-watch").start()
        threading.Thread(target=self._watch, args=(apps.list_namespaced_deployment, self._observe_child),
                         daemon=True, name="bench-deployment-watch").start()

    def _watch(self, lister, observe) -> None:
        from kubernetes import watch

        while True:
            try:
                for event in watch.Watch().stream(lister, self.namespace, timeout_seconds=300):
                    observe(event["object"])
            except Exception:  # noqa: BLE001 - connection loss or 410: list and watch again
                time.sleep(1)

    def _observe_child(self, deployment) -> None:
        owner = (deployment.metadata.labels or {}).get(self.LABEL)
        if owner:
            with self.cond:
                self.children.setdefault(owner, time.monotonic())

    def _observe(self, pod) -> None:
        owner = (pod.metadata.labels or {}).get(self.LABEL)
        if owner and pod.status.phase == "Running":
            with self.cond:
                self.running.setdefault(owner, time.monotonic())
                self.cond.notify_all()

    def wait_all(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(n in self.running for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [n for n in names if n not in self.running]
                    raise RuntimeError(f"{len(missing)} LLMDeployments without a Running pod after "
                                       f"{timeout:.0f}s, e.g. {missing[:3]}")
                self.cond.wait(min(left, 1.0))


def proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds user+system, RSS bytes) of one process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    with open(f"/proc/{pid}/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return cpu, rss_kb * 1024
