"""The built wheel, installed the way users install it (not editable), works on
its own: package data is inside it and the console scripts run from a fresh
virtual environment, far from the source checkout.

For speed the fresh environment takes its third-party dependencies from the test
environment's site-packages (added as a plain path, so the test environment's
editable install of this tree is not active there) and the wheel is installed
with `--no-deps`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "operator", "worker", "router", "cli")
PACKAGE_DATA = ("halyard/sim/examples/trace.csv", "halyard/sim/examples/deployments.yaml",
                "halyard/sim/examples/cluster.yaml", "halyard/sim/examples/profile-8b-h100.json",
                "halyard/sim/examples/fleet-10k/deployments.yaml", "halyard_worker/kernels/rotary.cu",
                "halyard_worker/kernels/common.cuh")


def run(cmd, cwd, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, venv bin dir) of a wheel built from a copy of the sources."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                 "-w", tmp / "dist", src], cwd=tmp)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp / "dist").glob("halyard-*.whl"))
    venv = tmp / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       cwd=tmp).stdout.strip())
    (purelib / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel], cwd=tmp)
    assert pip.returncode == 0, pip.stderr
    return wheel, venv / "bin", tmp


def test_wheel_carries_package_data_and_no_tests(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in PACKAGE_DATA if name not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not [n for n in names if n.startswith(("tests/", "e2e/", "operator/", "worker/", "router/", "cli/"))]


def test_packages_come_from_the_installed_wheel(installed):
    _, bin_dir, tmp = installed
    code = ("import halyard, halyard_operator, halyard_worker, halyard_router; "
            "print(halyard.__file__, halyard_operator.__file__, halyard_router.__file__)")
    out = run([bin_dir / "python", "-c", code], cwd=tmp)
    assert out.returncode == 0, out.stderr
    assert all(str(tmp / "venv") in path and str(ROOT) not in path for path in out.stdout.split())


def test_cli_smoke_commands_run_from_the_wheel(installed):
    _, bin_dir, tmp = installed
    version = run([bin_dir / "halyard", "--version"], cwd=tmp)
    assert version.returncode == 0 and version.stdout.startswith("halyard ")
    helped = run([bin_dir / "halyard", "--help"], cwd=tmp)
    assert helped.returncode == 0 and all(group in helped.stdout for group in ("dev", "demo", "bench", "sim"))
    for script in ("halyard-operator", "halyard-worker", "halyard-router"):
        out = run([bin_dir / script, "--help"], cwd=tmp)
        assert out.returncode == 0 and "usage:" in out.stdout, (script, out.stderr)


def test_sim_runs_on_the_packaged_examples_and_trace(installed):
    _, bin_dir, tmp = installed
    spike = run([bin_dir / "halyard", "sim", "--workload", "spike", "--duration", "10m", "--rate", "40",
                 "--quiet", "--no-plots", "--out", tmp / "spike"], cwd=tmp)
    assert spike.returncode == 0, spike.stderr
    examples = run([bin_dir / "python", "-c", "from halyard.cli.sim import EXAMPLES; print(EXAMPLES)"], cwd=tmp)
    trace = Path(examples.stdout.strip()) / "trace.csv"
    assert str(tmp / "venv") in str(trace) and trace.is_file()
    replay = run([bin_dir / "halyard", "sim", "--trace", trace, "--duration", "5m", "--policies", "halyard",
                  "--quiet", "--no-plots", "--out", tmp / "trace"], cwd=tmp)
    assert replay.returncode == 0, replay.stderr
    summary = json.loads((tmp / "trace" / "summary.json").read_text())
    assert summary["policies"]["halyard"]["total"]["requests"] > 0
