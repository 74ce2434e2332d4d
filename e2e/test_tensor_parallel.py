"""A `gpus: 2` LLMDeployment on the real control plane: the pod asks for two
GPUs, its worker runs two tensor-parallel ranks (gloo: the fake GPU nodes'
pods run on CPU) and serves the OpenAI API at the pod IP."""
from __future__ import annotations

import subprocess

import pytest

from e2e_kube import DEPLOYMENT_LABEL, is_ready, llmd, wait_for

pytestmark = pytest.mark.e2e
NAME = "tp"
TIMEOUT = 300  # two ranks loading on a shared CPU


def _pods(kubectl, ns):
    return [p for p in kubectl.items("pods", "-n", ns, "-l", f"{DEPLOYMENT_LABEL}={NAME}")
            if not p["metadata"].get("deletionTimestamp")]


def _ranks(pod_ip: str) -> list[int]:
    """Follower rank processes of the worker serving at `pod_ip`."""
    found = subprocess.run(["pgrep", "-f", "--", f"serve .*--host {pod_ip} --port"], capture_output=True, text=True)
    ranks = []
    for pid in found.stdout.split():
        children = subprocess.run(["pgrep", "-P", pid, "-f", "halyard_worker.engine.tp_ranks"],
                                  capture_output=True, text=True)
        ranks += [int(c) for c in children.stdout.split()]
    return ranks


def test_a_two_gpu_replica_runs_two_ranks_and_serves(kubectl, operator, namespace, model_uri, nodes):
    from openai import OpenAI

    kubectl.apply(llmd(NAME, namespace, model_uri, resources={"gpus": 2},
                       engine={"dtype": "float32", "maxModelLen": 128, "maxNumSeqs": 4}), "--server-side")
    pod = wait_for(lambda: (ps := _pods(kubectl, namespace)) and is_ready(ps[0]) and ps[0], TIMEOUT,
                   "a ready two-rank worker pod")
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert {"name": "shm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    ip = pod["status"]["podIP"]
    assert len(_ranks(ip)) == 1, "rank 0 (the server) and one follower rank"
    client = OpenAI(base_url=f"http://{ip}:8000/v1", api_key="e2e", timeout=120)
    out = client.completions.create(model=NAME, prompt="The quick brown fox", max_tokens=6, temperature=0,
                                    extra_body={"min_tokens": 6})
    assert out.usage.completion_tokens == 6 and out.choices[0].text
