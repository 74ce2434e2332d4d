"""Pure translation: API request -> prompts and engine SamplingParams.

The context-window check lives here so its message carries the numbers
(prompt tokens, requested completion tokens, the model's limit).
"""
from __future__ import annotations

from halyard_worker.server.errors import APIError
from halyard_worker.server.schemas import CompletionRequest, SamplingFields

COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


def completion_prompts(req: CompletionRequest, encode) -> list[list[int]]:
    """The request's prompts as token-id lists, in choice order."""
    prompt = req.prompt
    if isinstance(prompt, str):
        return [encode(prompt)]
    if all(isinstance(p, int) for p in prompt):
        return [list(prompt)]
    return [encode(p) if isinstance(p, str) else list(p) for p in prompt]


def count_prompts(prompt) -> int:
    """How many prompts (choices) a completions `prompt` holds, without tokenizing."""
    if isinstance(prompt, str) or all(isinstance(p, int) for p in prompt):
        return 1
    return len(prompt)


def resolve_max_tokens(requested: int | None, default: int | None, prompt_len: int,
                       max_model_len: int, prompt_param: str, max_param: str = "max_tokens") -> int:
    """Completion budget for one prompt; 400 with the numbers when it cannot fit."""
    if prompt_len >= max_model_len:
        raise APIError(400, f"This model's maximum context length is {max_model_len} tokens, "
                            f"but the {prompt_param} has {prompt_len} tokens; shorten the "
                            f"{prompt_param}.", param=prompt_param, code="context_length_exceeded")
    room = max_model_len - prompt_len
    if requested is None:
        return room if default is None else min(default, room)
    if requested > room:
        raise APIError(400, f"This model's maximum context length is {max_model_len} tokens. "
                            f"However, you requested {prompt_len + requested} tokens "
                            f"({prompt_len} in the {prompt_param}, {requested} for the completion). "
                            f"Reduce {max_param} to at most {room} or shorten the {prompt_param}.",
                       param=max_param, code="context_length_exceeded")
    return requested


def sampling_kwargs(req: SamplingFields, max_tokens: int, logprobs: int | None,
                    prompt_logprobs: int | None = None) -> dict:
    """Engine SamplingParams keyword arguments (unset API fields keep engine defaults)."""
    kwargs = dict(max_tokens=max_tokens, min_tokens=req.min_tokens, ignore_eos=req.ignore_eos,
                  stop=tuple(req.stop_list()), stop_token_ids=tuple(req.stop_token_ids or ()),
                  seed=req.seed, logprobs=logprobs, prompt_logprobs=prompt_logprobs,
                  logit_bias=req.logit_bias_pairs())
    optional = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                "presence_penalty", "frequency_penalty")
    for name in optional:
        value = getattr(req, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def make_params(kwargs: dict):
    """Build engine SamplingParams; the engine's InvalidParameter becomes a 400."""
    from halyard_worker.engine.types import InvalidParameter, SamplingParams

    try:
        return SamplingParams(**kwargs)
    except InvalidParameter as err:
        raise APIError(400, str(err), param=err.param) from err
