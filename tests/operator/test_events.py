"""Events reference the LLMDeployment in full and repeats bump a count."""
from __future__ import annotations

import asyncio
import datetime

import pytest

from halyard_operator.kube.events import COMPONENT, EVENT_REASONS, EventRecorder, ObjectRef, build_event

BODY = {"metadata": {"name": "chat", "namespace": "team-a", "uid": "u-1"}}
NOW = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.UTC)


def test_event_names_the_llmdeployment_for_kubectl():
    event = build_event(ObjectRef.of(BODY), "Warning", "ModelLoadFailed", "boom", NOW, "op-0")
    assert event["involvedObject"] == {"apiVersion": "halyard.dev/v1alpha1", "kind": "LLMDeployment",
                                       "name": "chat", "namespace": "team-a", "uid": "u-1"}
    assert event["metadata"]["namespace"] == "team-a"
    assert event["reportingComponent"] == COMPONENT == event["source"]["component"] == "halyard-operator"
    assert event["reportingInstance"] == "op-0"
    assert (event["count"], event["firstTimestamp"]) == (1, "2026-12-01T12:00:00Z")


@pytest.mark.parametrize("type_, reason", [("Warning", "SomethingNew"), ("Error", "Created")])
def test_reasons_and_types_come_from_a_fixed_set(type_, reason):
    with pytest.raises(ValueError, match="event (reason|type)"):
        build_event(ObjectRef.of(BODY), type_, reason, "x", NOW, "op-0")


def test_every_problem_reason_the_operator_sets_is_a_degraded_and_event_reason():
    import inspect
    import re

    import halyard_operator.reconcile.core as core
    import halyard_operator.reconcile.validate as validate
    from halyard_operator.names import DEGRADED_REASONS, Reason

    names = set(re.findall(r"Problem\(Reason\.([A-Z_]+)", inspect.getsource(validate) + inspect.getsource(core)))
    used = {getattr(Reason, n) for n in names}
    assert len(used) >= 7 and used <= set(DEGRADED_REASONS) <= EVENT_REASONS, used - set(DEGRADED_REASONS)


class FakeKube:
    def __init__(self):
        self.created, self.patched, self.gone = [], [], set()

    async def create(self, obj):
        self.created.append(obj)
        return 201, obj

    async def patch(self, kind, name, namespace, body):
        if name in self.gone:
            return False
        self.patched.append((kind, name, namespace, body))
        return True


def test_a_repeat_bumps_the_count_of_the_event_already_written():
    async def go():
        kube = FakeKube()
        recorder = EventRecorder(kube, instance="op-0", clock=lambda: NOW)
        recorder(BODY, "Warning", "WorkerCrashLoop", "worker exited")
        await recorder.aclose()
        recorder(BODY, "Warning", "WorkerCrashLoop", "worker exited")
        await recorder.aclose()
        recorder(BODY, "Warning", "WorkerCrashLoop", "another cause")
        await recorder.aclose()
        return kube

    kube = asyncio.run(go())
    assert [e["message"] for e in kube.created] == ["worker exited", "another cause"]
    assert kube.patched == [("Event", kube.created[0]["metadata"]["name"], "team-a",
                             {"count": 2, "lastTimestamp": "2026-12-01T12:00:00Z"})]


def test_a_deleted_event_is_written_again():
    async def go():
        kube = FakeKube()
        recorder = EventRecorder(kube, instance="op-0", clock=lambda: NOW)
        recorder(BODY, "Normal", "Created", "Created Service team-a/chat")
        await recorder.aclose()
        kube.gone.add(kube.created[0]["metadata"]["name"])
        recorder(BODY, "Normal", "Created", "Created Service team-a/chat")
        await recorder.aclose()
        return kube

    assert len(asyncio.run(go()).created) == 2


def test_a_long_running_operator_remembers_a_bounded_number_of_events():
    async def go():
        kube = FakeKube()
        recorder = EventRecorder(kube, instance="op-0", clock=lambda: NOW, remembered=2)
        for message in ("Scaled 1 -> 2", "Scaled 2 -> 3", "Scaled 1 -> 2", "Scaled 3 -> 4", "Scaled 2 -> 3"):
            recorder(BODY, "Normal", "Scaled", message)
            await recorder.aclose()
        return kube, recorder

    kube, recorder = asyncio.run(go())
    assert len(recorder._written) == 2
    # "1 -> 2" was counted on (most recent then); "2 -> 3" was forgotten by then and written anew
    assert [e["message"] for e in kube.created] == ["Scaled 1 -> 2", "Scaled 2 -> 3", "Scaled 3 -> 4",
                                                    "Scaled 2 -> 3"]
    assert len(kube.patched) == 1
