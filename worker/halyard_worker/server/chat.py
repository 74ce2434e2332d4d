"""POST /v1/chat/completions: template the messages, then run like a completion."""
from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from halyard_worker.server import protocol, responses
from halyard_worker.server.execute import begin
from halyard_worker.server.schemas import ChatCompletionRequest


def _prepare(state, req: ChatCompletionRequest):
    """(prompt ids, SamplingParams, top_logprobs); runs off the event loop."""
    runtime = state.runtime
    messages = [{"role": m.role, "content": m.text()} for m in req.messages]
    prompt = runtime.render_chat(messages, req.add_generation_prompt)
    max_tokens = protocol.resolve_max_tokens(
        req.effective_max_tokens(), None, len(prompt), runtime.max_model_len, "messages",
        req.max_tokens_param())
    top_n = req.top_logprobs or 0
    logprobs = top_n if req.logprobs else None
    params = protocol.make_params(protocol.sampling_kwargs(req, max_tokens, logprobs))
    return prompt, params, top_n


async def create_chat_completion(state, request: Request, req: ChatCompletionRequest):
    state.check_model(req.model)
    prompt, params, top_n = await state.runtime.off_loop(_prepare, state, req)
    started = await begin(state, request, [prompt], [params], req.priority, req.stream)
    created, body_id, model, headers = started.created, f"chatcmpl-{started.rid}", req.model, started.headers
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        lp = top_n if req.logprobs else None
        return started.stream(request, _events(body_id, created, model, include_usage, lp))
    (c,) = await started.collect(request, 1)
    lp = responses.chat_logprobs(c.logprobs, top_n) if req.logprobs else None
    use = responses.usage(c.prompt_tokens, len(c.token_ids))
    return JSONResponse(responses.chat_body(body_id, created, model, c.text, c.finish_reason, lp, use),
                        headers=headers)


def _events(body_id, created, model, include_usage, top_n):
    def chunk(delta, finish=None, logprobs=None):
        out = responses.chat_chunk(body_id, created, model, delta, finish, logprobs)
        if include_usage:
            out["usage"] = None
        return out

    async def events(pieces):
        prompt_tokens, completion_tokens = 0, 0
        yield chunk({"role": "assistant", "content": ""})
        async for piece in pieces:
            prompt_tokens = piece.prompt_tokens
            completion_tokens += len(piece.token_ids)
            lp = responses.chat_logprobs(piece.logprobs, top_n) if top_n is not None else None
            if piece.text or lp:
                yield chunk({"content": piece.text}, logprobs=lp)
            if piece.finish_reason:
                yield chunk({}, piece.finish_reason)
        if include_usage:
            use = responses.usage(prompt_tokens, completion_tokens)
            yield responses.usage_chunk(body_id, created, model, "chat.completion.chunk", use)
    return events
