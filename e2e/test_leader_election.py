"""Two operator replicas under Lease-based leader election on the real
control plane: the leader is killed mid-reconcile, the standby takes over
within the lease duration, and the children converge with no duplicate or
flapping writes; a clean stop hands over at once."""
from __future__ import annotations

import json
import time

import pytest

from e2e_kube import DEPLOYMENT_LABEL, llmd, wait_for

pytestmark = pytest.mark.e2e
LEASE_S, RENEW_S, RETRY_S = 6, 4, 1
PLACEHOLDER = {"env": [{"name": "HALYARD_DEV_RUNNER", "value": "skip"}]}
EXPECTED = {"deployment": ["c-ondemand", "c-router", "c-spot"], "service": ["c", "c-workers"], "pdb": ["c", "c-router"]}


@pytest.fixture
def replicas(dev_env, operator, namespace):
    """Replicas a and b, the Lease in the test namespace; the session's single operator is paused."""
    from halyard.dev.operator_proc import OperatorProcess

    operator.stop()

    def replica(identity: str) -> OperatorProcess:
        return OperatorProcess(dev_env.paths, name=f"operator-{identity}", extra_args=(
            "--leader-elect", f"--leader-elect-namespace={namespace}", f"--leader-elect-identity={identity}",
            f"--leader-elect-lease-duration={LEASE_S}", f"--leader-elect-renew-deadline={RENEW_S}",
            f"--leader-elect-retry-period={RETRY_S}"))

    procs = {i: replica(i) for i in ("a", "b")}
    for proc in procs.values():
        proc.start()
    yield procs
    for proc in procs.values():
        proc.stop()
    operator.start()


def holder(kubectl, namespace) -> str | None:
    out = kubectl.run("get", "lease", "halyard-operator", "-n", namespace, "-o", "json", check=False)
    return (json.loads(out).get("spec") or {}).get("holderIdentity") or None if out.strip() else None


def children(kubectl, ns):
    sel = f"{DEPLOYMENT_LABEL}=c"
    return {kind: sorted(o["metadata"]["name"] for o in kubectl.items(kind, "-n", ns, "-l", sel))
            for kind in ("deployment", "service", "pdb")}


def versions(kubectl, ns) -> dict[str, str]:
    sel = f"{DEPLOYMENT_LABEL}=c"
    return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for kind in ("deployment", "service", "pdb") for o in kubectl.items(kind, "-n", ns, "-l", sel)}


def live_pods(kubectl, ns):
    return [p for p in kubectl.items("pods", "-n", ns, "-l", f"{DEPLOYMENT_LABEL}=c")
            if not p["metadata"].get("deletionTimestamp")]


def test_standby_takes_over_from_a_leader_killed_mid_reconcile(kubectl, namespace, model_uri, replicas):
    leader = wait_for(lambda: holder(kubectl, namespace), 60, "a replica holding the Lease")
    standby = "b" if leader == "a" else "a"
    time.sleep(3 * RETRY_S)
    assert holder(kubectl, namespace) == leader, "the Lease changed hands with both replicas alive"

    kubectl.apply(llmd("c", namespace, model_uri, template=PLACEHOLDER, replicas=3,
                       resources={"gpus": 1, "gpuProduct": "NVIDIA-H100-80GB-HBM3"},
                       capacity={"spot": {"enabled": True, "onDemandFloor": 1}}))
    time.sleep(0.3)
    replicas[leader].kill()
    killed_at = time.monotonic()
    at_kill = children(kubectl, namespace)
    wait_for(lambda: holder(kubectl, namespace) == standby, LEASE_S + 10, "the standby holding the Lease",
             interval=0.2)
    takeover_s = time.monotonic() - killed_at
    print(f"\ntakeover after the leader's SIGKILL: {takeover_s:.1f}s (lease {LEASE_S}s, retry {RETRY_S}s); "
          f"children at the kill: {at_kill}")
    assert takeover_s <= LEASE_S + 2 * RETRY_S + 1

    wait_for(lambda: children(kubectl, namespace) == EXPECTED, 60, "children converged under the new leader")
    wait_for(lambda: len(live_pods(kubectl, namespace)) == 3, 60, "3 pods")
    settled = versions(kubectl, namespace)
    # status.cost at the dev config's prices: 1 on-demand GPU at 6.98, 2 spot at 2.45.
    cost = wait_for(lambda: kubectl.get_json("llmd", "c", "-n", namespace).get("status", {}).get("cost", {})
                    .get("gpuHoursPerHour") == 3 and kubectl.get_json("llmd", "c", "-n", namespace)["status"]["cost"],
                    30, "status.cost for 3 replicas")
    assert (cost["perHour"], cost["allOnDemandPerHour"], cost["savingPerHour"]) == (11.88, 20.94, 9.06)
    replicas[leader].start()  # back as a standby: it must not take over nor write
    time.sleep(LEASE_S + 2 * RETRY_S)
    assert holder(kubectl, namespace) == standby
    assert versions(kubectl, namespace) == settled, "a child was rewritten after convergence"
    assert len(live_pods(kubectl, namespace)) == 3
    for dep in kubectl.items("deployment", "-n", namespace, "-l", f"{DEPLOYMENT_LABEL}=c", "--show-managed-fields"):
        writers = {f["manager"] for f in dep["metadata"]["managedFields"] if f.get("subresource") != "status"}
        assert writers == {"halyard-operator"}, f"{dep['metadata']['name']} written by {writers}"

    # A clean stop (SIGTERM) releases the Lease: the other replica takes over at once.
    stopped_at = time.monotonic()
    replicas[standby].stop()
    wait_for(lambda: holder(kubectl, namespace) == leader, LEASE_S + 10, "hand-over after a clean stop",
             interval=0.2)
    handover_s = time.monotonic() - stopped_at
    print(f"hand-over after SIGTERM: {handover_s:.1f}s")
    assert handover_s < LEASE_S
    time.sleep(3 * RETRY_S)  # the new leader resumes every object: nothing to write
    assert versions(kubectl, namespace) == settled, "the hand-over rewrote a child"
