"""POST /v1/completions: thin handler over protocol, execute and responses."""
from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from halyard_worker.server import protocol, responses
from halyard_worker.server.execute import begin
from halyard_worker.server.schemas import CompletionRequest


def _prepare(state, req: CompletionRequest):
    """(prompt token lists, echo texts, SamplingParams per prompt); runs off the event loop.
    With echo and logprobs the engine also returns the prompt tokens' logprobs."""
    runtime = state.runtime
    prompt_lps = req.logprobs if req.echo else None
    prompts = protocol.completion_prompts(req, runtime.encode)
    params = []
    for prompt in prompts:
        max_tokens = protocol.resolve_max_tokens(
            req.max_tokens, protocol.COMPLETIONS_DEFAULT_MAX_TOKENS, len(prompt),
            runtime.max_model_len, "prompt")
        params.append(protocol.make_params(protocol.sampling_kwargs(req, max_tokens, req.logprobs, prompt_lps)))
    echoes = [runtime.decode(p) if req.echo else "" for p in prompts]
    return prompts, echoes, params


async def create_completion(state, request: Request, req: CompletionRequest):
    state.check_model(req.model)
    state.gate.check_possible(protocol.count_prompts(req.prompt), "prompt")
    prompts, echoes, params = await state.runtime.off_loop(_prepare, state, req)
    started = await begin(state, request, prompts, params, req.priority, req.stream)
    created, body_id, model, headers = started.created, f"cmpl-{started.rid}", req.model, started.headers
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        events = _events(state, body_id, created, model, echoes, include_usage, req.logprobs, prompts)
        return started.stream(request, events)
    collected = await started.collect(request, len(prompts))
    choices = [responses.completion_choice(
        i, echoes[i] + c.text, c.finish_reason,
        _logprobs(state, prompts[i], c.prompt_logprobs, c.logprobs, len(echoes[i]))
        if req.logprobs is not None else None)
        for i, c in enumerate(collected)]
    use = responses.usage(sum(c.prompt_tokens for c in collected),
                          sum(len(c.token_ids) for c in collected))
    return JSONResponse(responses.completion_body(body_id, created, model, choices, use), headers=headers)


def _logprobs(state, prompt, prompt_entries, entries, echo_len: int) -> dict | None:
    """Generated tokens' logprobs, preceded by the prompt's when echoed."""
    generated = responses.completion_logprobs(entries, echo_len)
    if prompt_entries is None:
        return generated
    return responses.join_logprobs(responses.echo_logprobs(prompt, prompt_entries, state.runtime.decode),
                                   generated)


def _events(state, body_id, created, model, echoes, include_usage, logprobs, prompts):
    async def events(pieces):
        prompt_tokens, completion_tokens, echoed = {}, 0, set()
        async for piece in pieces:
            text = piece.text
            if echoes[piece.index] and piece.index not in echoed:
                echoed.add(piece.index)
                text = echoes[piece.index] + text
            prompt_tokens[piece.index] = piece.prompt_tokens
            completion_tokens += len(piece.token_ids)
            lp = None
            if logprobs is not None:
                echo_len = len(echoes[piece.index]) if piece.prompt_logprobs is not None else 0
                lp = _logprobs(state, prompts[piece.index], piece.prompt_logprobs, piece.logprobs, echo_len)
            choice = responses.completion_choice(piece.index, text, piece.finish_reason, lp)
            chunk = responses.completion_chunk(body_id, created, model, choice)
            if include_usage:
                chunk["usage"] = None
            yield chunk
        if include_usage:
            use = responses.usage(sum(prompt_tokens.values()), completion_tokens)
            yield responses.usage_chunk(body_id, created, model, "text_completion", use)
    return events
