"""`halyard bench offline`: engine throughput vs transformers `generate`.

One run measures, on the same requests (seeded mixed prompt and output
lengths, `ignore_eos`, greedy): the Halyard engine, transformers `generate`
one request at a time, and transformers `generate` on one static
left-padded batch. Output tokens/s counts the tokens each request asked for.
Without `--model` a small random Llama model is built (bigger than the test
models so that compute matters). torch is imported only inside `run`.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Workload:
    """Request i has `prompts[i]` token ids and wants `output_lens[i]` tokens."""

    prompts: list[list[int]]
    output_lens: list[int]

    @property
    def total_output(self) -> int:
        return sum(self.output_lens)


@dataclass(frozen=True)
class Result:
    method: str
    seconds: float
    output_tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model directory (default: build a random bench model)")
    parser.add_argument("--num-requests", type=int, default=64)
    parser.add_argument("--min-prompt", type=int, default=16)
    parser.add_argument("--max-prompt", type=int, default=192)
    parser.add_argument("--min-output", type=int, default=16)
    parser.add_argument("--max-output", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quantization", default="none", choices=["none", "int8", "int4"],
                        help="engine weights only; transformers always runs unquantized")
    parser.add_argument("--max-num-seqs", type=int, default=64)
    parser.add_argument("--max-num-batched-tokens", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for every method, 0 = torch default (default 1: on a shared "
                             "machine OpenMP spin-waits make more threads slower)")
    parser.add_argument("--tensor-parallel-size", type=int, default=1,
                        help="split the engine's model over N ranks (processes; gloo on CPU, one GPU each "
                             "on cuda); transformers always runs on one")
    parser.add_argument("--skip-transformers", action="store_true", help="engine only")
    parser.add_argument("--out", help="write the results as JSON here")


def make_workload(args, vocab_low: int, vocab_high: int) -> Workload:
    rng = random.Random(args.seed)
    prompts, outs = [], []
    for _ in range(args.num_requests):
        n = rng.randint(args.min_prompt, args.max_prompt)
        prompts.append([rng.randrange(vocab_low, vocab_high) for _ in range(n)])
        outs.append(rng.randint(args.min_output, args.max_output))
    return Workload(prompts, outs)


def build_bench_model(path: str) -> str:
    from halyard.testing.tiny import TinyModelSpec, build_tiny_model

    spec = TinyModelSpec(hidden_size=256, intermediate_size=688, num_layers=4, num_heads=8,
                         num_kv_heads=4, max_position_embeddings=1024, init_std=0.05)
    return str(build_tiny_model(path, spec))


def bench_engine(args, model: str, work: Workload) -> Result:
    from halyard_worker import LLM, SamplingParams

    llm = LLM(model, dtype=args.dtype, device=args.device, quantization=None if args.quantization == "none" else args.quantization,
              max_num_seqs=args.max_num_seqs, max_num_batched_tokens=args.max_num_batched_tokens,
              enable_prefix_caching=False, tensor_parallel_size=args.tensor_parallel_size)
    params = [SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in work.output_lens]
    with llm:
        llm.generate(work.prompts[:4], params[:4])  # warm-up
        start = time.perf_counter()
        outs = llm.generate(work.prompts, params)
        seconds = time.perf_counter() - start
    assert [len(o.token_ids) for o in outs] == work.output_lens
    name = "halyard engine" + (f" (TP={args.tensor_parallel_size})" if args.tensor_parallel_size > 1 else "")
    return Result(name, seconds, work.total_output)


def _hf_generate(hf, torch, ids, mask, n):
    return hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=n, min_new_tokens=n,
                       pad_token_id=0, eos_token_id=None)


def bench_hf_single(torch, hf, work: Workload, device) -> Result:
    with torch.inference_mode():
        ids = torch.tensor([work.prompts[0]], device=device)
        _hf_generate(hf, torch, ids, torch.ones_like(ids), 4)  # warm-up
        start = time.perf_counter()
        for prompt, n in zip(work.prompts, work.output_lens):
            ids = torch.tensor([prompt], device=device)
            _hf_generate(hf, torch, ids, torch.ones_like(ids), n)
        return Result("transformers one-at-a-time", time.perf_counter() - start, work.total_output)


def bench_hf_static_batch(torch, hf, work: Workload, device) -> Result:
    width = max(len(p) for p in work.prompts)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in work.prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in work.prompts], device=device)
    with torch.inference_mode():
        start = time.perf_counter()
        _hf_generate(hf, torch, ids, mask, max(work.output_lens))
        seconds = time.perf_counter() - start
    return Result("transformers static padded batch", seconds, work.total_output)


def print_table(results: list[Result], baseline: Result | None) -> None:
    print(f"{'method':36} {'seconds':>9} {'out tokens':>11} {'tok/s':>9} {'vs 1-at-a-time':>15}")
    for r in results:
        ratio = f"{r.tokens_per_s / baseline.tokens_per_s:.2f}x" if baseline else "-"
        print(f"{r.method:36} {r.seconds:9.2f} {r.output_tokens:11d} {r.tokens_per_s:9.1f} {ratio:>15}")


def run(args) -> int:
    import torch
    import transformers

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_bench_model(tmp)
        tok = transformers.AutoTokenizer.from_pretrained(model)
        work = make_workload(args, len(tok.all_special_ids), len(tok))
        print(f"model {args.model or 'built: hidden 256, 4 layers, 8 heads / 4 kv heads'}; "
              f"{args.num_requests} requests, {work.total_output} output tokens, "
              f"torch threads {torch.get_num_threads()}", file=sys.stderr)
        results = [bench_engine(args, model, work)]
        baseline = None
        if not args.skip_transformers:
            dtype = getattr(torch, args.dtype)
            hf = transformers.AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(args.device).eval()
            baseline = bench_hf_single(torch, hf, work, args.device)
            results += [baseline, bench_hf_static_batch(torch, hf, work, args.device)]
    print_table(results, baseline)
    if args.out:
        payload = {"config": {k: v for k, v in vars(args).items() if k != "func"},
                   "results": [{**asdict(r), "tokens_per_s": r.tokens_per_s} for r in results]}
        if baseline:
            payload["speedup_vs_one_at_a_time"] = results[0].tokens_per_s / baseline.tokens_per_s
        with open(args.out, "w") as f:
            json.dump(payload, f, indent=2)
    return 0
