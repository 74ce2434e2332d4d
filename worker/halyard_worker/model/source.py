"""Model locations: what `--model` (and `spec.model.uri`) may say, parsed (pure).

Forms (`revision` only with hf://):
  /dir, dir, file:///dir        a Hugging Face directory (config.json, *.safetensors,
                                single or sharded with model.safetensors.index.json)
  /x.gguf, file:///x.gguf       a GGUF file
  hf://org/repo[@rev]           a Hub repository snapshot (huggingface_hub: HF_ENDPOINT,
                                HF_TOKEN, HF_HUB_OFFLINE and its cache are honoured)
  hf://org/repo[@rev]/f.gguf    one GGUF file of a Hub repository
  s3://bucket/prefix            every object under the prefix (a directory), or one
                                `.gguf` object (boto3: AWS_ENDPOINT_URL, credentials chain)
  pvc://claim/path              the claim as the operator mounts it: /models/claim/path

`parse_model_uri` raises `InvalidModelSource` (a ValueError naming the flag) on
anything the worker could never load; no file system or network access here.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

PVC_ROOT = "/models"  # where the operator mounts pvc:// claims (builders/args.py)

_HF = re.compile(r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)"
                 r"(?:@(?P<rev>[A-Za-z0-9._-]+))?(?:/(?P<file>[A-Za-z0-9._/-]+))?$")
_S3 = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")
_PVC = re.compile(r"^(?P<claim>[a-z0-9]([-a-z0-9]*[a-z0-9])?)(?:/(?P<path>.*))?$")
FORMS = "a directory, file:///path, a .gguf file, hf://org/repo[@rev][/file.gguf], s3://bucket/prefix or pvc://claim/path"


class InvalidModelSource(ValueError):
    """A model location the worker cannot load; the message names `field`."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class ModelSource:
    """One parsed model location.

    Invariants: `scheme` is "local", "hf" or "s3" (pvc:// becomes "local" at
    its mount path); `path` is the local path (local), the repo id (hf) or the
    key prefix without a leading slash (s3); `bucket` is set only for s3;
    `filename` only for hf (a .gguf inside the repo); `revision` only for hf.
    """

    uri: str
    scheme: str
    path: str
    bucket: str | None = None
    filename: str | None = None
    revision: str | None = None

    @property
    def remote(self) -> bool:
        return self.scheme in ("hf", "s3")

    @property
    def is_gguf(self) -> bool:
        return (self.filename or self.path).endswith(".gguf")

    @property
    def cache_key(self) -> str:
        """Stable name of this source in a model cache: readable stem + hash of (uri, revision)."""
        digest = hashlib.sha256(f"{self.uri}\n{self.revision or ''}".encode()).hexdigest()[:16]
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.bucket or ''}-{self.path}-{self.filename or ''}")
        return f"{self.scheme}-{stem.strip('-.')[:80]}-{digest}"

    @property
    def default_name(self) -> str:
        """The served model name when none is given."""
        if self.scheme == "hf":
            return self.path
        tail = (self.filename or self.path).rstrip("/").rsplit("/", 1)[-1]
        return tail.removesuffix(".gguf") or (self.bucket or "model")


def parse_model_uri(uri: str, revision: str | None = None, field: str = "--model") -> ModelSource:
    """Parse `uri` (+ `revision`, which only hf:// takes) or raise InvalidModelSource."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidModelSource(field, f"is empty; give {FORMS}")
    if revision is not None and not revision.strip():
        revision = None
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return _local(uri, uri, revision, field)
    if scheme == "file":
        if not rest.startswith("/"):
            raise InvalidModelSource(field, f"{uri!r}: file:// needs an absolute path (file:///models/x)")
        return _local(uri, rest, revision, field)
    parsers = {"hf": _hf, "s3": _s3, "pvc": _pvc}
    if scheme not in parsers:
        raise InvalidModelSource(field, f"{uri!r}: unknown scheme {scheme}://; give {FORMS}")
    return parsers[scheme](uri, rest, revision, field)


def _no_revision(uri: str, revision: str | None, field: str) -> None:
    if revision:
        raise InvalidModelSource(field.replace("uri", "revision").replace("--model", "--revision"),
                                 f"a revision applies only to hf:// models, not {uri!r}; remove it")


def _local(uri: str, path: str, revision: str | None, field: str) -> ModelSource:
    _no_revision(uri, revision, field)
    return ModelSource(uri=uri, scheme="local", path=path)


def _hf(uri: str, rest: str, revision: str | None, field: str) -> ModelSource:
    match = _HF.match(rest)
    if not match:
        raise InvalidModelSource(field, f"{uri!r} is not hf://org/repo[@revision][/file.gguf]")
    file, rev = match["file"], match["rev"]
    if file is not None and not file.endswith(".gguf"):
        raise InvalidModelSource(field, f"{uri!r}: a file inside an hf:// repo must be a .gguf file; "
                                        "for the whole repository write hf://org/repo")
    if rev and revision and rev != revision:
        raise InvalidModelSource(field, f"{uri!r} names revision {rev!r} but the revision given is "
                                        f"{revision!r}; give it once")
    return ModelSource(uri=uri, scheme="hf", path=match["repo"], filename=file, revision=rev or revision)


def _s3(uri: str, rest: str, revision: str | None, field: str) -> ModelSource:
    match = _S3.match(rest)
    if not match:
        raise InvalidModelSource(field, f"{uri!r} is not s3://bucket/prefix (bucket: 3-63 lowercase "
                                        "letters, digits, dots and hyphens)")
    _no_revision(uri, revision, field)
    return ModelSource(uri=uri, scheme="s3", bucket=match["bucket"], path=(match["prefix"] or "").strip("/"))


def _pvc(uri: str, rest: str, revision: str | None, field: str) -> ModelSource:
    match = _PVC.match(rest)
    if not match or len(match["claim"]) > 253:
        raise InvalidModelSource(field, f"{uri!r} is not pvc://claim/path (claim: a lowercase DNS name)")
    _no_revision(uri, revision, field)
    sub = (match["path"] or "").strip("/")
    return ModelSource(uri=uri, scheme="local", path=f"{PVC_ROOT}/{match['claim']}" + (f"/{sub}" if sub else ""))
