"""One pod under the runner: its container processes and readiness bookkeeping."""
from __future__ import annotations

import time
from dataclasses import dataclass

from halyard.dev.podenv import ContainerLaunch, container_launch
from halyard.dev.podstatus import ContainerView
from halyard.dev.probes import ProbeTiming, probe_once
from halyard.dev.process import ContainerProcess, Exit


@dataclass
class _Probe:
    """Readiness probing state of one container (mutable, runner-owned)."""

    spec: dict | None
    timing: ProbeTiming
    next_at: float = 0.0
    ok: bool = False


class ManagedPod:
    def __init__(self, pod: dict, procs: dict[str, ContainerProcess], grace: float):
        self.pod = pod
        self.procs = procs  # container name -> process
        self.grace = grace
        self.probes = {c["name"]: _Probe(c.get("readinessProbe"), ProbeTiming.of(c.get("readinessProbe")))
                       for c in pod["spec"]["containers"]}
        self.published: tuple | None = None  # last views written to the API

    @property
    def key(self) -> str:
        return f"{self.pod['metadata']['namespace']}/{self.pod['metadata']['name']}"

    @classmethod
    def create(cls, pod: dict, config, base_env: dict, lookup) -> "ManagedPod":
        meta = pod["metadata"]
        procs = {}
        for container in pod["spec"]["containers"]:
            stem = f"{meta['namespace']}_{meta['name']}_{container['name']}"
            try:
                launch = container_launch(container, pod, lookup)
            except ValueError as err:  # unrunnable spec: reported as a start error
                launch = ContainerLaunch(container["name"], (), {}, None)
                proc = ContainerProcess(launch, base_env, config.log_dir / f"{stem}.log", config.work_dir / stem)
                proc.last_exit = Exit(128, "StartError", str(err))
                proc.stopped = True
                procs[container["name"]] = proc
                continue
            proc = ContainerProcess(launch, base_env, config.log_dir / f"{stem}.log", config.work_dir / stem,
                                    pod["spec"].get("restartPolicy", "Always"))
            proc.start()
            procs[container["name"]] = proc
        grace = float(pod["spec"].get("terminationGracePeriodSeconds", 30))
        return cls(pod, procs, grace)

    def _ready(self, name: str, proc: ContainerProcess) -> bool:
        probe = self.probes[name]
        if not proc.running:
            probe.ok = False
            return False
        if probe.spec is None:
            return True
        now = time.monotonic()
        if now >= max(probe.next_at, proc.started_mono + probe.timing.initial_delay):
            probe.ok = probe_once(probe.spec, self._container(name), self.pod["status"]["podIP"], proc.env)
            probe.next_at = now + (0.25 if not probe.ok else probe.timing.period)
        return probe.ok

    def _container(self, name: str) -> dict:
        return next(c for c in self.pod["spec"]["containers"] if c["name"] == name)

    def views(self) -> list[ContainerView]:
        out = []
        for container in self.pod["spec"]["containers"]:
            name = container["name"]
            proc = self.procs[name]
            proc.poll()
            started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(proc.started_at)) if proc.started_at else None
            last = proc.last_exit
            out.append(ContainerView(name, container.get("image", ""), proc.running, self._ready(name, proc),
                                     proc.restarts, started, last.code if last else None,
                                     last.reason if last else None, last.message if last else ""))
        return out

    def step(self) -> list[ContainerView] | None:
        """Advance processes and probes; the views when they differ from what was published."""
        views = self.views()
        signature = tuple((v.running, v.ready, v.restarts, v.exit_code) for v in views)
        if signature == self.published:
            return None
        self.published = signature
        return views

    def stop(self, grace: float) -> None:
        for proc in self.procs.values():
            proc.stop(grace)
