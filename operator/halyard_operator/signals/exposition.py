"""Prometheus text exposition format (0.0.4) -> samples, and vLLM samples -> PodSnapshot."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


class ExpositionError(ValueError):
    """A line that is not valid Prometheus text format (message names the line number)."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _parse_labels(text: str, lineno: int) -> tuple[tuple[tuple[str, str], ...], int]:
    """Parse `{a="x",b="y"}` starting at text[0] == '{'; returns (labels, index after '}')."""
    labels, i = [], 1
    while True:
        while i < len(text) and text[i] in " ,":
            i += 1
        if i < len(text) and text[i] == "}":
            return tuple(labels), i + 1
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= len(text) or text[eq + 1] != '"':
            raise ExpositionError(f"line {lineno}: bad label set")
        key, i, value = text[i:eq].strip(), eq + 2, []
        while i < len(text) and text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                value.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
                i += 2
            else:
                value.append(text[i])
                i += 1
        if i >= len(text):
            raise ExpositionError(f"line {lineno}: unterminated label value")
        labels.append((key, "".join(value)))
        i += 1


def _parse_value(text: str, lineno: int) -> float:
    token = text.split()[0] if text.split() else ""
    try:
        return float(token)  # float() accepts NaN, +Inf, -Inf
    except ValueError:
        raise ExpositionError(f"line {lineno}: {token!r} is not a sample value") from None


def parse_exposition(text: str) -> list[Sample]:
    """Every sample line of a /metrics body (comments and blank lines skipped)."""
    samples = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace >= 0 and (space < 0 or brace < space):
            name = line[:brace]
            labels, end = _parse_labels(line[brace:], lineno)
            rest = line[brace + end:]
        else:
            if space < 0:
                raise ExpositionError(f"line {lineno}: sample without a value")
            name, labels, rest = line[:space], (), line[space:]
        samples.append(Sample(name, labels, _parse_value(rest, lineno)))
    return samples


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts keyed by upper bound (+inf included), plus count and sum."""

    buckets: tuple[tuple[float, float], ...] = ()  # sorted (le, cumulative count)
    count: float = 0.0
    total: float = 0.0


COUNTERS = {
    "requests": "vllm:request_success_total",
    "prompt_tokens": "vllm:prompt_tokens_total",
    "generation_tokens": "vllm:generation_tokens_total",
    "preemptions": "vllm:num_preemptions_total",
    "prefill_tokens": "halyard:prefill_tokens_total",
    "prefill_budget": "halyard:prefill_budget_tokens_total",
}
GAUGES = {
    "running": "vllm:num_requests_running",
    "waiting": "vllm:num_requests_waiting",
    "kv_usage": "vllm:kv_cache_usage_perc",
}
HISTOGRAMS = {
    "ttft": "vllm:time_to_first_token_seconds",
    "itl": "vllm:inter_token_latency_seconds",
    "e2e": "vllm:e2e_request_latency_seconds",
}


@dataclass(frozen=True)
class PodSnapshot:
    """One scrape of one worker pod, summed over label sets (e.g. finished_reason).

    Counters and histogram buckets are cumulative since the process started.
    """

    counters: dict = field(default_factory=dict)  # key of COUNTERS -> float
    gauges: dict = field(default_factory=dict)  # key of GAUGES -> float
    histograms: dict = field(default_factory=dict)  # key of HISTOGRAMS -> Histogram


def _histogram(samples: list[Sample], base: str) -> Histogram:
    buckets: dict[float, float] = {}
    count = total = 0.0
    for s in samples:
        if s.name == base + "_bucket":
            le = s.label("le")
            bound = math.inf if le in ("+Inf", "Inf", "inf") else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + s.value
        elif s.name == base + "_count":
            count += s.value
        elif s.name == base + "_sum":
            total += s.value
    return Histogram(tuple(sorted(buckets.items())), count, total)


def snapshot_from_text(text: str, model_name: str | None = None) -> PodSnapshot:
    """Parse a worker's /metrics body; keep only `model_name`'s series when given."""
    samples = [s for s in parse_exposition(text)
               if model_name is None or s.label("model_name") in (None, model_name)]
    by_name: dict[str, float] = {}
    for s in samples:
        by_name[s.name] = by_name.get(s.name, 0.0) + s.value
    counters = {key: by_name.get(name, 0.0) for key, name in COUNTERS.items()}
    gauges = {key: by_name[name] for key, name in GAUGES.items() if name in by_name}
    hists = {key: _histogram(samples, name) for key, name in HISTOGRAMS.items()}
    return PodSnapshot(counters, gauges, hists)
