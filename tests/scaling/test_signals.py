"""Signals: exposition parsing, histogram-delta percentiles, counter resets, staleness."""
from __future__ import annotations

import pytest

from halyard_operator.signals.exposition import ExpositionError, parse_exposition, snapshot_from_text
from halyard_operator.signals.window import DeploymentWindow, counter_increase, quantile


def test_parses_labels_with_escapes_and_special_values():
    text = '# HELP x y\n# TYPE x gauge\nx{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 1.5\ny +Inf\nz{} 3 1700000000000\n'
    samples = parse_exposition(text)
    assert samples[0].labels == (("a", 'q"uote'), ("b", "back\\slash"), ("c", "new\nline"))
    assert samples[0].value == 1.5
    assert samples[1].value == float("inf")
    assert samples[2].value == 3


def test_bad_line_names_its_line_number():
    with pytest.raises(ExpositionError, match="line 2"):
        parse_exposition("ok 1\nbroken{a=\"1\" 2\n")


def test_snapshot_sums_label_sets_and_filters_model(worker_metrics):
    w = worker_metrics("chat-8b")
    w.serve(3, ttft=0.2, reason="stop")
    w.serve(2, ttft=0.2, reason="length")
    other = worker_metrics("other")
    other.serve(7, ttft=0.2)
    snap = snapshot_from_text(w.text() + other.text(), model_name="chat-8b")
    assert snap.counters["requests"] == 5
    assert snap.counters["prompt_tokens"] == 500


def test_p95_comes_from_bucket_deltas_not_lifetime_totals(worker_metrics):
    w = worker_metrics()
    w.gauges(running=4, waiting=1, kv=0.5)
    w.serve(1000, ttft=0.04)  # a long fast history before the window
    window = DeploymentWindow(window_s=60, stale_after_s=30)
    window.observe("pod-a", 0.0, snapshot_from_text(w.text()))
    w.serve(100, ttft=0.8)  # inside the window everything is slow
    window.observe("pod-a", 10.0, snapshot_from_text(w.text()))
    m = window.metrics(10.0)
    assert 0.5 < m.ttft_p95_s <= 1.0  # lifetime p95 would be under 50ms
    assert m.request_rate == pytest.approx(10.0)
    assert m.queue == 1 and m.running == 4 and m.kv_usage == 0.5
    assert not m.stale


def test_counter_reset_counts_the_new_value():
    assert counter_increase([100.0, 150.0, 20.0, 30.0]) == 50 + 20 + 10


def test_restarted_pod_does_not_produce_negative_rates(worker_metrics):
    before, after = worker_metrics(), worker_metrics()
    before.serve(500, ttft=0.1)
    after.serve(20, ttft=0.3)  # the process restarted: counters start again
    window = DeploymentWindow(window_s=60)
    window.observe("pod-a", 0.0, snapshot_from_text(before.text()))
    window.observe("pod-a", 10.0, snapshot_from_text(after.text()))
    m = window.metrics(10.0)
    assert m.request_rate == pytest.approx(2.0)
    assert 0.25 < m.ttft_p95_s <= 0.5


def test_unreachable_pod_keeps_last_values_and_is_flagged_stale(worker_metrics):
    w = worker_metrics()
    w.gauges(running=8, waiting=3, kv=0.7)
    window = DeploymentWindow(window_s=60, stale_after_s=30)
    window.observe("pod-a", 0.0, snapshot_from_text(w.text()))
    window.observe("pod-a", 15.0, None)  # scrape failed
    m = window.metrics(15.0)
    assert m.stale and m.pods_stale == 1
    assert m.running == 8 and m.queue == 3  # last good values, never zeros


def test_old_sample_turns_stale_and_deleted_pods_are_forgotten(worker_metrics):
    w = worker_metrics()
    window = DeploymentWindow(window_s=60, stale_after_s=30)
    window.observe("pod-a", 0.0, snapshot_from_text(w.text()))
    window.observe("pod-b", 50.0, snapshot_from_text(w.text()))
    assert window.metrics(50.0).pods_stale == 1
    window.retain({"pod-b"})
    assert window.metrics(50.0).pods_total == 1 and not window.metrics(50.0).stale


def test_quantile_interpolates_inside_the_bucket():
    buckets = {0.1: 50.0, 0.2: 100.0, float("inf"): 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.95, {}) is None


def test_status_block_prints_units(worker_metrics):
    w = worker_metrics()
    window = DeploymentWindow()
    window.observe("p", 0.0, snapshot_from_text(w.text()))
    w.serve(10, ttft=0.3)
    window.observe("p", 5.0, snapshot_from_text(w.text()))
    status = window.metrics(5.0).to_status()
    assert status["ttftP95"].endswith("ms") and status["requestRate"] == 2.0
