"""Where the dev environment keeps its state (all under one cache root).

`HALYARD_CACHE` overrides the root (default `~/.cache/halyard`); a second
environment (e.g. the e2e suite beside a demo) uses `HALYARD_DEV_NAME` to get
its own cluster name and state directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("HALYARD_CACHE", Path.home() / ".cache" / "halyard"))


@dataclass(frozen=True)
class DevPaths:
    """State locations of one named dev environment (cluster + processes)."""

    name: str
    root: Path  # <cache>/dev/<name>

    @property
    def cluster_name(self) -> str:
        return f"halyard-{self.name}"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def kwok_home(self) -> Path:  # kwokctl's own workdir (KWOK_WORKDIR)
        return self.root / "kwok"

    @property
    def config_file(self) -> Path:
        return self.root / "kwokctl.yaml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pods(self) -> Path:  # one log file per pod container
        return self.root / "logs" / "pods"

    @property
    def pids(self) -> Path:  # pid files of processes started by `halyard dev`
        return self.root / "pids"


def dev_paths(name: str | None = None) -> DevPaths:
    name = name or os.environ.get("HALYARD_DEV_NAME", "dev")
    return DevPaths(name=name, root=cache_root() / "dev" / name)
