"""Session fixtures of the e2e suite: a real control plane, fake GPU pools, the
pod runner and the operator as local processes.

The control-plane binaries are built from Go modules when the cache lacks them
(a cold build runs before the first test, outside any test timeout). Set
HALYARD_E2E_KEEP=1 to leave the cluster up after the run (for debugging; the
next run reuses it). The logs of the last run (operator, pod runner, every
worker process, kwokctl) are kept in ~/.cache/halyard/dev/e2e-last-logs/.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from e2e_kube import wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NAME = "e2e"


def pytest_collection_finish(session):
    """Build the binaries (cold: many minutes) before any test timeout starts, with output shown."""
    if session.items and not session.config.option.collectonly:
        from halyard.dev.binaries import ensure_binaries

        capture = session.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            started = time.monotonic()
            root = ensure_binaries().root
            print(f"\ncontrol-plane binaries ready in {time.monotonic() - started:.0f}s: {root}", file=sys.stderr)


def pytest_collection_modifyitems(items):
    for item in items:
        if "e2e" not in item.keywords:
            raise pytest.UsageError(f"{item.nodeid}: every test under e2e/ must be marked e2e")


@dataclass
class DevEnv:
    """The running environment the tests talk to."""

    paths: object  # halyard.dev.paths.DevPaths
    kubectl: object  # halyard.dev.kube.Kubectl

    @property
    def kubeconfig(self) -> Path:
        return self.paths.kubeconfig


@pytest.fixture(scope="session")
def dev_env():
    from halyard.dev import environment
    from halyard.dev.install import install
    from halyard.dev.kube import Kubectl
    from halyard.dev.nodes import PoolPlan
    from halyard.dev.paths import dev_paths

    paths = dev_paths(NAME)
    environment.up(paths, PoolPlan(on_demand_nodes=2, spot_nodes=2, gpus_per_node=2, system_nodes=1))
    kubectl = Kubectl(paths.kubeconfig)
    install(kubectl, ROOT)
    yield DevEnv(paths, kubectl)
    if os.environ.get("HALYARD_E2E_KEEP") != "1":
        environment.down(paths, keep_logs=paths.root.parent / f"{NAME}-last-logs")


@pytest.fixture(scope="session")
def kubectl(dev_env):
    return dev_env.kubectl


@pytest.fixture(scope="session")
def operator(dev_env):
    """The operator as a local process; `.restart()` / `.kill()` for failure tests."""
    from halyard.dev.operator_proc import OperatorProcess

    proc = OperatorProcess(dev_env.paths)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def namespace(kubectl, request):
    """A fresh namespace per test, deleted afterwards (children go with it)."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + f"-{int(time.time()) % 100000}"
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def model_uri(tmp_path_factory):
    """file:// URI of a tiny model built for the session."""
    from halyard.testing.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
    return f"file://{Path(path).resolve()}"


@pytest.fixture(scope="session")
def smollm2_uri():
    """file:// URI of the real SmolLM2-135M-Instruct (float32 HF directory made from the wheel's GGUF)."""
    from halyard.testing.smollm2 import hf_reference_dir

    return f"file://{hf_reference_dir().resolve()}"


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible server (moto, server mode) on 127.0.0.1, and the env a pod needs for it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "e2e",
           "AWS_SECRET_ACCESS_KEY": "e2e", "AWS_DEFAULT_REGION": "us-east-1"}
    server.stop()


@pytest.fixture(scope="session")
def nodes(kubectl):
    def get() -> dict[str, dict]:
        return {n["metadata"]["name"]: n for n in kubectl.items("nodes")}

    wait_for(lambda: len(get()) >= 4, 60, "the fake GPU nodes")
    return get
