"""The repository layout never shadows the standard library."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_stdlib_operator_not_shadowed_from_repo_root():
    out = subprocess.run(
        [sys.executable, "-c", "import operator; print(operator.itemgetter(1)([5, 7]))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "7"


def test_source_folders_are_not_packages():
    assert not (ROOT / "operator" / "__init__.py").exists()
    assert not (ROOT / "worker" / "__init__.py").exists()
    assert not (ROOT / "router" / "__init__.py").exists()


def test_halyard_without_a_command_prints_help_and_fails():
    out = subprocess.run([sys.executable, "-m", "halyard.cli.main"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert "usage: halyard" in out.stdout


def test_unfinished_command_says_so_and_exits_2(capsys):
    from halyard.cli.main import not_implemented

    assert not_implemented("bench nothing")(None) == 2
    assert "'bench nothing' is not implemented yet" in capsys.readouterr().err
