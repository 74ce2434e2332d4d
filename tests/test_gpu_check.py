"""`make gpu-check` collects only the gpu-marked test files, and none of them (nor
the benchmarks it runs) needs the server or operator stack (absent on the GPU machine)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"fastapi", "uvicorn", "kopf", "httpx", "openai", "kmock"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_gpu_check_collects_every_gpu_test_file_and_nothing_else():
    from halyard.bench.gpu_check import gpu_test_files

    files = gpu_test_files()
    assert "tests/kernels/test_kernel_gpu_decode_graphs.py" in files
    assert "tests/kernels/test_kernel_gpu_engine.py" in files
    assert all("mark.gpu" in (ROOT / f).read_text() for f in files)
    assert not any(f.startswith("tests/server/") for f in files)


def test_nothing_on_the_gpu_check_path_imports_the_server_stack():
    from halyard.bench.gpu_check import gpu_test_files

    paths = [ROOT / f for f in gpu_test_files()]
    paths += [ROOT / "tests/conftest.py", ROOT / "tests/kernels/kernel_helpers.py"]
    paths += [ROOT / "cli/halyard/bench" / n for n in ("gpu_check.py", "gpu_decode.py", "kernels.py", "kernels_gpu.py")]
    for path in paths:
        assert not imported_roots(path) & FORBIDDEN, path
