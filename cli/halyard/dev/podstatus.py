"""Pod status patches the runner writes: Ready/ContainersReady and containerStatuses.

Pure: `status_patch(pod, views, now)` -> strategic-merge patch body for the
pod's status subresource.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContainerView:
    """What the runner knows about one container at one instant."""

    name: str
    image: str
    running: bool
    ready: bool
    restarts: int
    started_at: str | None  # RFC 3339
    exit_code: int | None  # last exit, if any
    exit_reason: str | None
    exit_message: str = ""
    exit_started_at: str | None = None  # RFC 3339, of the run that ended
    exit_finished_at: str | None = None
    restarting_in_s: float | None = None  # back-off before the next start; None: it will not restart
    pod: str = ""  # namespace/name, for the kubelet-style back-off message
    init: bool = False  # an init container (initContainerStatuses; not part of readiness)


def _terminated(view: ContainerView) -> dict:
    out = {"exitCode": view.exit_code, "reason": view.exit_reason, "message": view.exit_message,
           "startedAt": view.exit_started_at, "finishedAt": view.exit_finished_at}
    return {k: v for k, v in out.items() if v not in (None, "")} | {"exitCode": view.exit_code}


def _state(view: ContainerView) -> dict:
    if view.running:
        return {"running": {"startedAt": view.started_at}}
    if view.exit_code is None:
        return {"waiting": {"reason": "PodInitializing" if view.started_at is None and not view.init
                            else "ContainerCreating"}}
    if view.restarting_in_s is None:
        return {"terminated": _terminated(view)}
    return {"waiting": {"reason": "CrashLoopBackOff",
                        "message": f"back-off {view.restarting_in_s:.0f}s restarting failed "
                                   f"container={view.name} pod={view.pod}"}}


def container_status(view: ContainerView) -> dict:
    """A kubelet-shaped containerStatuses entry: state, lastState.terminated, restartCount."""
    status = {"name": view.name, "image": view.image, "imageID": "", "ready": view.ready,
              "started": view.running, "restartCount": view.restarts, "state": _state(view)}
    if view.exit_code is not None and (view.running or view.restarting_in_s is not None):
        status["lastState"] = {"terminated": _terminated(view)}
    return status


def _condition(kind: str, ready: bool, now: str, previous: dict | None) -> dict:
    status = "True" if ready else "False"
    changed = previous is None or previous.get("status") != status
    return {"type": kind, "status": status,
            "lastTransitionTime": now if changed else previous.get("lastTransitionTime", now),
            "reason": None if ready else "ContainersNotReady"}


def status_patch(pod: dict, views: list[ContainerView], now: str) -> dict:
    """Patch body making the pod's readiness match its processes (init containers reported apart)."""
    inits, views = [v for v in views if v.init], [v for v in views if not v.init]
    ready = bool(views) and all(v.ready for v in views)
    old = {c["type"]: c for c in pod.get("status", {}).get("conditions") or []}
    status = {
        "conditions": [_condition(kind, ready, now, old.get(kind)) for kind in ("ContainersReady", "Ready")],
        "containerStatuses": [container_status(v) for v in views],
    }
    if inits:
        status["initContainerStatuses"] = [container_status(v) for v in inits]
    return {"status": status}
