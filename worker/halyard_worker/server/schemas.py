"""Request bodies of the OpenAI-compatible API (pydantic, validated on entry).

Ranges follow the OpenAI API reference and are bounded so nothing can
overflow the engine (seeds, counts, ids are 63-bit at most); the engine's
`SamplingParams` re-validates what it owns and its `InvalidParameter` also
becomes a 400. Strings with lone UTF-16 surrogates (which no tokenizer can
encode) are refused naming the field. OpenAI fields this server does not
implement (`tools`, `tool_choice`, `functions`, `best_of` > 1,
`response_format` other than text, ...) are refused with a 400 naming them,
never accepted and ignored; other unknown fields are ignored, as OpenAI
clients send optional extras.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt,
                      ValidationInfo, field_validator)

MAX_TOKEN_ID = 2**31 - 1
MAX_STOP = 16
MAX_STOP_CHARS = 1024
MAX_LOGPROBS = 20
MAX_LOGIT_BIAS = 1024
INT63 = 2**63 - 1


def _no_lone_surrogates(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone UTF-16 surrogate (invalid Unicode); send valid UTF-8 text") from None
    return value


Text = Annotated[str, AfterValidator(_no_lone_surrogates)]
TokenId = Annotated[int, Field(ge=0, le=MAX_TOKEN_ID)]
TokenIds = list[TokenId]
Count = Annotated[StrictInt, Field(ge=1, le=INT63)]


def _unsupported(name: str, hint: str):
    """A field validator refusing any non-null value of an OpenAI field we do not implement."""
    def check(cls, value):
        if value is not None:
            raise ValueError(f"{name} is not supported by this server; {hint}")
        return value
    return field_validator(name)(classmethod(check))


class ResponseFormat(BaseModel):
    """Only `{"type": "text"}` (the default) is served; structured output is refused."""

    model_config = ConfigDict(extra="allow")
    type: Literal["text", "json_object", "json_schema"]


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class SamplingFields(BaseModel):
    """Fields shared by completions and chat completions."""

    model_config = ConfigDict(extra="ignore")

    model: Text
    max_tokens: Count | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    top_k: Annotated[StrictInt, Field(le=MAX_TOKEN_ID)] | None = None
    min_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0.0, le=10.0)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    min_tokens: Annotated[StrictInt, Field(ge=0, le=INT63)] = 0
    ignore_eos: StrictBool = False
    stop: Text | list[Text] | None = None
    stop_token_ids: Annotated[TokenIds, Field(max_length=1024)] | None = None
    seed: Annotated[StrictInt, Field(ge=0, le=INT63)] | None = None
    n: Annotated[StrictInt, Field(ge=1, le=INT63)] = 1
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    priority: Annotated[StrictInt, Field(ge=-INT63, le=INT63)] = 0
    user: Text | None = None
    logit_bias: dict[Text, Annotated[float, Field(ge=-100.0, le=100.0)]] | None = None
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    parallel_tool_calls: Any = None
    prediction: Any = None
    audio: Any = None
    web_search_options: Any = None

    _tools = _unsupported("tools", "this server has no tool calling; remove tools")
    _tool_choice = _unsupported("tool_choice", "this server has no tool calling; remove tool_choice")
    _functions = _unsupported("functions", "this server has no function calling; remove functions")
    _function_call = _unsupported("function_call", "this server has no function calling; remove it")
    _parallel = _unsupported("parallel_tool_calls", "this server has no tool calling; remove it")
    _prediction = _unsupported("prediction", "predicted outputs are not implemented; remove it")
    _audio = _unsupported("audio", "this server produces text only; remove audio")
    _web_search = _unsupported("web_search_options", "this server has no web search; remove it")

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, value):
        if value is not None and value < -1:
            raise ValueError("top_k must be -1 (disabled) or a positive integer")
        return value

    @field_validator("stop")
    @classmethod
    def _stop(cls, value):
        items = [value] if isinstance(value, str) else value or []
        if len(items) > MAX_STOP:
            raise ValueError(f"stop accepts at most {MAX_STOP} sequences")
        if any(not s for s in items):
            raise ValueError("stop sequences must be non-empty strings")
        if any(len(s) > MAX_STOP_CHARS for s in items):
            raise ValueError(f"stop sequences must be at most {MAX_STOP_CHARS} characters")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias(cls, value):
        if value is None:
            return value
        if len(value) > MAX_LOGIT_BIAS:
            raise ValueError(f"logit_bias accepts at most {MAX_LOGIT_BIAS} tokens")
        for key in value:
            if not key.isascii() or not key.isdigit() or int(key) > MAX_TOKEN_ID:
                raise ValueError(f"logit_bias keys must be token ids (decimal integers), got {key!r}")
        return value

    @field_validator("response_format")
    @classmethod
    def _response_format(cls, value):
        if value is not None and value.type != "text":
            raise ValueError(f"response_format type {value.type!r} is not supported (no structured "
                             "output); use {\"type\": \"text\"} or omit response_format")
        return value

    @field_validator("stream_options")
    @classmethod
    def _stream_options_need_stream(cls, value, info: ValidationInfo):
        if value is not None and not info.data.get("stream"):
            raise ValueError("stream_options is only allowed with stream: true")
        return value

    def logit_bias_pairs(self) -> tuple[tuple[int, float], ...]:
        return tuple((int(k), float(v)) for k, v in (self.logit_bias or {}).items())

    @field_validator("n")
    @classmethod
    def _n(cls, value):
        if value != 1:
            raise ValueError("n > 1 is not supported; send several requests or a list of prompts")
        return value

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class CompletionRequest(SamplingFields):
    """POST /v1/completions. `prompt`: a string, token ids, or a list of either
    (one choice per prompt, `index` in request order)."""

    prompt: Text | list[Text] | TokenIds | list[TokenIds]
    logprobs: Annotated[StrictInt, Field(ge=0, le=MAX_LOGPROBS)] | None = None
    echo: StrictBool = False
    suffix: Text | None = None
    best_of: StrictInt | None = None

    @field_validator("best_of")
    @classmethod
    def _best_of(cls, value):
        if value is not None and value != 1:
            raise ValueError("best_of > 1 is not supported; send several requests instead")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value):
        if isinstance(value, (str, list)) and len(value) == 0:
            raise ValueError("prompt must not be empty")
        if isinstance(value, list) and any(isinstance(p, (str, list)) and len(p) == 0 for p in value):
            raise ValueError("prompt must not contain an empty prompt")
        return value

    @field_validator("suffix")
    @classmethod
    def _suffix(cls, value):
        if value:
            raise ValueError("suffix is not supported")
        return value


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextPart] | None = None
    name: Text | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(SamplingFields):
    """POST /v1/chat/completions. `max_completion_tokens` is the newer name of
    `max_tokens`; `logprobs` is a flag and `top_logprobs` the count."""

    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Count | None = None
    logprobs: StrictBool = False
    top_logprobs: Annotated[StrictInt, Field(ge=0, le=MAX_LOGPROBS)] | None = None
    add_generation_prompt: StrictBool = True
    modalities: list[Literal["text"]] | None = None

    @field_validator("top_logprobs")
    @classmethod
    def _top_logprobs_need_logprobs(cls, value, info: ValidationInfo):
        if value is not None and not info.data.get("logprobs"):
            raise ValueError("top_logprobs is only allowed with logprobs: true")
        return value

    def effective_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def max_tokens_param(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens is not None else "max_tokens"


class TokenizeRequest(BaseModel):
    """POST /tokenize: either `prompt` or chat `messages`."""

    model: Text | None = None
    prompt: Text | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: StrictBool = True
    add_generation_prompt: StrictBool = True


class DetokenizeRequest(BaseModel):
    """POST /detokenize."""

    model: Text | None = None
    tokens: TokenIds
