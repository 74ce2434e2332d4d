"""Failure classification: typed pod observations -> Degraded reasons and messages (pure)."""
from __future__ import annotations

import pytest

from halyard_operator.names import DEGRADED_REASONS, Reason
from halyard_operator.observe import read_pod
from halyard_operator.observe.types import ContainerState, ObservedPod
from halyard_operator.reconcile.conditions import first_failing_reason
from halyard_operator.reconcile.failures import UNSCHEDULABLE_AFTER_S, failure_problems

NS = "team-a"


def pod(name="chat-ondemand-a", *containers, **kw) -> ObservedPod:
    return ObservedPod(name=name, pool="ondemand", node="n1", ready=False, age_s=60,
                       containers=tuple(containers), **kw)


def crashed(message="", code=1, reason="Error", restarts=3, waiting="CrashLoopBackOff") -> ContainerState:
    return ContainerState("worker", restarts=restarts, waiting_reason=waiting, waiting_message="back-off 8s",
                          last_exit_code=code, last_reason=reason, last_message=message)


def only(pods) -> tuple[str, str]:
    problems = failure_problems(pods, NS)
    assert len(problems) == 1, problems
    assert not problems[0].blocking  # failures never stop the operator from applying fixes
    return problems[0].reason, problems[0].message


def test_model_the_worker_cannot_load_quotes_the_worker_and_the_fix():
    msg = "ModelLoadFailed: --model: 's3://models/llama' is not a directory (or file:///dir, hf://org/repo)"
    reason, message = only([pod("chat-ondemand-a", crashed(msg, code=2))])
    assert reason == Reason.MODEL_LOAD_FAILED
    assert "worker pod chat-ondemand-a: container worker exited with code 2: " + msg in message
    assert "check spec.model.uri" in message


def test_rejected_engine_flags_and_a_plain_crash_are_told_apart():
    assert only([pod("p", crashed("InvalidArguments: --max-model-len too big"))])[0] == Reason.WORKER_ARGS_REJECTED
    reason, message = only([pod("p", crashed("Traceback ...\nRuntimeError: boom"))])
    assert reason == Reason.WORKER_CRASH_LOOP
    assert "RuntimeError: boom" in message and f"kubectl logs -n {NS} p --previous" in message


def test_oom_kill_and_image_pull_failures():
    reason, message = only([pod("p", crashed(code=137, reason="OOMKilled"))])
    assert reason == Reason.OOM_KILLED and "raise spec.resources.memory" in message
    pull = ContainerState("worker", waiting_reason="ImagePullBackOff",
                          waiting_message='Back-off pulling image "halyard/worker:9"')
    reason, message = only([pod("p", pull)])
    assert reason == Reason.IMAGE_PULL_FAILED and 'halyard/worker:9' in message and "spec.template.image" in message


def test_unschedulable_quotes_the_scheduler_after_a_grace_period():
    verdict = "0/5 nodes are available: 5 node(s) didn't match Pod's node affinity/selector."
    fresh = pod("p", unschedulable=verdict, unschedulable_s=UNSCHEDULABLE_AFTER_S - 1)
    assert failure_problems([fresh], NS) == []
    reason, message = only([pod("p", unschedulable=verdict, unschedulable_s=UNSCHEDULABLE_AFTER_S)])
    assert reason == Reason.UNSCHEDULABLE and verdict in message and "spec.resources.gpuProduct" in message


def test_healthy_starting_ready_and_deleting_pods_are_not_failures():
    starting = ContainerState("worker")
    recovered = ContainerState("worker", ready=True, restarts=4, last_exit_code=1, last_reason="Error")
    assert failure_problems([pod("a", starting), pod("b", recovered),
                             pod("c", crashed("ModelLoadFailed: x"), deleting=True)], NS) == []


def test_the_message_does_not_change_with_each_restart():
    first = failure_problems([pod("p", crashed("ModelLoadFailed: x", restarts=1))], NS)
    later = failure_problems([pod("p", crashed("ModelLoadFailed: x", restarts=9, waiting=""))], NS)
    assert first == later


def test_one_problem_per_class_most_specific_first_naming_the_first_pod():
    pods = [pod("b", crashed("RuntimeError")), pod("a", crashed("RuntimeError")),
            pod("c", crashed("ModelLoadFailed: gone"))]
    problems = failure_problems(pods, NS)
    assert [p.reason for p in problems] == [Reason.MODEL_LOAD_FAILED, Reason.WORKER_CRASH_LOOP]
    assert problems[1].message.startswith("worker pod a (and others): ")
    assert all(p.reason in DEGRADED_REASONS for p in problems)


def test_pod_statuses_are_read_as_the_kubelet_and_scheduler_write_them():
    obj = {"metadata": {"name": "p", "creationTimestamp": "2026-12-01T00:00:00Z"},
           "status": {"phase": "Pending", "conditions": [
               {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/4 nodes are available", "lastTransitionTime": "2026-12-01T00:00:10Z"}],
               "containerStatuses": [{"name": "worker", "ready": False, "restartCount": 2,
                                      "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                                      "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                                                   "message": "ModelLoadFailed: x\n"}}}]}}
    observed = read_pod(obj, now=1796083250.0)  # 2026-12-01T00:00:50Z
    assert (observed.unschedulable, observed.unschedulable_s) == ("0/4 nodes are available", 40.0)
    assert observed.containers == (ContainerState("worker", False, 2, "CrashLoopBackOff", "back-off", 2, "Error",
                                                  "ModelLoadFailed: x"),)


@pytest.mark.parametrize("conditions, reason", [
    ([{"type": "Ready", "status": "False", "reason": "ReplicasNotReady"},
      {"type": "Degraded", "status": "True", "reason": "ModelLoadFailed"}], "ModelLoadFailed"),
    ([{"type": "Ready", "status": "False", "reason": "ReplicasNotReady"},
      {"type": "Degraded", "status": "False", "reason": "AsExpected"}], "ReplicasNotReady"),
    ([{"type": "Ready", "status": "True", "reason": "ReplicasReady"},
      {"type": "SLOAtRisk", "status": "True", "reason": "SLOAtRisk"}], "SLOAtRisk"),
    ([{"type": "Ready", "status": "True", "reason": "ReplicasReady"}], ""),
])
def test_the_reason_column_shows_the_first_failing_condition(conditions, reason):
    assert first_failing_reason(conditions) == reason
