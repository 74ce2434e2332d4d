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


def test_crashed_container_reports_exit_and_backoff_as_the_kubelet_does():
    crashed = view(running=False, ready=False, restarts=2, exit_code=1, exit_reason="Error",
                   exit_message="ModelLoadFailed: no such model", exit_finished_at=NOW, restarting_in_s=4,
                   pod="team-a/chat-0")
    status = status_patch({}, [crashed], NOW)["status"]["containerStatuses"][0]
    assert status["state"]["waiting"] == {
        "reason": "CrashLoopBackOff", "message": "back-off 4s restarting failed container=worker pod=team-a/chat-0"}
    assert status["lastState"]["terminated"] == {"exitCode": 1, "reason": "Error", "finishedAt": NOW,
                                                 "message": "ModelLoadFailed: no such model"}
    assert status["restartCount"] == 2


def test_a_container_that_will_not_restart_is_terminated():
    done = view(running=False, ready=False, exit_code=0, exit_reason="Completed")
    status = status_patch({}, [done], NOW)["status"]["containerStatuses"][0]
    assert status["state"] == {"terminated": {"exitCode": 0, "reason": "Completed"}}
    assert "lastState" not in status


def test_a_restarted_container_keeps_its_last_exit():
    status = status_patch({}, [view(ready=False, restarts=1, exit_code=137, exit_reason="OOMKilled")],
                          NOW)["status"]["containerStatuses"][0]
    assert "running" in status["state"]
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
