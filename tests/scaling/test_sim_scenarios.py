"""Built-in scenarios run by name, and the tier arbiter holds critical through contention."""
from __future__ import annotations

import json

from halyard.cli.main import main
from halyard.sim.scenario import BUILTIN, load_scenario


def test_every_builtin_scenario_loads_with_its_shock():
    loaded = {name: load_scenario(name) for name in BUILTIN}
    assert loaded["spot-storm"].pools["spot"].reclaims[0].share == 0.8
    assert loaded["stock-out"].pools["spot"].stockouts
    assert loaded["drift"].pools["spot"].price_changes
    assert max(f for _, f in loaded["long-context"].prompt_profile) == 4
    assert max(f for _, f in loaded["surge"].rate_profile) == 3


def test_unknown_scenario_is_named(tmp_path, capsys):
    assert main(["sim", "--scenario", "tsunami", "--quiet", "--out", str(tmp_path / "x")]) == 2
    assert "tsunami" in capsys.readouterr().err


def test_under_contention_critical_keeps_its_slo_and_batch_is_shed_first(tmp_path):
    out = tmp_path / "tiers"
    # 24 GPUs; the 1.6x peak (from 75 min) needs more than that
    assert main(["sim", "--scenario", "tier-contention", "--duration", "110m", "--policies", "halyard",
                 "--quiet", "--no-plots", "--out", str(out)]) == 0
    per = json.loads((out / "summary.json").read_text())["policies"]["halyard"]["deployments"]
    critical, standard, batch = (per[k]["slo_attainment"] for k in
                                 ("team-b/support-8b", "team-a/chat-8b", "team-c/summarize-8b"))
    assert critical >= 0.995
    assert batch < standard and batch < critical
    events = (out / "events.log").read_text()
    assert "team-c/summarize-8b" in events and "the tier arbiter grants" in events


def test_bench_scenarios_writes_one_table(tmp_path):
    assert main(["bench", "scenarios", "--scenarios", "spot-storm", "--seeds", "0", "--duration", "5m",
                 "--out", str(tmp_path)]) == 0
    table = (tmp_path / "table.md").read_text()
    assert table.count("| spot-storm | 0 |") == 4 and "vs reactive" in table
