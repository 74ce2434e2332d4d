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


def _state(view: ContainerView) -> dict:
    if view.running:
        return {"running": {"startedAt": view.started_at}}
    if view.exit_code is None:
        return {"waiting": {"reason": "ContainerCreating"}}
    return {"waiting": {"reason": "CrashLoopBackOff",
                        "message": view.exit_message or f"exited with code {view.exit_code}"}}


def container_status(view: ContainerView) -> dict:
    status = {"name": view.name, "image": view.image, "imageID": "", "ready": view.ready,
              "started": view.running, "restartCount": view.restarts, "state": _state(view)}
    if view.exit_code is not None:
        status["lastState"] = {"terminated": {"exitCode": view.exit_code, "reason": view.exit_reason,
                                              "message": view.exit_message}}
    return status


def _condition(kind: str, ready: bool, now: str, previous: dict | None) -> dict:
    status = "True" if ready else "False"
    changed = previous is None or previous.get("status") != status
    return {"type": kind, "status": status,
            "lastTransitionTime": now if changed else previous.get("lastTransitionTime", now),
            "reason": None if ready else "ContainersNotReady"}


def status_patch(pod: dict, views: list[ContainerView], now: str) -> dict:
    """Patch body making the pod's readiness match its processes."""
    ready = bool(views) and all(v.ready for v in views)
    old = {c["type"]: c for c in pod.get("status", {}).get("conditions") or []}
    return {"status": {
        "conditions": [_condition(kind, ready, now, old.get(kind)) for kind in ("ContainersReady", "Ready")],
        "containerStatuses": [container_status(v) for v in views],
    }}
