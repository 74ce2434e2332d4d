"""`halyard bench offline` runs end to end on a tiny model (figures are not asserted)."""
from __future__ import annotations

import argparse
import json


def test_bench_offline_writes_a_table_and_json(tiny_model, tmp_path, capsys):
    from halyard.bench import offline

    parser = argparse.ArgumentParser()
    offline.add_arguments(parser)
    out = tmp_path / "bench.json"
    args = parser.parse_args(["--model", str(tiny_model), "--num-requests", "4", "--max-prompt", "24",
                              "--max-output", "20", "--threads", "0", "--out", str(out)])
    assert offline.run(args) == 0
    table = capsys.readouterr().out
    assert "halyard engine" in table and "transformers one-at-a-time" in table
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["results"]] == [
        "halyard engine", "transformers one-at-a-time", "transformers static padded batch"]
    assert len({r["output_tokens"] for r in data["results"]}) == 1
    assert data["speedup_vs_one_at_a_time"] > 0


def test_bench_offline_runs_the_engine_tensor_parallel(tiny_model, tmp_path, capsys):
    from halyard.bench import offline

    parser = argparse.ArgumentParser()
    offline.add_arguments(parser)
    out = tmp_path / "bench.json"
    args = parser.parse_args(["--model", str(tiny_model), "--num-requests", "4", "--max-prompt", "24",
                              "--min-output", "4", "--max-output", "12", "--tensor-parallel-size", "2", "--skip-transformers",
                              "--out", str(out)])
    assert offline.run(args) == 0
    assert "halyard engine (TP=2)" in capsys.readouterr().out
    [result] = json.loads(out.read_text())["results"]
    assert result["output_tokens"] > 0 and result["seconds"] > 0
