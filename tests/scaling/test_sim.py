"""`halyard sim` end to end on the shipped examples (small runs)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from halyard.cli.main import main
from halyard.cli.sim import EXAMPLES


def test_sim_writes_summary_plots_and_events(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["sim", "--workload", "spike", "--duration", "40m", "--rate", "80", "--quiet", "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    policies = summary["policies"]
    assert set(policies) == {"halyard", "static-peak", "reactive", "all-spot"}
    for block in policies.values():
        total = block["total"]
        assert 0.0 <= total["slo_attainment"] <= 1.0
        assert total["requests"] > 100_000 and total["cost"] > 0
        assert set(total["gpu_hours"]) == {"h100-on-demand", "h100-spot"}
        assert set(block["deployments"]) == {"team-a/chat-8b", "team-b/support-8b", "team-c/summarize-8b"}
    # every policy saw the same arrivals
    assert len({b["total"]["requests"] for b in policies.values()}) == 1
    # static on-demand never uses spot; all-spot never uses on-demand
    assert policies["static-peak"]["total"]["gpu_hours"]["h100-spot"] == 0
    assert policies["all-spot"]["total"]["gpu_hours"]["h100-on-demand"] == 0
    for name in ("load.png", "replicas.png", "latency.png", "cost.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "Scaled team-" in (out / "events.log").read_text()
    assert "halyard" in capsys.readouterr().out


def test_autoscaling_with_spot_is_cheaper_than_static_peak_on_a_diurnal_day(tmp_path):
    out = tmp_path / "diurnal"
    assert main(["sim", "--workload", "diurnal", "--duration", "8h", "--quiet", "--no-plots",
                 "--policies", "halyard,static-peak", "--out", str(out)]) == 0
    total = {k: v["total"] for k, v in json.loads((out / "summary.json").read_text())["policies"].items()}
    assert total["halyard"]["cost"] < 0.8 * total["static-peak"]["cost"]
    assert total["halyard"]["slo_attainment"] > 0.98


def test_trace_input(tmp_path):
    out = tmp_path / "trace"
    assert main(["sim", "--trace", str(EXAMPLES / "trace.csv"), "--duration", "30m", "--quiet", "--no-plots",
                 "--profile", str(EXAMPLES / "profile-8b-h100.json"), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = (EXAMPLES / "trace.csv").read_text().splitlines()[1:]
    inside = sum(1 for row in rows if float(row.split(",")[0]) < 1800)
    assert summary["policies"]["halyard"]["total"]["requests"] == inside
    per_dep = summary["policies"]["halyard"]["deployments"]
    assert per_dep["team-a/chat-8b"]["requests"] > per_dep["team-b/support-8b"]["requests"]


@pytest.mark.parametrize("args,message", [
    (["--policies", "halyard,magic"], "--policies: unknown magic"),
    (["--cluster", "{missing}"], "No such file"),
])
def test_bad_input_is_named(tmp_path, capsys, args, message):
    args = [a.replace("{missing}", str(tmp_path / "nope.yaml")) for a in args]
    assert main(["sim", "--quiet", "--out", str(tmp_path / "x"), *args]) == 2
    assert message in capsys.readouterr().err


def test_bad_manifest_names_the_field(tmp_path, capsys):
    bad = tmp_path / "d.yaml"
    bad.write_text((EXAMPLES / "deployments.yaml").read_text().replace("maxReplicas: 60", "maxReplicas: -1", 1))
    assert main(["sim", "--deployments", str(bad), "--quiet", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "team-a/chat-8b" in err and "spec.scaling.maxReplicas" in err


def test_policy_signal_and_sim_packages_never_import_torch():
    code = ("import sys, halyard_operator.policy.autoscaler, halyard_operator.policy.capacity, "
            "halyard_operator.policy.tiers, halyard_operator.policy.interruption, halyard_operator.signals.scraper, "
            "halyard.sim.runner, halyard.cli.sim; assert 'torch' not in sys.modules, 'torch'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent)
