"""s3://bucket/prefix into a cache entry, through boto3.

boto3 finds the endpoint and credentials the usual way (AWS_ENDPOINT_URL or
AWS_ENDPOINT_URL_S3 for S3-compatible stores, AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, a profile, IRSA or instance metadata), so a pod gets
them from `spec.template.env`. Each object is streamed to disk with its
sha256 computed on the way; the size must match the listing and, where the
ETag is a plain MD5 (single-part uploads), the MD5 must match it too.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from halyard_worker.model.cache import CHUNK, Progress, log
from halyard_worker.model.source import ModelSource

_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')


class S3FetchError(RuntimeError):
    """The objects could not be listed or downloaded; the message names the URI."""


def client():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"max_attempts": 5, "mode": "standard"}))


def list_objects(s3, source: ModelSource) -> list[tuple[str, str, int, str]]:
    """(key, path relative to the prefix, size, etag) of every object the source names."""
    prefix = source.path
    if source.is_gguf:
        head = s3.head_object(Bucket=source.bucket, Key=prefix)
        return [(prefix, prefix.rsplit("/", 1)[-1], head["ContentLength"], head.get("ETag", ""))]
    base = f"{prefix}/" if prefix else ""
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source.bucket, Prefix=base):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(base):]
            if rel and not rel.endswith("/"):  # skip "directory" marker objects
                out.append((obj["Key"], rel, obj["Size"], obj.get("ETag", "")))
    return out


def download(source: ModelSource, dest: Path) -> dict[str, dict]:
    """Every object of `source` under `dest`; returns {relpath: {size, sha256}}."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3 = client()
        objects = list_objects(s3, source)
        if not objects:
            raise S3FetchError(f"{source.uri}: no objects under this prefix; check the bucket and "
                               "path (a directory prefix, or the key of a .gguf file)")
        total = sum(size for _, _, size, _ in objects)
        log.info("fetching %s: %d objects, %.1f MB", source.uri, len(objects), total / 1e6)
        progress = Progress(source.uri, total)
        return {rel: _get(s3, source, key, size, etag, dest / rel, progress)
                for key, rel, size, etag in objects}
    except (BotoCoreError, ClientError) as err:
        raise S3FetchError(f"{source.uri}: {type(err).__name__}: {err}") from err


def _get(s3, source: ModelSource, key: str, size: int, etag: str, target: Path, progress: Progress) -> dict:
    target.parent.mkdir(parents=True, exist_ok=True)
    sha, md5, written = hashlib.sha256(), hashlib.md5(), 0
    body = s3.get_object(Bucket=source.bucket, Key=key)["Body"]
    with open(target, "wb") as out:
        for block in body.iter_chunks(CHUNK):
            out.write(block)
            sha.update(block)
            md5.update(block)
            written += len(block)
            progress.add(len(block))
    if written != size:
        raise S3FetchError(f"s3://{source.bucket}/{key}: got {written} bytes, the listing says {size}")
    plain = _MD5_ETAG.match(etag or "")
    if plain and plain.group(1) != md5.hexdigest():
        raise S3FetchError(f"s3://{source.bucket}/{key}: MD5 {md5.hexdigest()} does not match ETag {etag}")
    return {"size": size, "sha256": sha.hexdigest()}
