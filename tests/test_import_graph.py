"""The runtime packages stand alone: the operator, the worker and the router never
import the user's tools (`halyard`); the operator and the worker never import each
other. The router (its image is the base install, like the operator's) may import
the operator's torch-free modules (Kubernetes connection, /metrics parsing, wire
names) but never the worker or torch."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = {"halyard_operator": ROOT / "operator" / "halyard_operator",
           "halyard_worker": ROOT / "worker" / "halyard_worker",
           "halyard_router": ROOT / "router" / "halyard_router"}
FORBIDDEN = {"halyard_operator": ("halyard", "halyard_worker", "halyard_router", "torch"),
             "halyard_worker": ("halyard", "halyard_operator", "halyard_router"),
             "halyard_router": ("halyard", "halyard_worker", "torch", "transformers")}


def imported_roots(path: Path) -> set[str]:
    """Top-level package names a module imports (absolute imports only)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(RUNTIME))
def test_runtime_package_imports_no_tools(package):
    offenders = []
    for path in sorted(RUNTIME[package].rglob("*.py")):
        bad = imported_roots(path) & set(FORBIDDEN[package])
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    assert not offenders, "\n".join(offenders)


def test_import_scan_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom halyard.sim import runner\nfrom . import sibling\n")
    assert imported_roots(module) == {"os", "halyard"}


def test_operator_entry_point_loads_without_tools_or_torch():
    code = ("import sys, halyard_operator.main, halyard_operator.handlers\n"
            "print(','.join(sorted(m for m in ('halyard', 'halyard_worker', 'torch') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_router_entry_point_loads_without_tools_worker_or_torch():
    code = ("import sys, halyard_router.main, halyard_router.app, halyard_router.discovery\n"
            "print(','.join(sorted(m for m in ('halyard', 'halyard_worker', 'torch') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_tools_package_reaches_both_runtimes():
    code = "import halyard.cli.main, halyard.sim.runner, halyard.dev.podenv; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
