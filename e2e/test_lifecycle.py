"""An LLMDeployment's life on the real control plane, served by real worker processes
running the real, trained SmolLM2-135M-Instruct.

One deployment goes through create -> serve -> engine update (rolling) ->
kubectl scale -> re-apply (no writes) -> delete (garbage collection); the steps
depend on each other, so they run in file order on one module-scoped object.
"""
from __future__ import annotations

import time

import pytest
import yaml

from e2e_kube import DEPLOYMENT_LABEL, condition, is_ready, llmd, pool_of, wait_for

pytestmark = pytest.mark.e2e
NAME = "chat"
TIMEOUT = 300  # model load on a shared CPU


@pytest.fixture(scope="module")
def ns(kubectl, operator):
    kubectl.run("create", "namespace", "lifecycle", check=False)
    yield "lifecycle"
    kubectl.run("delete", "namespace", "lifecycle", "--wait=false", check=False)


@pytest.fixture(scope="module")
def manifest(ns, smollm2_uri):
    return llmd(NAME, ns, smollm2_uri, replicas=2, capacity={"spot": {"enabled": True, "onDemandFloor": 1}},
                engine={"dtype": "float32", "maxModelLen": 512, "maxNumSeqs": 8})


def _pods(kubectl, ns):
    return kubectl.items("pods", "-n", ns, "-l", f"{DEPLOYMENT_LABEL}={NAME}")


def _settled(kubectl, ns, replicas: int):
    """The LLMDeployment when its status reflects the current generation with all replicas ready."""
    obj = kubectl.get_json("llmd", NAME, "-n", ns)
    st = obj.get("status", {})
    ready = condition(obj, "Ready")
    ok = (st.get("observedGeneration") == obj["metadata"]["generation"] and st.get("readyReplicas") == replicas
          and st.get("replicas") == replicas and ready and ready["status"] == "True"
          and len([p for p in _pods(kubectl, ns) if not p["metadata"].get("deletionTimestamp")]) == replicas)
    return obj if ok else None


def test_create_builds_children_and_schedules_pools(kubectl, ns, manifest, nodes):
    kubectl.apply(manifest, "--server-side")
    for kind, name in (("deployment", f"{NAME}-ondemand"), ("deployment", f"{NAME}-spot"),
                       ("service", NAME), ("service", f"{NAME}-workers"), ("pdb", NAME),
                       ("deployment", f"{NAME}-router"), ("pdb", f"{NAME}-router"), ("role", f"{NAME}-router"),
                       ("rolebinding", f"{NAME}-router"), ("serviceaccount", f"{NAME}-router")):
        child = wait_for(lambda: kubectl.run("get", kind, name, "-n", ns, "-o", "yaml", check=False),
                         60, f"{kind} {name}")
        owners = yaml.safe_load(child)["metadata"]["ownerReferences"]
        assert owners[0]["kind"] == "LLMDeployment" and owners[0]["name"] == NAME and owners[0]["controller"]
    pods = wait_for(lambda: (ps := _pods(kubectl, ns)) and len(ps) == 2
                    and all(p["spec"].get("nodeName") for p in ps) and ps, 60, "2 scheduled worker pods")
    all_nodes = nodes()
    pools = sorted(pool_of(p, all_nodes) for p in pods)
    assert pools == ["on-demand", "spot"]
    for pod in pods:
        pool = pool_of(pod, all_nodes)
        owner = pod["metadata"]["ownerReferences"][0]["name"]  # ReplicaSet <name>-<pool>-<hash>
        assert owner.startswith(f"{NAME}-{'ondemand' if pool == 'on-demand' else 'spot'}-")


def test_becomes_ready_with_status_counts(kubectl, ns):
    obj = wait_for(lambda: _settled(kubectl, ns, 2), TIMEOUT, "2/2 ready replicas and Ready=True")
    st = obj["status"]
    assert st["onDemandReplicas"] == 1 and st["spotReplicas"] == 1
    assert st["selector"] and NAME in st["selector"]
    assert all(is_ready(p) for p in _pods(kubectl, ns))
    for kind in ("Progressing", "Degraded"):
        assert condition(obj, kind) is not None, kind
    assert condition(obj, "Degraded")["status"] == "False"


def test_worker_serves_an_openai_completion_at_the_pod_ip(kubectl, ns):
    from openai import OpenAI

    for pod in _pods(kubectl, ns):
        port = pod["spec"]["containers"][0]["ports"][0]["containerPort"]
        client = OpenAI(base_url=f"http://{pod['status']['podIP']}:{port}/v1", api_key="e2e", timeout=120)
        out = client.chat.completions.create(
            model=NAME, messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=24, temperature=0)
        assert "Paris" in out.choices[0].message.content, out.choices[0].message.content
        assert out.model == NAME and out.usage.completion_tokens >= 1


def _routers(kubectl, ns):
    return [p for p in kubectl.items("pods", "-n", ns, "-l", f"halyard.dev/router={NAME}")
            if not p["metadata"].get("deletionTimestamp")]


