"""The worker's fatal error, written where Kubernetes reads a container's last words.

The kubelet copies the file at the container's `terminationMessagePath`
(default `/dev/termination-log`) into `lastState.terminated.message`; the
operator quotes it on the LLMDeployment. The first word names the failure
class for machines (`ModelLoadFailed`, `InvalidArguments`, `WorkerError`),
the rest is for people. The pod sets `HALYARD_TERMINATION_MESSAGE_PATH` to
the same path; without it the default file is written only if it exists (a
kubelet always creates it), so a worker run outside a pod writes nothing.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "HALYARD_TERMINATION_MESSAGE_PATH"
DEFAULT_PATH = "/dev/termination-log"
MAX_BYTES = 4096  # what the kubelet keeps
MODEL_LOAD_FAILED, INVALID_ARGUMENTS, WORKER_ERROR = "ModelLoadFailed", "InvalidArguments", "WorkerError"


def termination_path() -> Path | None:
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    default = Path(DEFAULT_PATH)
    return default if default.exists() else None


def write_termination_message(kind: str, detail: str) -> str:
    """Write `<kind>: <detail>` (truncated to what the kubelet keeps); returns the message."""
    message = f"{kind}: {detail}".encode()[:MAX_BYTES].decode(errors="ignore")
    path = termination_path()
    if path is not None:
        try:
            path.write_text(message)
        except OSError:
            pass  # not writable here: the log line carries it (FallbackToLogsOnError)
    return message
