"""Status patches the pod runner writes."""
from __future__ import annotations

from halyard.dev.podstatus import ContainerView, status_patch

NOW = "2026-01-01T00:00:00Z"


def view(**kw):
    base = dict(name="worker", image="img", running=True, ready=True, restarts=0, started_at=NOW,
                exit_code=None, exit_reason=None)
    return ContainerView(**{**base, **kw})


def test_ready_only_when_every_container_is_ready():
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "old"}]}}
    patch = status_patch(pod, [view(), view(name="side", ready=False)], NOW)
    conds = {c["type"]: c for c in patch["status"]["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["lastTransitionTime"] == "old"
    patch = status_patch(pod, [view()], NOW)
    assert {c["type"]: c["status"] for c in patch["status"]["conditions"]} == {"Ready": "True",
                                                                                "ContainersReady": "True"}


def test_crashed_container_reports_exit_and_backoff():
    status = status_patch({}, [view(running=False, ready=False, restarts=2, exit_code=1, exit_reason="Error")],
                          NOW)["status"]["containerStatuses"][0]
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["exitCode"] == 1 and status["restartCount"] == 2
