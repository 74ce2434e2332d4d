"""`halyard bench quality`: what quantization costs in model quality.

Loads `--model` twice through the engine's own loader (`build_runner`): once
unquantized (the reference) and once with `--quantization`, runs both over
the same windows of real English text, and reports perplexity (both), the
candidate's change in perplexity, top-1 agreement (the candidate's most
likely next token equals the reference's) and the mean KL divergence
KL(reference || candidate) per token, as a table and as JSON.

Default text: the help topics of the Python documentation shipped in the
standard library (`pydoc_data/topics.py`, the language reference's prose),
written by the CPython authors; `--text FILE` takes any UTF-8 file. The
int4-awq calibration (unless `--calibration-text` is given) is the engine's
built-in sample of stdlib module docstrings, which does not overlap it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

QUANTIZATIONS = ("none", "int8", "int4", "int4-awq")


@dataclass(frozen=True)
class Quality:
    """One candidate against the reference on `tokens` scored tokens."""

    model: str
    quantization: str
    group_size: int | None  # int4 groups asked for (a pre-quantized file keeps its own); None: not int4
    text: str
    tokens: int
    window: int
    reference_perplexity: float
    perplexity: float
    perplexity_change_pct: float
    top1_agreement: float
    mean_kl: float
    linear_weight_bytes: int
    reference_linear_weight_bytes: int
    seconds: float
    quantized_load_seconds: float  # loading the candidate: reading, calibrating and quantizing


def default_text() -> tuple[str, str]:
    """(source name, text): the stdlib's pydoc topics in key order."""
    from pydoc_data.topics import topics

    return "pydoc_data/topics.py (Python stdlib)", "\n\n".join(topics[k] for k in sorted(topics))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory or .gguf file")
    parser.add_argument("--quantization", choices=QUANTIZATIONS, default="int8")
    parser.add_argument("--text", help="UTF-8 text file to evaluate on (default: the stdlib's pydoc topics)")
    parser.add_argument("--group-size", type=int, default=None,
                        help="int4 / int4-awq group size, as the worker's --quantization-group-size "
                             "(default: the engine's)")
    parser.add_argument("--calibration-text", help="calibration text file (int4-awq; default: built-in)")
    parser.add_argument("--tokens", type=int, default=4096, help="tokens of text to score (default 4096)")
    parser.add_argument("--window", type=int, default=512, help="tokens per independent window")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--json", help="write the result as JSON to this file")


def windows(ids: list[int], tokens: int, window: int) -> list[list[int]]:
    """Consecutive non-overlapping windows covering the first `tokens` ids."""
    ids = ids[:tokens]
    return [ids[i:i + window] for i in range(0, len(ids), window) if len(ids[i:i + window]) > 1]


def compare_logits(ref, cand, targets) -> tuple[float, float, int, float]:
    """ref, cand: [T, V] float32 logits; targets: [T] next tokens ->
    (reference NLL sum, candidate NLL sum, top-1 agreements, KL sum)."""
    import torch

    ref_lp, cand_lp = torch.log_softmax(ref, -1), torch.log_softmax(cand, -1)
    nll_ref = -ref_lp.gather(1, targets[:, None]).sum().item()
    nll_cand = -cand_lp.gather(1, targets[:, None]).sum().item()
    agree = int((ref.argmax(-1) == cand.argmax(-1)).sum())
    kl = (ref_lp.exp() * (ref_lp - cand_lp)).sum().item()
    return nll_ref, nll_cand, agree, kl


def _load(model: str, quantization: str, calibration: tuple[str, ...], window: int, group_size: int):
    from halyard_worker.engine.setup import build_runner
    from halyard_worker.engine.types import EngineConfig

    config = EngineConfig(model=model, dtype="float32", device="cpu", max_model_len=window + 1,
                          max_num_seqs=1, kernels="torch",
                          quantization=None if quantization == "none" else quantization,
                          quantization_calibration=calibration, quantization_group_size=group_size)
    built = build_runner(config)
    return built.runner.model, built.tokenizer


