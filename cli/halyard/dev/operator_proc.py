"""The operator as a local process against the dev cluster (`halyard-operator`).

It gets the dev kubeconfig (flag and KUBECONFIG) and logs to `logs/operator.log`.
`kill()` is an abrupt SIGKILL (crash simulation); `stop()` is graceful.
Its config (`operator-config.yaml` in the environment's root) samples serving
metrics every 2 s over a 20 s window, so autoscaling reacts within seconds on
a laptop-sized cluster, prices the dev nodes' GPUs (status.cost) and puts
the model cache (a hostPath on a real node) in the environment's own
`model-cache/` directory, which every fake node's pods share -- like the
pods of one node; everything else keeps the production defaults.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from halyard.dev import daemons
from halyard.dev.paths import DevPaths


DEV_CONFIG = """metricsInterval: 2s
metricsWindow: 20s
currency: USD
gpuPrices:  # illustrative, as in manifests/config.yaml
  NVIDIA-H100-80GB-HBM3: {onDemand: 6.98, spot: 2.45}
  NVIDIA-L4: {onDemand: 0.80, spot: 0.30}
"""


def dev_config(paths: DevPaths) -> str:
    return DEV_CONFIG + f"modelCache:\n  hostPath: {model_cache_dir(paths)}\n"


def model_cache_dir(paths: DevPaths) -> Path:
    return paths.root / "model-cache"


def operator_argv(kubeconfig: Path, config: Path | None = None) -> list[str]:
    """Watch every namespace; no liveness listener (several dev environments may run at once)."""
    exe = Path(sys.executable).parent / "halyard-operator"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "halyard_operator.entry"]
    extra = [f"--config={config}"] if config else []
    return [*base, "--all-namespaces", f"--kubeconfig={kubeconfig}", "--liveness=off", *extra]


class OperatorProcess:
    """`name` names the daemon (pid and log file); several may run with
    `--leader-elect` in `extra_args`."""

    def __init__(self, paths: DevPaths, extra_env: dict | None = None, name: str = "operator",
                 extra_args: tuple[str, ...] = ()):
        self.paths, self.name, self.extra_args = paths, name, tuple(extra_args)
        self.env = {**os.environ, "KUBECONFIG": str(paths.kubeconfig), "PYTHONUNBUFFERED": "1",
                    **(extra_env or {})}

    @property
    def log(self) -> Path:
        return daemons.log_file(self.paths, self.name)

    @property
    def pid(self) -> int | None:
        return daemons.read_pid(self.paths, self.name)

    def start(self) -> int:
        config = self.paths.root / "operator-config.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(dev_config(self.paths))
        argv = [*operator_argv(self.paths.kubeconfig, config), *self.extra_args]
        return daemons.start(self.paths, self.name, argv, self.env)

    def stop(self) -> None:
        daemons.stop(self.paths, self.name)

    def kill(self) -> None:
        """SIGKILL, no chance to clean up: what a node failure does to the operator pod."""
        pid = self.pid
        if pid:
            os.killpg(pid, signal.SIGKILL)
            daemons.stop(self.paths, self.name, grace_s=0)

    def restart(self) -> int:
        self.stop()
        return self.start()
