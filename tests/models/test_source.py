"""Model locations as `--model` / `spec.model.uri` write them, parsed by the worker."""
import pytest

from halyard_worker.model.source import InvalidModelSource, parse_model_uri


@pytest.mark.parametrize("uri,revision,expect", [
    ("/srv/m", None, ("local", "/srv/m", None, None, None)),
    ("models/m", None, ("local", "models/m", None, None, None)),
    ("file:///srv/x.gguf", None, ("local", "/srv/x.gguf", None, None, None)),
    ("hf://org/repo", None, ("hf", "org/repo", None, None, None)),
    ("hf://org/repo@v1.2", None, ("hf", "org/repo", None, None, "v1.2")),
    ("hf://org/repo", "abc123", ("hf", "org/repo", None, None, "abc123")),
    ("hf://org/repo@main/q/x.Q4_1.gguf", None, ("hf", "org/repo", None, "q/x.Q4_1.gguf", "main")),
    ("s3://bucket/models/llama/", None, ("s3", "models/llama", "bucket", None, None)),
    ("s3://my.bucket", None, ("s3", "", "my.bucket", None, None)),
    ("pvc://store/llama/8b", None, ("local", "/models/store/llama/8b", None, None, None)),
    ("pvc://store", None, ("local", "/models/store", None, None, None)),
])
def test_every_documented_form_parses(uri, revision, expect):
    s = parse_model_uri(uri, revision)
    assert (s.scheme, s.path, s.bucket, s.filename, s.revision) == expect


@pytest.mark.parametrize("uri,revision,needle", [
    ("", None, "is empty"),
    ("ftp://host/x", None, "unknown scheme ftp://"),
    ("file://relative/x", None, "absolute path"),
    ("hf://onlyorg", None, "hf://org/repo"),
    ("hf://org/repo/config.json", None, "must be a .gguf file"),
    ("hf://org/repo@v1", "v2", "give it once"),
    ("s3://Bad_Bucket/x", None, "s3://bucket/prefix"),
    ("pvc://Bad_Claim", None, "pvc://claim/path"),
    ("s3://bucket/x", "main", "only to hf://"),
    ("/srv/m", "main", "only to hf://"),
])
def test_what_cannot_load_is_refused_naming_the_flag(uri, revision, needle):
    with pytest.raises(InvalidModelSource, match=needle) as info:
        parse_model_uri(uri, revision)
    assert str(info.value).startswith(("--model:", "--revision:"))


def test_cache_key_depends_on_uri_and_revision_only():
    a = parse_model_uri("hf://org/repo", "v1").cache_key
    assert a == parse_model_uri("hf://org/repo", "v1").cache_key
    assert a != parse_model_uri("hf://org/repo", "v2").cache_key
    assert parse_model_uri("s3://bkt/x").cache_key != parse_model_uri("s3://bkt/y").cache_key
    assert "/" not in parse_model_uri("s3://bkt/deep/path/x").cache_key