def linear_bytes(model) -> int:
    """Bytes held by the decoder layers' linear weights (what quantization shrinks)."""
    return sum(b.numel() * b.element_size() for layer in model.layers
               for name, b in list(layer.named_parameters()) + list(layer.named_buffers())
               if "proj" in name and not name.endswith("bias"))


def _logits(model, ids):
    from halyard_worker.model.calibrate import run_prefill

    return model.compute_logits(run_prefill(model, ids))


def evaluate(args) -> Quality:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    source, text = default_text() if not args.text else (args.text, open(args.text, encoding="utf-8").read())
    calibration = ()
    if args.calibration_text:
        from halyard_worker.server.config import _read_calibration

        calibration = _read_calibration(args.calibration_text)
    from halyard_worker.options import INT4_DEFAULT_GROUP_SIZE

    group = args.group_size or INT4_DEFAULT_GROUP_SIZE
    start = time.perf_counter()
    ref_model, tokenizer = _load(args.model, "none", (), args.window, group)
    cand_start = time.perf_counter()
    cand_model, _ = _load(args.model, args.quantization, calibration, args.window, group)
    cand_seconds = time.perf_counter() - cand_start
    chunks = windows(tokenizer.encode(text, add_special_tokens=False), args.tokens, args.window)
    totals = [0.0, 0.0, 0, 0.0]
    scored = 0
    with torch.inference_mode():
        for ids in chunks:
            targets = torch.tensor(ids[1:])
            ref, cand = _logits(ref_model, ids)[:-1], _logits(cand_model, ids)[:-1]
            for i, v in enumerate(compare_logits(ref, cand, targets)):
                totals[i] += v
            scored += len(targets)
    nll_ref, nll_cand, agree, kl = totals
    ppl_ref, ppl = float(torch.tensor(nll_ref / scored).exp()), float(torch.tensor(nll_cand / scored).exp())
    return Quality(
        model=args.model, quantization=args.quantization,
        group_size=group if args.quantization.startswith("int4") else None, text=source, tokens=scored, window=args.window,
        reference_perplexity=ppl_ref, perplexity=ppl, perplexity_change_pct=100 * (ppl / ppl_ref - 1),
        top1_agreement=agree / scored, mean_kl=kl / scored, linear_weight_bytes=linear_bytes(cand_model),
        reference_linear_weight_bytes=linear_bytes(ref_model), seconds=time.perf_counter() - start,
        quantized_load_seconds=cand_seconds)


def table(q: Quality) -> str:
    rows = [
        ("model", q.model), ("text", f"{q.text}, {q.tokens} scored tokens in windows of {q.window}"),
        ("quantization", q.quantization + (f" (group {q.group_size})" if q.group_size else "")),
        ("perplexity (unquantized)", f"{q.reference_perplexity:.4f}"),
        ("perplexity (quantized)", f"{q.perplexity:.4f}"),
        ("perplexity change", f"{q.perplexity_change_pct:+.3f} %"),
        ("top-1 agreement", f"{100 * q.top1_agreement:.2f} %"),
        ("mean KL(unquantized || quantized)", f"{q.mean_kl:.5f} nats/token"),
        ("decoder linear weights", f"{q.linear_weight_bytes / 2**20:.1f} MiB "
                                   f"(unquantized {q.reference_linear_weight_bytes / 2**20:.1f} MiB)"),
        ("run time", f"{q.seconds:.0f} s (loading the quantized model {q.quantized_load_seconds:.0f} s)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def run(args) -> int:
    if args.tokens < 2 or args.window < 2:
        print("--tokens and --window must be at least 2", file=sys.stderr)
        return 2
    from halyard_worker.options import INT4_GROUP_SIZES

    if args.group_size is not None and args.group_size not in INT4_GROUP_SIZES:
        print(f"--group-size must be one of {', '.join(map(str, INT4_GROUP_SIZES))}, got {args.group_size}",
              file=sys.stderr)
        return 2
    result = evaluate(args)
    print(table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(asdict(result), f, indent=2)
    return 0
