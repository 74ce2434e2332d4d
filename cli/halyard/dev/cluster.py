"""The dev cluster: `kwokctl --runtime binary` with locally built binaries.

`up()` writes the kwokctl config (127.0.0.1, custom pod Stages), creates the
cluster with `--wait`, writes the kubeconfig to a known path and creates the
fake GPU node pools. `down()` deletes the cluster and its kwok workdir.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from halyard.dev.binaries import Binaries
from halyard.dev.kube import Kubectl
from halyard.dev.nodes import PoolPlan, pool_nodes
from halyard.dev.paths import DevPaths
from halyard.dev.stages import write_config

BINARY_FLAGS = {
    "kube-apiserver": "--kube-apiserver-binary",
    "kube-controller-manager": "--kube-controller-manager-binary",
    "kube-scheduler": "--kube-scheduler-binary",
    "etcd": "--etcd-binary",
    "kwok": "--kwok-controller-binary",
}


def _kwokctl(paths: DevPaths, binaries: Binaries, *args: str) -> int:
    """Run kwokctl with its (JSON) output appended to logs/kwokctl.log; on failure print the tail."""
    env = dict(os.environ, KWOK_WORKDIR=str(paths.kwok_home))
    cmd = [str(binaries.path("kwokctl")), "--name", paths.cluster_name, *args]
    paths.logs.mkdir(parents=True, exist_ok=True)
    log_path = paths.logs / "kwokctl.log"
    with open(log_path, "a") as log:
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=log).returncode
    if rc != 0:
        tail = log_path.read_text().splitlines()[-15:]
        print(f"kwokctl {' '.join(args[:2])} failed (exit {rc}); last lines of {log_path}:", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)
    return rc


def exists(paths: DevPaths) -> bool:
    return (paths.kwok_home / "clusters" / paths.cluster_name).is_dir()


def create(paths: DevPaths, binaries: Binaries) -> None:
    """Create (or restart) the control plane; the kubeconfig lands at paths.kubeconfig."""
    if exists(paths) and healthy(paths):
        return
    if exists(paths):
        rc = _kwokctl(paths, binaries, "start", "cluster", "--wait", "2m")
        if rc == 0 and healthy(paths):
            return
        delete(paths, binaries)
    config = write_config(paths.config_file, binaries.stages)
    flags = [f"{flag}={binaries.path(name)}" for name, flag in BINARY_FLAGS.items()]
    rc = _kwokctl(
        paths, binaries, "create", "cluster", "--runtime", "binary", "--config", str(config),
        f"--kubeconfig={paths.kubeconfig}", "--wait", "3m", *flags,
    )
    if rc != 0:
        raise RuntimeError(f"kwokctl create cluster failed (exit {rc}); logs under {paths.kwok_home}")
    wait_ready(paths)


def healthy(paths: DevPaths) -> bool:
    if not paths.kubeconfig.is_file():
        return False
    proc = subprocess.run(["kubectl", f"--kubeconfig={paths.kubeconfig}", "get", "--raw", "/readyz"],
                          capture_output=True, text=True, timeout=20)
    return proc.returncode == 0 and proc.stdout.strip() == "ok"


def wait_ready(paths: DevPaths, timeout: float = 120) -> None:
    """API ready and the default ServiceAccount present (pods need it to be admitted)."""
    kubectl = Kubectl(paths.kubeconfig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(paths) and kubectl.run("get", "serviceaccount", "default", check=False).strip():
            return
        time.sleep(1)
    raise RuntimeError(f"the dev cluster did not become ready in {timeout:.0f}s; logs under {paths.kwok_home}")


def add_nodes(paths: DevPaths, plan: PoolPlan) -> list[str]:
    nodes = pool_nodes(plan)
    if nodes:
        Kubectl(paths.kubeconfig).apply(nodes)
    return [n["metadata"]["name"] for n in nodes]


def delete(paths: DevPaths, binaries: Binaries | None) -> None:
    if binaries is not None and exists(paths):
        _kwokctl(paths, binaries, "delete", "cluster")
    shutil.rmtree(paths.kwok_home, ignore_errors=True)
    paths.kubeconfig.unlink(missing_ok=True)
