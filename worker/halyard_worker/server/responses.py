"""Pure builders of OpenAI response bodies and stream chunks (dicts)."""
from __future__ import annotations

import json


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def sse(payload: dict | str) -> str:
    """One server-sent event: `data: {...}\\n\\n` (or `data: [DONE]\\n\\n`)."""
    body = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {body}\n\n"


def completion_logprobs(entries, text_offset: int = 0) -> dict | None:
    """Engine LogprobEntry tuple -> the /v1/completions `logprobs` object."""
    if entries is None:
        return None
    tokens, token_logprobs, top, offsets = [], [], [], []
    offset = text_offset
    for entry in entries:
        tokens.append(entry.sampled.token)
        token_logprobs.append(entry.sampled.logprob)
        top.append({t.token: t.logprob for t in entry.top})
        offsets.append(offset)
        offset += len(entry.sampled.token)
    return {"tokens": tokens, "token_logprobs": token_logprobs,
            "top_logprobs": top, "text_offset": offsets}


def echo_logprobs(prompt_ids, entries, decode) -> dict:
    """The prompt part of /v1/completions `logprobs` with `echo` (as vLLM):
    one item per prompt token, None for the first; each top dict holds the
    prompt token itself plus the most likely tokens. `entries` is the
    engine's prompt_logprobs ((None, LogprobEntry, ...))."""
    tokens = [decode([prompt_ids[0]])]
    token_logprobs, top = [None], [None]
    for entry in entries[1:]:
        tokens.append(entry.sampled.token)
        token_logprobs.append(entry.sampled.logprob)
        items = {t.token: t.logprob for t in entry.top}
        items[entry.sampled.token] = entry.sampled.logprob
        top.append(items)
    offsets, offset = [], 0
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": offsets}


def join_logprobs(first: dict, second: dict | None) -> dict:
    """Prompt logprobs followed by the generated tokens' (offsets continue)."""
    if second is None:
        return first
    return {key: first[key] + second[key] for key in first}


def _token_item(t) -> dict:
    return {"token": t.token, "logprob": t.logprob, "bytes": list(t.token.encode("utf-8"))}


def chat_logprobs(entries, top_n: int) -> dict | None:
    """Engine LogprobEntry tuple -> the chat `logprobs` object (`content` list)."""
    if entries is None:
        return None
    content = []
    for entry in entries:
        item = _token_item(entry.sampled)
        item["top_logprobs"] = [_token_item(t) for t in entry.top[:top_n]]
        content.append(item)
    return {"content": content}


def completion_body(rid: str, created: int, model: str, choices: list[dict], use: dict) -> dict:
    return {"id": rid, "object": "text_completion", "created": created, "model": model,
            "choices": choices, "usage": use}


def completion_choice(index: int, text: str, finish: str | None, logprobs) -> dict:
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}


def chat_body(rid: str, created: int, model: str, text: str, finish: str | None,
              logprobs, use: dict) -> dict:
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}
    return {"id": rid, "object": "chat.completion", "created": created, "model": model,
            "choices": [choice], "usage": use}


def chat_chunk(rid: str, created: int, model: str, delta: dict, finish: str | None,
               logprobs=None) -> dict:
    choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
    return {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [choice]}


def completion_chunk(rid: str, created: int, model: str, choice: dict) -> dict:
    return {"id": rid, "object": "text_completion", "created": created, "model": model,
            "choices": [choice]}


def usage_chunk(rid: str, created: int, model: str, obj: str, use: dict) -> dict:
    return {"id": rid, "object": obj, "created": created, "model": model,
            "choices": [], "usage": use}
