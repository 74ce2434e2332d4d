"""Why worker pods fail, from what their kubelets and the scheduler report (pure).

`failure_problems(pods)` turns typed pod observations into non-blocking
`Problem`s, one per failure class, most specific first: ModelLoadFailed,
WorkerArgsRejected, OOMKilled, ImagePullFailed, ContainerConfigError,
WorkerCrashLoop, Unschedulable. Each message quotes the cause (the worker's
termination message, the kubelet's waiting message, the scheduler's verdict)
and says how to fix it. Messages hold no restart counts or ages, so the
Degraded condition (and its Warning Event) changes when the cause changes,
not on every restart.
"""
from __future__ import annotations

from typing import Iterable

from halyard_operator.names import Reason
from halyard_operator.observe import ObservedPod
from halyard_operator.observe.types import ContainerState
from halyard_operator.reconcile.validate import Problem

IMAGE_PULL_WAITING = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_WAITING = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
UNSCHEDULABLE_AFTER_S = 30.0  # a node autoscaler or spot fallback gets this long before it counts
# The worker's termination message starts with its failure class (halyard_worker.termination).
MESSAGE_CLASSES = {"ModelLoadFailed": Reason.MODEL_LOAD_FAILED, "InvalidArguments": Reason.WORKER_ARGS_REJECTED}
ORDER = (Reason.MODEL_LOAD_FAILED, Reason.WORKER_ARGS_REJECTED, Reason.OOM_KILLED, Reason.IMAGE_PULL_FAILED,
         Reason.CONTAINER_CONFIG_ERROR, Reason.WORKER_CRASH_LOOP, Reason.UNSCHEDULABLE)
FIXES = {
    Reason.MODEL_LOAD_FAILED: "check spec.model.uri: the model must exist and be readable from the worker pods "
                              "(file:// paths on the node, pvc:// on the claim, hf:// and s3:// reachable)",
    Reason.WORKER_ARGS_REJECTED: "fix spec.engine (and spec.engine.extraArgs) and apply it again",
    Reason.OOM_KILLED: "raise spec.resources.memory, or lower spec.engine.maxModelLen or spec.engine.maxNumSeqs",
    Reason.IMAGE_PULL_FAILED: "check spec.template.image and, for a private registry, spec.template.imagePullSecrets",
    Reason.CONTAINER_CONFIG_ERROR: "create what it names (ConfigMap, Secret, volume) or fix spec.template",
    Reason.WORKER_CRASH_LOOP: "see the worker's log with kubectl logs -n {namespace} {pod} --previous",
    Reason.UNSCHEDULABLE: "check spec.resources.gpuProduct and spec.resources.gpus against the nodes' "
                          "nvidia.com/gpu.product labels and free GPUs, or add such nodes",
}


def container_failure(c: ContainerState) -> tuple[str, str] | None:
    """(reason, quoted cause) for a failing container, None for a healthy or starting one."""
    if c.ready:
        return None
    if c.waiting_reason in IMAGE_PULL_WAITING:
        return Reason.IMAGE_PULL_FAILED, f"{c.waiting_reason}: {c.waiting_message or 'the image cannot be pulled'}"
    if c.waiting_reason in CONFIG_WAITING:
        return Reason.CONTAINER_CONFIG_ERROR, f"{c.waiting_reason}: {c.waiting_message or 'the container cannot start'}"
    crashed = c.waiting_reason == "CrashLoopBackOff" or c.restarts > 0
    if not crashed or c.last_exit_code is None:
        return None
    if c.last_reason == "OOMKilled":
        return Reason.OOM_KILLED, f"container {c.name} was OOM-killed (exit code {c.last_exit_code})"
    if c.last_exit_code == 0:
        return None
    kind = c.last_message.split(":", 1)[0]
    said = c.last_message or "no termination message"
    reason = MESSAGE_CLASSES.get(kind, Reason.WORKER_CRASH_LOOP)
    return reason, f"container {c.name} exited with code {c.last_exit_code}: {said}"


def pod_failure(pod: ObservedPod) -> tuple[str, str] | None:
    """The most specific failure of one live pod, with its cause."""
    if pod.deleting:
        return None
    found = [f for f in map(container_failure, pod.containers) if f]
    if pod.unschedulable is not None and pod.unschedulable_s >= UNSCHEDULABLE_AFTER_S:
        found.append((Reason.UNSCHEDULABLE, f"the scheduler says: {pod.unschedulable}"))
    return min(found, key=lambda f: ORDER.index(f[0]), default=None)


def failure_problems(pods: Iterable[ObservedPod], namespace: str) -> list[Problem]:
    """One non-blocking Problem per failure class seen, quoting its first pod (by name)."""
    by_reason: dict[str, list[tuple[str, str]]] = {}
    for pod in sorted(pods, key=lambda p: p.name):
        failure = pod_failure(pod)
        if failure:
            by_reason.setdefault(failure[0], []).append((pod.name, failure[1]))
    problems = []
    for reason in sorted(by_reason, key=ORDER.index):
        (first, cause), others = by_reason[reason][0], len(by_reason[reason]) > 1
        where = f"worker pod {first}" + (" (and others)" if others else "")
        fix = FIXES[reason].format(namespace=namespace, pod=first)
        problems.append(Problem(reason, f"{where}: {cause}; {fix}", blocking=False))
    return problems


def recheck_after(pods: Iterable[ObservedPod]) -> float | None:
    """Seconds until an unschedulable pod has waited UNSCHEDULABLE_AFTER_S (and so
    counts as a failure), for the soonest such pod; None when no pod is waiting."""
    waits = [UNSCHEDULABLE_AFTER_S - p.unschedulable_s for p in pods
             if p.unschedulable is not None and not p.deleting and p.unschedulable_s < UNSCHEDULABLE_AFTER_S]
    return min(waits, default=None)
