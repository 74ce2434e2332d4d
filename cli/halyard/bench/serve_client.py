"""One streamed request against an OpenAI-compatible server, timed (httpx)."""
from __future__ import annotations

import json
import time

from halyard.bench.serve_data import BenchRequest
from halyard.bench.serve_stats import RequestResult


def request_body(req: BenchRequest, args) -> tuple[str, dict]:
    """(path, JSON body) for the chosen endpoint; output length forced with ignore_eos."""
    common = {"model": args.model, "stream": True, "stream_options": {"include_usage": True},
              "temperature": args.temperature, "ignore_eos": args.ignore_eos}
    if args.endpoint == "chat":
        system = [{"role": "system", "content": req.system}] if req.system else []
        return "/v1/chat/completions", {**common, "max_completion_tokens": req.output_len,
                                        "messages": system + [{"role": "user", "content": req.prompt}]}
    prompt = f"{req.system}\n\n{req.prompt}" if req.system else req.prompt
    return "/v1/completions", {**common, "max_tokens": req.output_len, "prompt": prompt}


def _content(chunk: dict) -> str:
    choices = chunk.get("choices") or []
    if not choices:
        return ""
    choice = choices[0]
    if "delta" in choice:
        return choice["delta"].get("content") or ""
    return choice.get("text") or ""


async def send(client, req: BenchRequest, args) -> RequestResult:
    """Stream one request; TTFT/ITL measured at content chunks, tokens from usage."""
    path, body = request_body(req, args)
    result = RequestResult()
    start = last = time.perf_counter()
    try:
        async with client.stream("POST", path, json=body) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")[:200]
                result.error = f"HTTP {response.status_code}: {text}"
                return result
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    result.error = str(chunk["error"].get("message"))
                    return result
                now = time.perf_counter()
                if _content(chunk):
                    if result.ttft == 0.0:
                        result.ttft = now - start
                    else:
                        result.itl.append(now - last)
                    last = now
                if chunk.get("usage"):
                    result.prompt_tokens = chunk["usage"]["prompt_tokens"]
                    result.output_tokens = chunk["usage"]["completion_tokens"]
        result.e2e = time.perf_counter() - start
        result.success = result.output_tokens > 0 or result.ttft > 0
        if not result.success:
            result.error = "no output"
    except Exception as err:  # network errors count as failures, not crashes
        result.error = f"{type(err).__name__}: {err}"
    return result
