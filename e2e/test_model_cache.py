"""Remote models through the node-local cache: an s3:// model on a real S3-compatible
server (moto), fetched by the pod's init container once, then loaded from the cache
by every later pod. Prints the cold-start figures (pod created -> Ready) with an
empty and a warm cache for the real SmolLM2-135M-Instruct."""
from __future__ import annotations

import shutil
import time
from datetime import datetime
from pathlib import Path

import pytest

from e2e_kube import DEPLOYMENT_LABEL, is_ready, llmd, wait_for

pytestmark = pytest.mark.e2e
NAME = "cached"
URI = "s3://models/smollm2-135m-instruct"
TIMEOUT = 420


@pytest.fixture(scope="module")
def s3_model(s3_endpoint, smollm2_uri):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint["AWS_ENDPOINT_URL"], aws_access_key_id="e2e",
                      aws_secret_access_key="e2e", region_name="us-east-1")
    s3.create_bucket(Bucket="models")
    model = Path(smollm2_uri.removeprefix("file://"))
    for file in sorted(p for p in model.iterdir() if p.is_file()):
        s3.upload_file(str(file), "models", f"smollm2-135m-instruct/{file.name}")
    return URI


def _cache_entries(dev_env) -> list[Path]:
    from halyard.dev.operator_proc import model_cache_dir

    root = model_cache_dir(dev_env.paths)
    return [p for p in root.glob("s3-*") if p.is_dir() and not p.name.endswith(".partial")] if root.is_dir() else []


def _pod(kubectl, ns, exclude=()):
    pods = [p for p in kubectl.items("pods", "-n", ns, "-l", f"{DEPLOYMENT_LABEL}={NAME}")
            if not p["metadata"].get("deletionTimestamp") and p["metadata"]["uid"] not in exclude]
    return pods[0] if len(pods) == 1 else None


def _start_to_ready(kubectl, ns, exclude=()) -> tuple[dict, float]:
    """Wait for the (new) pod to be Ready; seconds from its creation to Ready, by the API's clocks."""
    pod = wait_for(lambda: (p := _pod(kubectl, ns, exclude)) and is_ready(p) and p, TIMEOUT, "a Ready worker")
    created = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    became = datetime.fromisoformat(ready["lastTransitionTime"].replace("Z", "+00:00"))
    return pod, (became - created).total_seconds()


def _fetch_log(dev_env, ns, pod) -> str:
    return (dev_env.paths.logs / "pods" / f"{ns}_{pod['metadata']['name']}_fetch-model.log").read_text()


def test_cold_then_warm_start_from_the_node_cache(dev_env, kubectl, operator, namespace, s3_model, s3_endpoint):
    for entry in _cache_entries(dev_env):  # an empty cache for this URI
        shutil.rmtree(entry)
    env = [{"name": k, "value": v} for k, v in s3_endpoint.items()]
    kubectl.apply(llmd(NAME, namespace, s3_model, template={"env": env},
                       engine={"dtype": "float32", "maxModelLen": 512, "maxNumSeqs": 4}), "--server-side")
    started = time.monotonic()
    cold_pod, cold = _start_to_ready(kubectl, namespace)
    cold_wall = time.monotonic() - started
    cold_log = _fetch_log(dev_env, namespace, cold_pod)
    assert f"fetching {URI}:" in cold_log and f"fetched {URI}" in cold_log, cold_log
    (entry,) = _cache_entries(dev_env)
    assert (entry / "model.safetensors").is_file()
    args = cold_pod["spec"]["containers"][0]["args"]
    assert args[args.index("--model") + 1] == URI and "--model-cache" in args

    kubectl.run("delete", "pod", cold_pod["metadata"]["name"], "-n", namespace, "--wait=false")
    started = time.monotonic()
    warm_pod, warm = _start_to_ready(kubectl, namespace, exclude={cold_pod["metadata"]["uid"]})
    warm_wall = time.monotonic() - started
    warm_log = _fetch_log(dev_env, namespace, warm_pod)
    assert f"cache hit: {URI}" in warm_log and f"fetching {URI}:" not in warm_log, warm_log
    print(f"\ncold start (empty cache): pod created -> Ready {cold:.0f} s (API clock), {cold_wall:.1f} s observed"
          f"\nwarm start (cached):      pod created -> Ready {warm:.0f} s (API clock), {warm_wall:.1f} s observed")
    assert warm < cold
