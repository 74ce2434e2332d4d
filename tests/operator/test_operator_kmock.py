"""The real kopf operator against the kmock API emulator: samples in, children
and status out; idempotent re-reconciles; updates; deletion; bad input."""
from __future__ import annotations

import asyncio

import pytest

from halyard_operator.names import HASH_ANNOTATION
from tests.operator.conftest import LLMD, NAMESPACE, sample

DEPLOY, SVC, PDB = "apps/v1/deployments", "v1/services", "policy/v1/poddisruptionbudgets"


def condition(obj: dict, type_: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


async def reconciled(cluster, name: str) -> dict:
    return await cluster.wait_for(
        lambda: (o := cluster.get(LLMD, name)) and condition(o, "Degraded") and o, what=f"status of {name}")


@pytest.mark.parametrize("file,pools", [
    ("fixed-size.yaml", {"ondemand": 2}),
    ("spot-mix.yaml", {"ondemand": 1, "spot": 4}),
    ("autoscaling-slo.yaml", {"ondemand": 2, "spot": 0}),
    ("batch-spot.yaml", {"ondemand": 0, "spot": 3}),
])
async def test_sample_becomes_children_with_owner_refs(cluster, file, pools):
    obj = await cluster.create_llmd(sample(file))
    name, uid = obj["metadata"]["name"], obj["metadata"]["uid"]
    llmd = await reconciled(cluster, name)
    assert cluster.names(DEPLOY) == {f"{name}-{pool}" for pool in pools} | {f"{name}-router"}
    for pool, replicas in pools.items():
        dep = cluster.get(DEPLOY, f"{name}-{pool}")
        assert dep["spec"]["replicas"] == replicas
        assert dep["spec"]["template"]["metadata"]["labels"]["halyard.dev/pool"] == pool
        pod = dep["spec"]["template"]["spec"]
        assert pod["priorityClassName"] == f"halyard-{obj['spec']['tier']}"
        worker = pod["containers"][0]
        assert worker["command"] == ["halyard-worker"]
        assert worker["resources"]["limits"]["nvidia.com/gpu"] == str(obj["spec"]["resources"]["gpus"])
    for resource, child in ((SVC, name), (SVC, f"{name}-workers"), (PDB, name), (PDB, f"{name}-router")):
        assert cluster.get(resource, child) is not None
    for resource, child in [(DEPLOY, f"{name}-{p}") for p in pools] + [(SVC, name), (PDB, name)]:
        (ref,) = cluster.get(resource, child)["metadata"]["ownerReferences"]
        assert (ref["uid"], ref["kind"], ref["controller"], ref["blockOwnerDeletion"]) == (
            uid, "LLMDeployment", True, True)
    status = llmd["status"]
    assert condition(llmd, "Degraded")["status"] == "False"
    assert status["selector"] == f"halyard.dev/deployment={name}"
    assert status["endpoint"] == f"http://{name}.{NAMESPACE}.svc:8000/v1"
    assert status["observedGeneration"] == 1


async def test_writes_are_server_side_apply_with_our_field_manager(cluster):
    await cluster.create_llmd(sample("spot-mix.yaml"))
    await reconciled(cluster, "chat-spot")
    applies = [r for r in cluster.writes("/deployments/") if r.method == "PATCH"]
    assert applies, "no apply request was sent"
    for request in applies:
        assert request.headers["Content-Type"] == "application/apply-patch+yaml"
        assert request.params["fieldManager"] == "halyard-operator"
        assert request.params["force"] == "true"


async def test_pool_selectors_and_tolerations_follow_the_detected_provider(cluster):
    await cluster.create_llmd(sample("spot-mix.yaml"))
    await reconciled(cluster, "chat-spot")
    spot = cluster.get(DEPLOY, "chat-spot-spot")["spec"]["template"]["spec"]
    od = cluster.get(DEPLOY, "chat-spot-ondemand")["spec"]["template"]["spec"]
    assert spot["nodeSelector"] == {"eks.amazonaws.com/capacityType": "SPOT",
                                    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert od["nodeSelector"]["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spot["tolerations"]


async def test_batch_sample_uses_karpenter_spot_label(cluster):
    await cluster.create_llmd(sample("batch-spot.yaml"))
    await reconciled(cluster, "batch-summarize")
    spot = cluster.get(DEPLOY, "batch-summarize-spot")["spec"]["template"]["spec"]
    assert spot["nodeSelector"] == {"karpenter.sh/capacity-type": "spot"}
    assert spot["containers"][0]["args"][-1] == "--block-size=32"
    assert "--no-prefix-caching" in spot["containers"][0]["args"]


async def test_status_counts_come_from_children(cluster):
    await cluster.create_llmd(sample("spot-mix.yaml"))
    await reconciled(cluster, "chat-spot")
    def counted():
        status = (cluster.get(LLMD, "chat-spot") or {}).get("status", {})
        return (status.get("replicas"), status.get("readyReplicas"), status.get("onDemandReplicas"),
                status.get("spotReplicas"))

    # Like the Deployment controller, keep reporting the children's status until the
    # parent shows it (a reconcile in flight may rewrite a child just after a report).
    for _ in range(30):
        for name, (replicas, ready) in {"chat-spot-ondemand": (1, 1), "chat-spot-spot": (4, 3)}.items():
            resp = await cluster.kmock.patch(
                f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}/status",
                json={"status": {"replicas": replicas, "readyReplicas": ready, "updatedReplicas": replicas}})
            assert resp.status == 200
        try:
            await cluster.wait_for(lambda: counted() == (5, 4, 1, 4), timeout=1.0, what="status from the timer")
            break
        except AssertionError:
            continue
    llmd = cluster.get(LLMD, "chat-spot")
    status = llmd["status"]
    assert (status["replicas"], status["readyReplicas"], status["onDemandReplicas"]) == (5, 4, 1)
    assert condition(llmd, "Ready")["status"] == "True"  # 4 ready >= target 4


async def _quiet_writes(cluster, quiet_s: float = 1.5, timeout_s: float = 30.0) -> int:
    """The write count once no write came for `quiet_s` (a loaded machine slows the first reconcile)."""
    last, deadline = -1, asyncio.get_running_loop().time() + timeout_s
    while (count := len(cluster.writes(f"/namespaces/{NAMESPACE}/"))) != last:
        assert asyncio.get_running_loop().time() < deadline, "writes never stopped"
        last = count
        await asyncio.sleep(quiet_s)
    return count


async def test_steady_state_makes_no_api_call(cluster):
    """Reconciles read the watch-fed indexes: once converged, the safety net
    (interval 1 s here) reconciles again without a single request."""
    await cluster.create_llmd(sample("fixed-size.yaml"))
    await reconciled(cluster, "chat-fixed")
    await _quiet_writes(cluster)  # the create handler's own writes (kopf's annotations) land first
    calls, runs = len(cluster.calls()), cluster.reconciles()
    await asyncio.sleep(2.5)  # >= 2 safety-net reconciles
    assert cluster.reconciles() >= runs + 2, "the safety-net reconcile did not run"
    assert [f"{r.method} {r.url.path}" for r in cluster.calls()[calls:]] == []


async def test_update_patches_only_changed_children(cluster):
    obj = await cluster.create_llmd(sample("fixed-size.yaml"))
    await reconciled(cluster, "chat-fixed")
    hashes = {r: cluster.get(r, n)["metadata"]["annotations"][HASH_ANNOTATION]
              for r, n in ((SVC, "chat-fixed"), (PDB, "chat-fixed"))}
    mark = len(cluster.requests())
    resp = await cluster.kmock.patch(f"/apis/halyard.dev/v1alpha1/namespaces/{NAMESPACE}/llmdeployments/chat-fixed",
                                     json={"metadata": {"generation": 2}, "spec": {"replicas": 3}})
    assert resp.status == 200
    await cluster.wait_for(lambda: cluster.get(DEPLOY, "chat-fixed-ondemand")["spec"]["replicas"] == 3,
                           what="replicas 3")
    await cluster.wait_for(lambda: cluster.get(LLMD, "chat-fixed")["status"]["observedGeneration"] == 2)
    written = {str(r.url).rsplit("/", 1)[-1].split("?")[0] for r in list(cluster.requests())[mark:]
               if r.method == "PATCH" and "/llmdeployments/" not in str(r.url)}
    assert written == {"chat-fixed-ondemand"}
    for r, n in ((SVC, "chat-fixed"), (PDB, "chat-fixed")):
        assert cluster.get(r, n)["metadata"]["annotations"][HASH_ANNOTATION] == hashes[r]
    assert obj["metadata"]["uid"]


async def test_disabling_spot_deletes_the_spot_pool(cluster):
    await cluster.create_llmd(sample("spot-mix.yaml"))
    await reconciled(cluster, "chat-spot")
    await cluster.kmock.patch(f"/apis/halyard.dev/v1alpha1/namespaces/{NAMESPACE}/llmdeployments/chat-spot",
                              json={"metadata": {"generation": 2}, "spec": {"capacity": {"spot": {"enabled": False}}}})
    await cluster.wait_for(lambda: "chat-spot-spot" not in cluster.names(DEPLOY), what="spot pool deleted")
    assert cluster.get(DEPLOY, "chat-spot-ondemand")["spec"]["replicas"] == 4


async def test_delete_removes_the_object(cluster):
    await cluster.create_llmd(sample("fixed-size.yaml"))
    await reconciled(cluster, "chat-fixed")
    # No finalizer at all (no per-object timers to stop); children go by owner references.
    assert not cluster.get(LLMD, "chat-fixed")["metadata"].get("finalizers")
    resp = await cluster.kmock.delete(f"/apis/halyard.dev/v1alpha1/namespaces/{NAMESPACE}/llmdeployments/chat-fixed")
    assert resp.status == 200
    await cluster.wait_for(lambda: cluster.get(LLMD, "chat-fixed") is None, what="object gone")


@pytest.mark.parametrize("spec_patch,reason,fix", [
    ({"replicas": 2, "scaling": {"maxReplicas": 3}}, "InvalidSpec", "exactly one of spec.replicas"),
    ({"engine": {"extraArgs": ["--port=9000"]}}, "InvalidExtraArgs", "remove it from extraArgs"),
    ({"template": {"imagePullSecrets": [{"name": "missing-creds"}]}}, "ImagePullSecretNotFound",
     "create it or remove it"),
    ({"model": {"name": "m", "uri": "ftp://nope"}}, "InvalidSpec", "hf://org/repo"),
])
async def test_malformed_object_is_degraded_without_children(cluster, spec_patch, reason, fix):
    obj = sample("fixed-size.yaml")
    obj["spec"].update(spec_patch)
    await cluster.create_llmd(obj)
    llmd = await reconciled(cluster, "chat-fixed")
    degraded = condition(llmd, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", reason)
    assert fix in degraded["message"]
    assert cluster.names(DEPLOY) == set() and cluster.names(SVC) == set()
    warnings = await cluster.wait_for(
        lambda: [e for e in cluster.events() if (e["type"], e["reason"]) == ("Warning", reason)],
        what="a Warning event")
    assert fix in warnings[0]["message"]
    # The operator keeps running: a good object next to it still reconciles.
    await cluster.create_llmd(sample("spot-mix.yaml"))
    await reconciled(cluster, "chat-spot")
    assert "chat-spot-ondemand" in cluster.names(DEPLOY)


async def test_created_children_are_announced_as_events(cluster):
    await cluster.create_llmd(sample("fixed-size.yaml"))
    await reconciled(cluster, "chat-fixed")
    messages = await cluster.wait_for(lambda: {e["message"] for e in cluster.events()} or None,
                                      what="events")
    assert f"Created Deployment {NAMESPACE}/chat-fixed-ondemand" in messages
    assert f"Created Service {NAMESPACE}/chat-fixed" in messages
    llmd = cluster.get(LLMD, "chat-fixed")
    for event in cluster.events():  # where kubectl describe / kubectl events --for look
        assert event["involvedObject"] == {
            "apiVersion": "halyard.dev/v1alpha1", "kind": "LLMDeployment", "name": "chat-fixed",
            "namespace": NAMESPACE, "uid": llmd["metadata"]["uid"]}
        assert event["reportingComponent"] == "halyard-operator"


async def test_operator_needs_no_crd_or_namespace_access(cluster):
    # The ClusterRole grants neither: kopf's scanning is disabled.
    await cluster.create_llmd(sample("fixed-size.yaml"))
    await reconciled(cluster, "chat-fixed")
    paths = [r.url.path for r in cluster.requests()]
    assert not [p for p in paths if "customresourcedefinitions" in p]
    assert not [p for p in paths if p.rstrip("/").endswith("/api/v1/namespaces")]


async def test_update_that_breaks_the_spec_keeps_children_as_they_were(cluster):
    await cluster.create_llmd(sample("fixed-size.yaml"))
    await reconciled(cluster, "chat-fixed")
    before = cluster.get(DEPLOY, "chat-fixed-ondemand")["metadata"]["annotations"][HASH_ANNOTATION]
    await cluster.kmock.patch(f"/apis/halyard.dev/v1alpha1/namespaces/{NAMESPACE}/llmdeployments/chat-fixed",
                              json={"metadata": {"generation": 2},
                                    "spec": {"replicas": 5, "engine": {"extraArgs": ["--host=0.0.0.0"]}}})
    llmd = await cluster.wait_for(
        lambda: (o := cluster.get(LLMD, "chat-fixed")) and condition(o, "Degraded")["status"] == "True" and o,
        what="Degraded after the update")
    assert condition(llmd, "Degraded")["reason"] == "InvalidExtraArgs"
    assert condition(llmd, "Progressing")["reason"] == "Blocked"
    dep = cluster.get(DEPLOY, "chat-fixed-ondemand")
    assert dep["spec"]["replicas"] == 2
    assert dep["metadata"]["annotations"][HASH_ANNOTATION] == before


async def test_a_crash_looping_worker_degrades_the_deployment_with_one_event(cluster):
    from tests.operator.conftest import seeded

    await cluster.create_llmd(sample("fixed-size.yaml"))
    await reconciled(cluster, "chat-fixed")
    message = "ModelLoadFailed: --model: '/models/x' is not a directory"
    pod = seeded({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "chat-fixed-ondemand-abc", "labels": {"halyard.dev/deployment": "chat-fixed"}},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "worker", "ready": False, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "message": message}}}]}})
    await cluster.post(f"/api/v1/namespaces/{NAMESPACE}/pods", pod)

    def degraded():
        cond = condition(cluster.get(LLMD, "chat-fixed"), "Degraded")
        return cond["status"] == "True" and cond
    cond = await cluster.wait_for(degraded, what="Degraded=True")
    assert cond["reason"] == "ModelLoadFailed" and message in cond["message"]
    assert cluster.get(LLMD, "chat-fixed")["status"]["reason"] == "ModelLoadFailed"
    await asyncio.sleep(2.5)  # more periodic reconciles: still one Warning Event
    warnings = [e for e in cluster.events() if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["ModelLoadFailed"]
    assert warnings[0]["involvedObject"]["kind"] == "LLMDeployment"
