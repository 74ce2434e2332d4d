"""The baseline a user would otherwise write: transformers `generate` behind a
minimal OpenAI-compatible API, one request at a time.

    python -m halyard.bench.hf_baseline_server --model PATH --port N

Serves `/v1/models`, `/v1/completions` and `/v1/chat/completions` (streaming
with `stream_options.include_usage`, `max_tokens`, `temperature`,
`ignore_eos`), so `halyard bench serve` can measure it with the same settings
as a Halyard worker. Requests queue on one lock: no batching, no KV paging.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

_DONE = object()


class _TokenStreamer:
    """transformers streamer: pushes the text of every new token at once
    (the stock TextIteratorStreamer waits for whole words)."""

    def __init__(self, tokenizer, emit):
        self.tokenizer, self.emit = tokenizer, emit
        self.ids: list[int] = []
        self.text = ""
        self.prompt_seen = False

    def put(self, value):
        if not self.prompt_seen:  # the first call carries the prompt
            self.prompt_seen = True
            return
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if not text.endswith("\ufffd"):
            self.emit(text[len(self.text):])
            self.text = text

    def end(self):
        self.emit(_DONE)


class Baseline:
    """Model + tokenizer + a lock that serializes generation."""

    def __init__(self, model_path: str, device: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).to(device)
        self.model.eval()
        self.device = device
        self.lock = threading.Lock()

    def generate(self, prompt_ids: list[int], body: dict, emit) -> int:
        """Blocking; streams text pieces through `emit`; returns completion tokens."""
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
        temperature = float(body.get("temperature", 1.0))
        kwargs = dict(max_new_tokens=max_tokens, do_sample=temperature > 0,
                      pad_token_id=self.tokenizer.eos_token_id)
        if temperature > 0:
            kwargs["temperature"] = temperature
        if body.get("ignore_eos"):
            kwargs["min_new_tokens"] = max_tokens
        streamer = _TokenStreamer(self.tokenizer, emit)
        with self.lock, self.torch.inference_mode():
            ids = self.torch.tensor([prompt_ids], device=self.device)
            result = self.model.generate(ids, attention_mask=self.torch.ones_like(ids),
                                         streamer=streamer, **kwargs)
        return int(result.shape[1] - len(prompt_ids))


def _prompt_ids(base: Baseline, body: dict, chat: bool) -> list[int]:
    tok = base.tokenizer
    if chat:
        text = tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        return tok.encode(text, add_special_tokens=False)
    prompt = body["prompt"]
    return list(prompt) if isinstance(prompt, list) else tok.encode(prompt)


def _chunk(rid, model, chat, text, finish):
    if chat:
        choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
        return {"id": rid, "object": "chat.completion.chunk", "model": model, "choices": [choice]}
    choice = {"index": 0, "text": text, "finish_reason": finish}
    return {"id": rid, "object": "text_completion", "model": model, "choices": [choice]}


def build_app(base: Baseline, served_name: str):
    app = FastAPI()
    pool = ThreadPoolExecutor(max_workers=256)  # waiting requests block on the lock here

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": served_name, "object": "model"}]}

    async def handle(request: Request, chat: bool):
        body = await request.json()
        prompt_ids = _prompt_ids(base, body, chat)
        loop = asyncio.get_running_loop()
        out: asyncio.Queue = asyncio.Queue()
        emit = lambda item: loop.call_soon_threadsafe(out.put_nowait, item)  # noqa: E731
        job = loop.run_in_executor(pool, base.generate, prompt_ids, body, emit)
        rid = f"cmpl-{uuid.uuid4().hex}"

        async def pieces():
            while True:
                item = await out.get()
                if item is _DONE:
                    return
                yield item

        if not body.get("stream"):
            text = "".join([p async for p in pieces()])
            n = await job
            usage = {"prompt_tokens": len(prompt_ids), "completion_tokens": n,
                     "total_tokens": len(prompt_ids) + n}
            choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
                      if chat else {"index": 0, "text": text, "finish_reason": "length"})
            return JSONResponse({"id": rid, "created": int(time.time()), "model": served_name,
                                 "choices": [choice], "usage": usage})

        async def events():
            if chat:
                yield "data: " + json.dumps(_chunk(rid, served_name, True, "", None)) + "\n\n"
            async for piece in pieces():
                if piece:
                    yield "data: " + json.dumps(_chunk(rid, served_name, chat, piece, None)) + "\n\n"
            n = await job
            yield "data: " + json.dumps(_chunk(rid, served_name, chat, "", "length")) + "\n\n"
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": len(prompt_ids), "completion_tokens": n,
                         "total_tokens": len(prompt_ids) + n}
                yield "data: " + json.dumps({"id": rid, "choices": [], "usage": usage}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await handle(request, chat=True)

    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-model-name", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    from pathlib import Path

    base = Baseline(args.model, args.device)
    name = args.served_model_name or Path(args.model).resolve().name
    uvicorn.run(build_app(base, name), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
