"""Small kubectl wrapper used by the dev tooling (apply, get, wait)."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml


class KubectlError(RuntimeError):
    """kubectl exited non-zero; `stderr` holds the API server's message."""

    def __init__(self, args: list[str], stderr: str):
        super().__init__(f"kubectl {' '.join(args)}: {stderr.strip()}")
        self.stderr = stderr


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one kubeconfig."""

    kubeconfig: Path

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        cmd = ["kubectl", f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise KubectlError(list(args), proc.stderr)
        return proc.stdout

    def apply(self, objects: list[dict] | dict, *extra: str) -> str:
        docs = objects if isinstance(objects, list) else [objects]
        return self.run("apply", "-f", "-", *extra, stdin=yaml.safe_dump_all(docs))

    def apply_file(self, path: Path | str, *extra: str) -> str:
        return self.run("apply", "-f", str(path), *extra)

    def get_json(self, *args: str) -> dict:
        return json.loads(self.run("get", *args, "-o", "json"))

    def items(self, *args: str) -> list[dict]:
        return self.get_json(*args).get("items", [])
