"""`halyard-operator` command line: scope and config errors exit non-zero."""
from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "halyard_operator.entry", *args],
                          capture_output=True, text=True, timeout=60)


def test_scope_is_required():
    out = run()
    assert out.returncode == 2 and "--all-namespaces" in out.stderr


def test_bad_config_is_reported_before_connecting(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("tiers: {gold: {bogus: 1}}\n")
    out = run("--all-namespaces", "--config", str(bad))
    assert out.returncode == 2 and "tiers.gold.bogus: unknown key" in out.stderr


def test_operator_never_imports_torch():
    code = ("import sys, halyard_operator.main, halyard_operator.handlers; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_console_script_leaves_the_official_client_library_unloaded():
    """kopf would import `kubernetes` (18 MB) only to recognise its classes; the operator never uses it."""
    code = ("import sys\nfrom halyard_operator.entry import main\nmain(['--all-namespaces', '--config', '/nonexistent'])\n"
            "import kopf\nprint(sys.modules.get('kubernetes') is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr
