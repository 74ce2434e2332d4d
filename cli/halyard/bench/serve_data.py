"""Synthetic workload for `halyard bench serve`: prompts, lengths, arrival times.

Length distribution ("sharegpt", seeded): input and output lengths are drawn
from log-normal distributions shaped like the ShareGPT conversations commonly
used for serving benchmarks -- a long right tail with most prompts short:
input tokens ~ LogNormal(ln 180, 0.9), output tokens ~ LogNormal(ln 160, 0.8),
each clipped to [4, --max-input-len] and [4, --max-output-len]. "fixed" uses
exactly --input-len / --output-len. Prompt text is built from a fixed word
list (roughly one token per word with a BPE tokenizer); the server's `usage`
gives the exact prompt token counts reported.

"shared-prefix" (multi-tenant): every request belongs to one of
--prefix-groups tenants; a tenant's requests share its long system prompt
(--system-prompt-len words, distinct per tenant and per --seed) and differ in
a short user question (--input-len words); outputs are --output-len tokens.

Arrivals: with --request-rate R (requests/s) the gaps are Gamma(shape=b,
scale=1/(R*b)) for burstiness b; b = 1 is a Poisson process, b < 1 burstier,
b > 1 more uniform. R = inf sends everything at t=0.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

WORDS = ("the model serves requests with paged attention and continuous batching on "
         "nodes that schedule pods across spot capacity while latency objectives hold for "
         "every tenant in the cluster today").split()


@dataclass(frozen=True)
class BenchRequest:
    """One request of the workload: `prompt` text, wanted output tokens, send time (s)."""

    index: int
    prompt: str
    input_len: int
    output_len: int
    send_at: float
    system: str = ""  # shared-prefix: the tenant's system prompt (sent before the prompt)


def _lognormal(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return int(min(high, max(low, round(rng.lognormvariate(math.log(median), sigma)))))


def lengths(rng: random.Random, args) -> tuple[int, int]:
    if args.dataset == "fixed":
        return args.input_len, args.output_len
    return (_lognormal(rng, 180, 0.9, 4, args.max_input_len),
            _lognormal(rng, 160, 0.8, 4, args.max_output_len))


def prompt_text(rng: random.Random, n_words: int, index: int) -> str:
    # A distinct leading number per request keeps prefix caching from making
    # every prompt free; the rest is random words.
    words = [str(index)] + [rng.choice(WORDS) for _ in range(max(0, n_words - 1))]
    return " ".join(words)


def arrival_times(rng: random.Random, n: int, rate: float, burstiness: float) -> list[float]:
    """Send offsets in seconds from the start (non-decreasing)."""
    if math.isinf(rate):
        return [0.0] * n
    t, out = 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.gammavariate(burstiness, 1.0 / (rate * burstiness))
    return out


def system_prompt(group: int, n_words: int, seed: int) -> str:
    """Tenant `group`'s system prompt: its own words from the first one on."""
    rng = random.Random(f"tenant-{seed}-{group}")
    return f"Tenant {seed}-{group} instructions: " + " ".join(rng.choice(WORDS) for _ in range(n_words))


def shared_prefix_workload(args, rng: random.Random, times: list[float]) -> list[BenchRequest]:
    systems = [system_prompt(g, args.system_prompt_len, args.seed) for g in range(args.prefix_groups)]
    out = []
    for i in range(args.num_prompts):
        group = rng.randrange(args.prefix_groups)
        out.append(BenchRequest(i, prompt_text(rng, args.input_len, i), args.input_len, args.output_len, times[i],
                                systems[group]))
    return out


def build_workload(args) -> list[BenchRequest]:
    rng = random.Random(args.seed)
    times = arrival_times(rng, args.num_prompts, args.request_rate, args.burstiness)
    if args.dataset == "shared-prefix":
        return shared_prefix_workload(args, rng, times)
    out = []
    for i in range(args.num_prompts):
        n_in, n_out = lengths(rng, args)
        out.append(BenchRequest(i, prompt_text(rng, n_in, i), n_in, n_out, times[i]))
    return out
