"""Serving metrics with vLLM's benchmark_serving definitions (pure functions).

TTFT: request sent -> first content chunk. ITL: gaps between consecutive
content chunks. TPOT: (e2e - ttft) / (output_tokens - 1), per request with
more than one output token. E2E: sent -> last byte. Output tokens come from
the server's `usage` (stream_options.include_usage). Goodput: completed
requests meeting every given SLO, per second. Times are seconds here and
milliseconds in the report.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class RequestResult:
    """Outcome of one request; times in seconds."""

    success: bool = False
    error: str = ""
    prompt_tokens: int = 0
    output_tokens: int = 0
    ttft: float = 0.0
    e2e: float = 0.0
    itl: list[float] = field(default_factory=list)

    @property
    def tpot(self) -> float | None:
        if self.output_tokens <= 1:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    if not values:
        return 0.0
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def _summary(values: list[float]) -> dict:
    ms = [v * 1000.0 for v in values]
    mean = sum(ms) / len(ms) if ms else 0.0
    return {"mean_ms": mean, "median_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99)}


def meets_slo(r: RequestResult, goodput: dict[str, float]) -> bool:
    """goodput: {"ttft": ms, "tpot": ms, "e2el": ms}; all given limits must hold."""
    checks = {"ttft": r.ttft, "tpot": r.tpot if r.tpot is not None else 0.0, "e2el": r.e2e}
    return all(checks[key] * 1000.0 <= limit for key, limit in goodput.items())


def summarize(results: list[RequestResult], duration: float, goodput: dict[str, float]) -> dict:
    ok = [r for r in results if r.success]
    total_in = sum(r.prompt_tokens for r in ok)
    total_out = sum(r.output_tokens for r in ok)
    out = {
        "duration_s": duration,
        "completed": len(ok),
        "failed": len(results) - len(ok),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": len(ok) / duration if duration else 0.0,
        "output_throughput": total_out / duration if duration else 0.0,
        "total_token_throughput": (total_in + total_out) / duration if duration else 0.0,
        "ttft": _summary([r.ttft for r in ok]),
        "tpot": _summary([r.tpot for r in ok if r.tpot is not None]),
        "itl": _summary([gap for r in ok for gap in r.itl]),
        "e2el": _summary([r.e2e for r in ok]),
        "errors": sorted({r.error for r in results if r.error})[:10],
    }
    if goodput:
        good = sum(1 for r in ok if meets_slo(r, goodput))
        out["goodput"] = good / duration if duration else 0.0
        out["goodput_slo_ms"] = dict(goodput)
    return out


def result_dict(r: RequestResult) -> dict:
    return asdict(r)
