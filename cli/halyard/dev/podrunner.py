"""The pod runner: each scheduled fake-node pod's containers as local processes.

It watches all pods; a pod that kwok has made `Running` with a `podIP` (and is
not terminating, not hostNetwork, not opted out with the annotation
`halyard.dev/dev-runner: skip` or the env var `HALYARD_DEV_RUNNER=skip`)
gets its containers started with exactly the pod's command line and env (plus
API access for pods that would get a service account token: their own token
when the pod has the projected token volume, else the dev kubeconfig). The
runner probes each container's readinessProbe and patches the pod's Ready
condition to match, restarts crashed processes with back-off, reports exits in the container
statuses as a kubelet does (restartCount, lastState.terminated with exit code,
reason and termination message, CrashLoopBackOff while waiting to restart),
and stops the process group (SIGTERM, SIGKILL after the grace period) when the
pod is deleted. Volumes are materialised locally and container paths mapped
onto them (`podvolumes.py`); service account tokens come from TokenRequests
(`podaccess.py`).
Logs: `<log_dir>/<namespace>_<pod>_<container>.log` (CRI format); a kwok
`Logs` object per pod (owned by the pod) points kwok's kubelet endpoint at
them, so `kubectl logs` (and `--previous`) works.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from halyard.dev.managed import ManagedPod
from halyard.dev.podaccess import ApiAccess
from halyard.dev.podstatus import status_patch

log = logging.getLogger("halyard.podrunner")
SKIP_ANNOTATION = "halyard.dev/dev-runner"
SKIP_ENV = "HALYARD_DEV_RUNNER"
TICK_S = 0.25


@dataclass(frozen=True)
class RunnerConfig:
    """Where the runner connects and writes."""

    kubeconfig: Path
    log_dir: Path
    work_dir: Path
    path_prefix: tuple[str, ...] = ()  # prepended to PATH (the venv's bin)


def eligible(pod: dict) -> bool:
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    return (not meta.get("deletionTimestamp") and spec.get("nodeName") and not spec.get("hostNetwork")
            and status.get("phase") == "Running" and bool(status.get("podIP"))
            and (meta.get("annotations") or {}).get(SKIP_ANNOTATION) != "skip" and not _skips(spec))


def _skips(spec: dict) -> bool:
    """Opt-out for placeholder pods (benchmarks, scheduling tests): no process runs."""
    return any(e.get("name") == SKIP_ENV and e.get("value") == "skip"
               for c in spec.get("containers", []) for e in c.get("env") or [])


def base_env(config: RunnerConfig, pod: dict | None = None) -> dict:
    """PATH and locale for every container; API credentials for pods that ask a
    kubelet for them (`automountServiceAccountToken` not false): a kubelet would
    mount the service account token; the runner hands over the dev kubeconfig as
    KUBECONFIG, which `podaccess.access_env` replaces with one holding the pod's own
    token wherever the pod mounts the projected token volume (admission adds it)."""
    path = os.pathsep.join([*config.path_prefix, os.environ.get("PATH", "/usr/bin:/bin")])
    keep = {k: os.environ[k] for k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "TZ") if k in os.environ}
    env = {**keep, "PATH": path}
    if pod is not None and (pod.get("spec") or {}).get("automountServiceAccountToken") is not False:
        env["KUBECONFIG"] = str(config.kubeconfig)
    return env


class PodRunner:
    def __init__(self, config: RunnerConfig):
        from kubernetes import client, config as kconfig

        self.config = config
        self.api = client.CoreV1Api(kconfig.new_client_from_config(config_file=str(config.kubeconfig)))
        self.custom = client.CustomObjectsApi(self.api.api_client)
        self.access = ApiAccess.from_kubeconfig(config.kubeconfig)
        self.watch_api = client.CoreV1Api(kconfig.new_client_from_config(config_file=str(config.kubeconfig)))
        self.pods: dict[str, ManagedPod] = {}  # by uid
        self.lock = threading.Lock()
        self.stop_event = threading.Event()

    # --- pod lifecycle -------------------------------------------------------------
    def observe(self, kind: str, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            managed = self.pods.get(uid)
            if kind == "DELETED" or not eligible(pod):
                if managed and (kind == "DELETED" or pod["metadata"].get("deletionTimestamp")
                                or pod.get("status", {}).get("phase") != "Running"):
                    self.pods.pop(uid)
                    threading.Thread(target=self._stop, args=(managed, _grace(pod)), daemon=True).start()
                return
            if managed:
                managed.pod = pod
                return
            managed = ManagedPod.create(pod, self.config, base_env(self.config, pod), self._lookup, self._token,
                                        self.access)
            self.pods[uid] = managed
        for name, proc in managed.procs.items():
            log.info("started %s/%s: exec %s", managed.key, name, list(proc.launch.argv))
        self._serve_logs(managed)

    @staticmethod
    def _stop(managed: ManagedPod, grace: float) -> None:
        managed.stop(grace)
        log.info("stopped %s (grace %.0fs)", managed.key, grace)

    def _lookup(self, kind: str, namespace: str, name: str, key: str | None):
        from kubernetes.client.exceptions import ApiException

        try:
            if kind == "configMap":
                data = self.api.read_namespaced_config_map(name, namespace).data or {}
            else:
                import base64
                raw = self.api.read_namespaced_secret(name, namespace).data or {}
                data = {k: base64.b64decode(v).decode() for k, v in raw.items()}
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return data if key is None else data.get(key)

    def _token(self, namespace: str, account: str, pod: str, uid: str, expiration_s: int) -> str:
        """A TokenRequest bound to the pod, as the kubelet makes for projected tokens."""
        from kubernetes import client

        ref = client.V1BoundObjectReference(kind="Pod", api_version="v1", name=pod, uid=uid)
        body = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_s, bound_object_ref=ref))
        return self.api.create_namespaced_service_account_token(account, namespace, body).status.token

    def _serve_logs(self, managed: ManagedPod) -> None:
        """A kwok Logs object (owned by the pod) naming each container's log file."""
        from kubernetes.client.exceptions import ApiException

        meta = managed.pod["metadata"]
        procs = [(p.launch.name, p) for p in managed.inits] + list(managed.procs.items())
        logs = [{"containers": [name], "logsFile": str(proc.log_path),
                 "previousLogsFile": str(proc.log_path) + ".previous", "follow": True}
                for name, proc in procs]
        body = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}]},
                "spec": {"logs": logs}}
        try:
            self.custom.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", meta["namespace"], "logs", body)
        except ApiException as err:
            if err.status not in (404, 409):  # 404: a cluster without kwok's Logs CRD
                log.warning("kwok Logs for %s not created: %s", managed.key, err.reason)

    # --- loops ---------------------------------------------------------------------
    def tick(self) -> None:
        with self.lock:
            pods = list(self.pods.values())
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for managed in pods:
            views = managed.step()
            if views is None:
                continue
            self._patch(managed, status_patch(managed.pod, views, now))

    def _patch(self, managed: ManagedPod, body: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        ns, name = managed.pod["metadata"]["namespace"], managed.pod["metadata"]["name"]
        try:
            self.api.patch_namespaced_pod_status(name, ns, body, _content_type="application/strategic-merge-patch+json")
            log.info("%s ready=%s", managed.key, body["status"]["conditions"][-1]["status"])
        except ApiException as err:
            if err.status != 404:
                log.warning("status patch of %s failed: %s", managed.key, err.reason)
            managed.published = None  # retry on the next tick

    def watch_forever(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        serialize = self.watch_api.api_client.sanitize_for_serialization
        while not self.stop_event.is_set():
            try:
                listing = self.watch_api.list_pod_for_all_namespaces()
                seen = set()
                for item in listing.items:
                    pod = serialize(item)
                    seen.add(pod["metadata"]["uid"])
                    self.observe("ADDED", pod)
                self._forget_missing(seen)
                stream = watch.Watch().stream(self.watch_api.list_pod_for_all_namespaces, timeout_seconds=30,
                                              resource_version=listing.metadata.resource_version)
                for event in stream:
                    self.observe(event["type"], serialize(event["object"]))
                    if self.stop_event.is_set():
                        break
            except (ApiException, OSError, ValueError) as err:  # 410 Gone, connection loss: re-list
                log.warning("pod watch restarted: %s", err)
                self.stop_event.wait(1.0)

    def _forget_missing(self, seen: set) -> None:
        with self.lock:
            gone = [uid for uid in self.pods if uid not in seen]
            stopped = [self.pods.pop(uid) for uid in gone]
        for managed in stopped:
            threading.Thread(target=self._stop, args=(managed, managed.grace), daemon=True).start()

    def run(self) -> None:
        watcher = threading.Thread(target=self.watch_forever, name="pod-watch", daemon=True)
        watcher.start()
        try:
            while not self.stop_event.wait(TICK_S):
                self.tick()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.stop_event.set()
        with self.lock:
            pods, self.pods = list(self.pods.values()), {}
        threads = [threading.Thread(target=m.stop, args=(min(m.grace, 10.0),)) for m in pods]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _grace(pod: dict) -> float:
    meta = pod["metadata"]
    if meta.get("deletionGracePeriodSeconds") is not None:
        return float(meta["deletionGracePeriodSeconds"])
    return float(pod.get("spec", {}).get("terminationGracePeriodSeconds", 30))


def main(config: RunnerConfig) -> int:
    import signal

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s podrunner %(message)s")
    runner = PodRunner(config)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: runner.stop_event.set())
    log.info("watching pods (kubeconfig %s, logs %s)", config.kubeconfig, config.log_dir)
    runner.run()
    return 0
