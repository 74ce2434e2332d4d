"""A real S3-compatible server (moto in server mode) and model files to put in it."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def s3_server():
    """`AWS_ENDPOINT_URL` of a moto S3 server listening on 127.0.0.1 for the session."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Environment a worker pod would get from spec.template.env for an S3-compatible store."""
    env = {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def s3(s3_env):
    import boto3

    return boto3.client("s3")


@pytest.fixture
def upload_dir(s3):
    """upload_dir(bucket, prefix, directory): every file of `directory` under s3://bucket/prefix/."""

    def upload(bucket: str, prefix: str, directory) -> None:
        s3.create_bucket(Bucket=bucket)
        for file in sorted(p for p in directory.rglob("*") if p.is_file()):
            s3.upload_file(str(file), bucket, f"{prefix}/{file.relative_to(directory)}")

    return upload