def test_service_points_at_the_routers_which_serve_through_the_workers(kubectl, ns):
    from openai import OpenAI

    service = kubectl.get_json("service", NAME, "-n", ns)
    assert service["spec"]["selector"] == {"halyard.dev/router": NAME}
    assert kubectl.get_json("service", f"{NAME}-workers", "-n", ns)["spec"]["clusterIP"] == "None"
    routers = wait_for(lambda: (rs := _routers(kubectl, ns)) and len(rs) == 2 and all(map(is_ready, rs)) and rs,
                       120, "2 ready router pods")
    workers = {p["metadata"]["name"] for p in _pods(kubectl, ns)}
    for router in routers:
        client = OpenAI(base_url=f"http://{router['status']['podIP']}:8000/v1", api_key="e2e", timeout=120)
        raw = client.completions.with_raw_response.create(model=NAME, prompt="Kubernetes schedules", max_tokens=5,
                                                          temperature=0)
        assert raw.headers["X-Halyard-Backend"] in workers
        assert raw.parse().choices[0].text
        chunks = list(client.completions.create(model=NAME, prompt="Pods run", max_tokens=5, stream=True))
        assert len(chunks) >= 2


def test_engine_update_rolls_the_workers(kubectl, ns, manifest):
    before = {p["metadata"]["uid"] for p in _pods(kubectl, ns)}
    updated = yaml.safe_load(yaml.safe_dump(manifest))
    updated["spec"]["engine"]["maxNumSeqs"] = 3
    kubectl.apply(updated, "--server-side")
    obj = wait_for(lambda: (o := _settled(kubectl, ns, 2)) and
                   not before & {p["metadata"]["uid"] for p in _pods(kubectl, ns)} and o,
                   TIMEOUT, "all workers replaced and ready")
    assert obj["metadata"]["generation"] >= 2
    for pod in _pods(kubectl, ns):
        args = pod["spec"]["containers"][0]["args"]
        assert args[args.index("--max-num-seqs") + 1] == "3"
    manifest["spec"]["engine"]["maxNumSeqs"] = 3


def test_kubectl_scale_changes_replicas(kubectl, ns):
    kubectl.run("scale", f"llmd/{NAME}", "-n", ns, "--replicas=3")
    obj = wait_for(lambda: _settled(kubectl, ns, 3), TIMEOUT, "3/3 ready replicas after kubectl scale")
    assert obj["spec"]["replicas"] == 3
    assert obj["status"]["onDemandReplicas"] >= 1
    kubectl.run("scale", f"llmd/{NAME}", "-n", ns, "--replicas=2")
    wait_for(lambda: _settled(kubectl, ns, 2), TIMEOUT, "back to 2 replicas")


def _fingerprint(kubectl, ns) -> dict:
    """Per object: generation and the non-status managedFields (who wrote what, when);
    for the Service also the resourceVersion (nothing else writes it)."""
    objs = [("llmd", kubectl.get_json("llmd", NAME, "-n", ns))]
    for kind in ("deployment", "service", "pdb"):
        objs += [(kind, o) for o in kubectl.items(kind, "-n", ns, "-l", f"{DEPLOYMENT_LABEL}={NAME}")]
    out = {}
    for kind, obj in objs:
        meta = obj["metadata"]
        writes = [f for f in meta.get("managedFields") or [] if f.get("subresource") != "status"]
        rv = meta["resourceVersion"] if kind == "service" else None
        out[f"{kind}/{meta['name']}"] = (meta.get("generation"), rv, yaml.safe_dump(writes))
    return out


def test_applying_the_same_manifest_twice_writes_nothing(kubectl, ns, manifest):
    kubectl.apply(manifest, "--server-side")
    wait_for(lambda: _settled(kubectl, ns, 2), TIMEOUT, "settled")
    time.sleep(3)
    before = _fingerprint(kubectl, ns)
    assert len(before) == 8, sorted(before)  # llmd, 2 pool + router Deployments, 2 Services, 2 PDBs
    kubectl.apply(manifest, "--server-side")
    time.sleep(8)  # several operator resyncs
    assert _fingerprint(kubectl, ns) == before


def test_delete_garbage_collects_children(kubectl, ns):
    ips = [p["status"]["podIP"] for p in _pods(kubectl, ns)]
    kubectl.run("delete", "llmd", NAME, "-n", ns, "--wait=true", "--timeout=60s")

    def gone():
        left = [kind for kind in ("deployment", "replicaset", "service", "pdb", "pod", "role", "rolebinding")
                if kubectl.items(kind, "-n", ns, "-l", f"{DEPLOYMENT_LABEL}={NAME}")]
        left += ["router pod"] if kubectl.items("pod", "-n", ns, "-l", f"halyard.dev/router={NAME}") else []
        return not left or None

    wait_for(gone, 90, "children removed by the garbage collector")
    import urllib.request

    def stopped():
        for ip in ips:
            try:
                urllib.request.urlopen(f"http://{ip}:8000/health", timeout=1)
                return False
            except OSError:
                continue
        return True

    wait_for(stopped, 60, "worker processes to stop")
