"""The operator half installs and imports without the worker's heavy stack."""
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "cupy", "fastapi")


def test_base_dependencies_exclude_the_worker_stack():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    for name in HEAVY:
        assert name not in base, f"{name} must stay in an extra, not in the base install"


def test_operator_cli_does_not_import_torch():
    code = (
        "import sys\n"
        "from halyard.cli.main import build_parser\n"
        "build_parser()\n"
        "print(','.join(m for m in %r if m in sys.modules))\n" % (HEAVY,)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
