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
    def create(cls, pod: dict, config, base_env: dict, lookup, token=None, access: ApiAccess | None = None
               ) -> "ManagedPod":
        """Materialise the pod's volumes, then start each container with its paths mapped onto them."""
        meta = pod["metadata"]
        pod_dir = config.work_dir / f"{meta['namespace']}_{meta['name']}"
        procs, volume_error = {}, None
        try:
            materialize(pod, pod_dir, lookup, token or _no_token)
        except (OSError, KeyError, ValueError) as err:
            volume_error = f"volumes: {err}"
        for container in pod["spec"]["containers"]:
            stem = f"{meta['namespace']}_{meta['name']}_{container['name']}"
            log_path, workdir = config.log_dir / f"{stem}.log", config.work_dir / stem
            try:
                if volume_error:
                    raise ValueError(volume_error)
                launch = _mapped_launch(container, pod, pod_dir, lookup, access)
            except ValueError as err:  # unrunnable spec: reported as a start error
                proc = ContainerProcess(ContainerLaunch(container["name"], (), {}, None), base_env, log_path, workdir)
                proc.last_exit = Exit(128, "StartError", str(err))
                proc.stopped = True
                procs[container["name"]] = proc
                continue
            termination = Termination(termination_file(container, pod_dir),
                                      container.get("terminationMessagePolicy") == "FallbackToLogsOnError")
            proc = ContainerProcess(launch, base_env, log_path, workdir, pod["spec"].get("restartPolicy", "Always"),
                                    termination)
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
            restarting = None if proc.running or last is None or not _restarts(proc) else proc.backoff_s
            out.append(ContainerView(
                name, container.get("image", ""), proc.running, self._ready(name, proc), proc.restarts, started,
                last.code if last else None, last.reason if last else None, last.message if last else "",
                _stamp(last.started_at) if last else None, _stamp(last.finished_at) if last else None,
                restarting, self.key))
        return out

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
        for proc in self.procs.values():
            proc.stop(grace)


def _mapped_launch(container: dict, pod: dict, pod_dir: Path, lookup, access: ApiAccess | None) -> ContainerLaunch:
    launch = container_launch(container, pod, lookup)
    mounts = container_mounts(container, pod_dir)
    env = access_env(access, mounts, pod_dir, pod["metadata"]["namespace"]) if access else {}
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
