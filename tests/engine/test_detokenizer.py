"""Incremental detokenization: UTF-8 safety and stop strings across tokens."""
from __future__ import annotations

import pytest

from halyard_worker.engine.detokenizer import IncrementalDetokenizer


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def feed(tok, ids, **kw):
    d = IncrementalDetokenizer(tok, **kw)
    seen = []
    for i in ids:
        d.add([i])
        seen.append(d.text[:d.emitted_len(False)])
    d.flush()
    return d, seen


def byte_tokens(tok, text):
    """One token per byte-level symbol: multi-byte characters span several tokens."""
    pieces = []
    for word, _ in tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text):
        pieces.extend(tok.convert_tokens_to_ids(list(word)))
    return pieces


def test_multibyte_characters_are_never_emitted_half(tokenizer):
    text = "crème 🚀 日本"
    ids = byte_tokens(tokenizer, text)
    assert len(ids) > len(text)  # some characters span several tokens
    d, seen = feed(tokenizer, ids)
    assert d.text == text
    for prefix in seen:
        assert "\ufffd" not in prefix
        assert text.startswith(prefix)


def test_incremental_text_equals_full_decode(tokenizer):
    text = "Hello world! Émile a mangé une crème brûlée."
    ids = tokenizer.encode(text)
    d, _ = feed(tokenizer, ids)
    assert d.text == tokenizer.decode(ids)


def test_stop_string_across_token_boundaries_is_cut(tokenizer):
    text = "The quick brown fox jumps over the lazy dog."
    ids = byte_tokens(tokenizer, text)
    d, seen = feed(tokenizer, ids, stop=("fox jumps",))
    assert d.stop_hit == "fox jumps"
    assert d.text == "The quick brown "
    assert all("fox" not in s for s in seen)  # the partial stop string was held back


def test_stop_string_kept_when_asked(tokenizer):
    ids = tokenizer.encode("Hello world! How are you")
    d, _ = feed(tokenizer, ids, stop=("world",), include_stop_str_in_output=True)
    assert d.text == "Hello world"


def test_held_back_text_is_released_when_it_is_not_a_stop(tokenizer):
    ids = byte_tokens(tokenizer, "abcabd")
    d, seen = feed(tokenizer, ids, stop=("abx",))
    assert seen[3:] == ["abc", "abc", "abcabd"]  # "a", then "ab" held while they could start "abx"
    assert d.text == "abcabd" and d.emitted_len(True) == 6
