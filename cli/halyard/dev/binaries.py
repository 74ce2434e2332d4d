"""Control-plane binaries built from Go modules and cached per pinned version.

The pins and the build live in `e2e/toolchain/` (wrapper go.mod/go.sum files
and `build.sh`); this module finds that directory, runs the script (a no-op
when the versioned cache directory is complete) and returns the paths.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from halyard.dev.paths import cache_root

NAMES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok", "kwokctl")


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of one complete, versioned set of control-plane binaries."""

    root: Path

    def path(self, name: str) -> Path:
        assert name in NAMES, name
        return self.root / name

    @property
    def stages(self) -> Path:  # kwok's default Stage files copied at build time
        return self.root / "stages"


def source_root() -> Path:
    """The source checkout this package was installed from (editable install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "e2e" / "toolchain" / "build.sh").is_file():
            return parent
    raise RuntimeError(
        "e2e/toolchain/build.sh not found above "
        f"{here}; install halyard editable from a source checkout (make venv)"
    )


def toolchain_dir() -> Path:
    """`e2e/toolchain`: pinned wrapper modules and the build script."""
    return source_root() / "e2e" / "toolchain"


def ensure_binaries(log=sys.stderr) -> Binaries:
    """Build (cold: tens of minutes) or reuse the cached binaries."""
    if shutil.which("go") is None:
        raise RuntimeError("Go is required to build the control plane; install Go >= 1.24 and retry")
    env = dict(os.environ, HALYARD_BIN_ROOT=str(cache_root() / "bin"))
    script = toolchain_dir() / "build.sh"
    result = subprocess.run(
        ["nice", "-n", "10", "bash", str(script)], env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the control-plane binaries failed (exit {result.returncode}); see the log above")
    root = Path(result.stdout.strip().splitlines()[-1])
    missing = [n for n in NAMES if not (root / n).is_file()]
    if missing:
        raise RuntimeError(f"binary build finished but {missing} are missing under {root}")
    return Binaries(root=root)
