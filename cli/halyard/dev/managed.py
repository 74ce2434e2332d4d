"""One pod under the runner: its container processes and readiness bookkeeping."""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from halyard.dev.podaccess import ApiAccess, access_env
from halyard.dev.podenv import ContainerLaunch, container_launch
from halyard.dev.podstatus import ContainerView
from halyard.dev.podvolumes import container_mounts, map_env, map_path, materialize, termination_file
from halyard.dev.probes import ProbeTiming, probe_once
from halyard.dev.process import ContainerProcess, Exit, Termination


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
        self.init_procs = list(inits or [])  # every init container, in order (for initContainerStatuses)
        self.grace = grace
        self.probes = {c["name"]: _Probe(c.get("readinessProbe"), ProbeTiming.of(c.get("readinessProbe")))
                       for c in pod["spec"]["containers"]}
        self.published: tuple | None = None  # last views written to the API

    @property
    def key(self) -> str:
        return f"{self.pod['metadata']['namespace']}/{self.pod['metadata']['name']}"

    @classmethod
    def create(cls, pod: dict, config, base_env: dict, lookup, token=None, access: ApiAccess | None = None
               ) -> "ManagedPod":
        """Materialise the pod's volumes, then its processes with container paths mapped onto them."""
        restart = pod["spec"].get("restartPolicy", "Always")
        meta = pod["metadata"]
        pod_dir = config.work_dir / f"{meta['namespace']}_{meta['name']}"
        try:
            materialize(pod, pod_dir, lookup, token or _no_token)
            start = _Start(config, base_env, lookup, pod_dir, access)
        except (OSError, KeyError, ValueError) as err:
            start = _Start(config, base_env, lookup, pod_dir, access, f"volumes: {err}")
        inits = [start.process(c, pod, "Never" if restart == "Never" else "OnFailure")
                 for c in pod["spec"].get("initContainers") or []]
        procs = {c["name"]: start.process(c, pod, restart) for c in pod["spec"]["containers"]}
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
        """Init containers' views (flagged `init`), then the containers'."""
        self._advance_init()
        out = [self._view(c, proc, ready=proc.last_exit is not None and proc.last_exit.code == 0 and not proc.running,
                          init=True)
               for c, proc in zip(self.pod["spec"].get("initContainers") or [], self.init_procs)]
        for container in self.pod["spec"]["containers"]:
            proc = self.procs[container["name"]]
            if not self.inits:
                proc.poll()
            out.append(self._view(container, proc, self._ready(container["name"], proc)))
        return out

    def _view(self, container: dict, proc: ContainerProcess, ready: bool, init: bool = False) -> ContainerView:
        started = _stamp(proc.started_at) if proc.started_at else None
        last = proc.last_exit
        restarting = None if proc.running or last is None or not _restarts(proc) else proc.backoff_s
        return ContainerView(
            container["name"], container.get("image", ""), proc.running, ready, proc.restarts, started,
            last.code if last else None, last.reason if last else None, last.message if last else "",
            _stamp(last.started_at) if last else None, _stamp(last.finished_at) if last else None,
            restarting, self.key, init)

    def step(self) -> list[ContainerView] | None:
        """Advance processes and probes; the views when they differ from what was published."""
        views = self.views()
        signature = tuple((v.running, v.ready, v.restarts, v.exit_code, v.exit_message, v.restarting_in_s is None)
                          for v in views)
        if signature == self.published:
            return None
        self.published = signature
        return views

    def stop(self, grace: float) -> None:
        for proc in [*self.inits, *self.procs.values()]:
            proc.stop(grace)


@dataclass(frozen=True)
class _Start:
    """How this pod's processes are made: where its volumes are, API access, a volume error."""

    config: object
    base_env: dict
    lookup: object
    pod_dir: Path
    access: ApiAccess | None
    error: str | None = None

    def process(self, container: dict, pod: dict, restart: str) -> ContainerProcess:
        """The container's process (not started); an unrunnable spec is a recorded start error."""
        meta = pod["metadata"]
        stem = f"{meta['namespace']}_{meta['name']}_{container['name']}"
        log, workdir = self.config.log_dir / f"{stem}.log", self.config.work_dir / stem
        try:
            if self.error:
                raise ValueError(self.error)
            launch = self._launch(container, pod)
        except ValueError as err:
            proc = ContainerProcess(ContainerLaunch(container["name"], (), {}, None), self.base_env, log, workdir)
            proc.last_exit = Exit(128, "StartError", str(err))
            proc.stopped = True
            return proc
        termination = Termination(termination_file(container, self.pod_dir),
                                  container.get("terminationMessagePolicy") == "FallbackToLogsOnError")
        return ContainerProcess(launch, self.base_env, log, workdir, restart, termination)

    def _launch(self, container: dict, pod: dict) -> ContainerLaunch:
        launch = container_launch(container, pod, self.lookup)
        mounts = container_mounts(container, self.pod_dir, pod["spec"].get("volumes"))
        env = access_env(self.access, mounts, self.pod_dir, pod["metadata"]["namespace"]) if self.access else {}
        return replace(launch, argv=tuple(map_path(a, mounts) for a in launch.argv),
                       env={**env, **map_env(launch.env, mounts)})


def _restarts(proc: ContainerProcess) -> bool:
    """Whether the kubelet would start this exited container again."""
    if proc.stopped or proc.restart_policy == "Never":
        return False
    return proc.restart_policy == "Always" or (proc.last_exit is not None and proc.last_exit.code != 0)


def _stamp(epoch: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def _no_token(*_args) -> str:
    raise ValueError("service account tokens are not available to this runner")
