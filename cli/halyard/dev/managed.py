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
    """A pod's processes: init containers one after another (each must exit 0,
    failures retry with back-off), then the containers, as a kubelet runs them."""

    def __init__(self, pod: dict, procs: dict[str, ContainerProcess], grace: float,
                 inits: list[ContainerProcess] | None = None):
        self.pod = pod
        self.procs = procs  # container name -> process
        self.inits = list(inits or [])  # init containers not yet completed, in order
        self.grace = grace
        self.probes = {c["name"]: _Probe(c.get("readinessProbe"), ProbeTiming.of(c.get("readinessProbe")))
                       for c in pod["spec"]["containers"]}
        self.published: tuple | None = None  # last views written to the API

    @property
    def key(self) -> str:
        return f"{self.pod['metadata']['namespace']}/{self.pod['metadata']['name']}"

    @classmethod
    def create(cls, pod: dict, config, base_env: dict, lookup) -> "ManagedPod":
        restart = pod["spec"].get("restartPolicy", "Always")
        inits = [_process(c, pod, config, base_env, lookup, "Never" if restart == "Never" else "OnFailure")
                 for c in pod["spec"].get("initContainers") or []]
        procs = {c["name"]: _process(c, pod, config, base_env, lookup, restart) for c in pod["spec"]["containers"]}
        managed = cls(pod, procs, float(pod["spec"].get("terminationGracePeriodSeconds", 30)), inits)
        managed._advance_init()
        return managed

    def _advance_init(self) -> None:
        """Start the next init container, or the containers once every init container exited 0."""
        while self.inits:
            proc = self.inits[0]
            if proc.stopped:
                return
            if proc.proc is None and proc.last_exit is None:
                proc.start()
            proc.poll()
            if proc.running or proc.last_exit is None or proc.last_exit.code != 0:
                return  # still running, or failed and waiting for its back-off restart
            self.inits.pop(0)
        for proc in self.procs.values():
            if not proc.stopped and proc.proc is None and proc.started_at is None and proc.last_exit is None:
                proc.start()

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
        self._advance_init()
        out = []
        for container in self.pod["spec"]["containers"]:
            name = container["name"]
            proc = self.procs[name]
            if not self.inits:
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
        for proc in [*self.inits, *self.procs.values()]:
            proc.stop(grace)


def _process(container: dict, pod: dict, config, base_env: dict, lookup, restart: str) -> ContainerProcess:
    """The container's process (not started); an unrunnable spec is a recorded start error."""
    meta = pod["metadata"]
    stem = f"{meta['namespace']}_{meta['name']}_{container['name']}"
    log, workdir = config.log_dir / f"{stem}.log", config.work_dir / stem
    try:
        launch = container_launch(container, pod, lookup)
    except ValueError as err:
        proc = ContainerProcess(ContainerLaunch(container["name"], (), {}, None), base_env, log, workdir)
        proc.last_exit = Exit(128, "StartError", str(err))
        proc.stopped = True
        return proc
    return ContainerProcess(launch, base_env, log, workdir, restart)
