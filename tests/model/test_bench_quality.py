"""`halyard bench quality`: its metrics and a run on a tiny model."""
from __future__ import annotations

import json
import math

import torch

from halyard.bench.quality import compare_logits, default_text, windows
from halyard.cli.main import main


def test_windows_cover_the_text_without_overlap():
    assert windows(list(range(10)), 9, 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # a 1-token tail scores nothing
    assert windows(list(range(10)), 10, 5) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_metrics_of_identical_and_of_different_distributions():
    ref = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    targets = torch.tensor([0, 1])
    nll_ref, nll_cand, agree, kl = compare_logits(ref, ref.clone(), targets)
    assert nll_ref == nll_cand and agree == 2 and abs(kl) < 1e-6
    cand = torch.tensor([[0.0, 2.0, 0.0], [0.0, 3.0, 0.0]])
    _, nll_cand, agree, kl = compare_logits(ref, cand, targets)
    p = torch.softmax(ref[0], -1)
    expected = float((p * (torch.log_softmax(ref[0], -1) - torch.log_softmax(cand[0], -1))).sum())
    assert agree == 1 and math.isclose(kl, expected, rel_tol=1e-5) and nll_cand > nll_ref


def test_default_text_is_the_stdlib_pydoc_topics():
    name, text = default_text()
    assert "pydoc_data/topics.py" in name and len(text) > 100_000 and "assignment" in text


def test_bench_quality_reports_a_table_and_json(tiny_model, tmp_path, capsys):
    out = tmp_path / "q.json"
    assert main(["bench", "quality", "--model", str(tiny_model), "--quantization", "int4",
                 "--tokens", "96", "--window", "32", "--threads", "0", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["tokens"] == 93 and result["quantization"] == "int4"
    assert result["mean_kl"] > 0 and 0 < result["top1_agreement"] <= 1
    assert result["linear_weight_bytes"] < result["reference_linear_weight_bytes"]
    assert "top-1 agreement" in capsys.readouterr().out
