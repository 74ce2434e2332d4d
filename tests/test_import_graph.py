"""The runtime packages stand alone: the operator, the worker and the router never
import the user's tools (`halyard`); the worker never imports the operator, and the operator
imports only the worker's stdlib-only option vocabulary (`halyard_worker.options`:
dtype, quantization and kernel choices shared by the CRD, the operator and the worker).
The router's image is the base install, like the operator's: it may import the
operator's torch-free modules (Kubernetes connection, /metrics parsing, wire names,
the worker option vocabulary they pull in), never the worker itself or torch."""
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
ALLOWED = {"halyard_operator": ("halyard_worker.options",), "halyard_worker": (), "halyard_router": ()}
SHARED = ROOT / "worker" / "halyard_worker" / "options.py"


def imported_modules(path: Path) -> set[str]:
    """Module names a module imports (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def imported_roots(path: Path) -> set[str]:
    """Top-level package names a module imports (absolute imports only)."""
    return {name.split(".")[0] for name in imported_modules(path)}


@pytest.mark.parametrize("package", sorted(RUNTIME))
def test_runtime_package_imports_no_tools(package):
    offenders = []
    for path in sorted(RUNTIME[package].rglob("*.py")):
        bad = {m for m in imported_modules(path)
               if m.split(".")[0] in FORBIDDEN[package] and m not in ALLOWED[package]}
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    assert not offenders, "\n".join(offenders)


def test_shared_vocabulary_imports_only_the_standard_library():
    assert imported_roots(SHARED) <= set(sys.stdlib_module_names) | {"__future__"}


def test_import_scan_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom halyard.sim import runner\nfrom . import sibling\n")
    assert imported_roots(module) == {"os", "halyard"}


def test_operator_entry_point_loads_without_tools_or_torch():
    code = ("import sys, halyard_operator.main, halyard_operator.handlers\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('halyard', 'halyard_worker', 'torch', 'numpy'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "halyard_worker,halyard_worker.options"


def test_router_entry_point_loads_without_tools_worker_or_torch():
    code = ("import sys, halyard_router.main, halyard_router.app, halyard_router.discovery\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('halyard', 'halyard_worker', 'torch', 'numpy'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("", "halyard_worker,halyard_worker.options")


def test_tools_package_reaches_both_runtimes():
    code = "import halyard.cli.main, halyard.sim.runner, halyard.dev.podenv; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


OPERATOR = RUNTIME["halyard_operator"]
# Inside the operator: pure layers never reach up into I/O or the reconcile.
LAYERS = {
    "policy": ("halyard_operator.reconcile", "halyard_operator.kube", "halyard_operator.observe.live",
               "halyard_operator.handlers"),
    "signals": ("halyard_operator.policy", "halyard_operator.reconcile", "halyard_operator.observe.live"),
    "observe": ("halyard_operator.policy", "halyard_operator.reconcile", "halyard_operator.signals"),
}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_operator_layers_do_not_loop(layer):
    offenders = [f"{path.relative_to(ROOT)} imports {name}"
                 for path in sorted((OPERATOR / layer).rglob("*.py"))
                 for name in sorted(imported_modules(path))
                 if any(name == bad or name.startswith(bad + ".") for bad in LAYERS[layer])]
    assert not offenders, "\n".join(offenders)


def test_observations_import_only_the_standard_library():
    assert imported_roots(OPERATOR / "observe" / "types.py") <= set(sys.stdlib_module_names) | {"__future__"}
