"""One pod container run as a local process group, kubelet-style.

Start resolves argv[0] on the container's PATH; exit is recorded and (for
restartPolicy Always/OnFailure) the process restarts after an exponential
back-off; stop sends SIGTERM to the group, then SIGKILL after the grace period.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from halyard.dev.podenv import ContainerLaunch

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # restart delays, like CrashLoopBackOff but shorter


@dataclass(frozen=True)
class Exit:
    """How the last run ended."""

    code: int
    reason: str  # Completed | Error | StartError
    message: str = ""


class ContainerProcess:
    """Lifecycle of one container's process; not thread-safe (the runner serialises calls)."""

    def __init__(self, launch: ContainerLaunch, base_env: dict, log_path: Path, workdir: Path,
                 restart_policy: str = "Always"):
        self.launch, self.log_path, self.workdir = launch, log_path, workdir
        self.env = {**base_env, **launch.env}
        self.restart_policy = restart_policy
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.last_exit: Exit | None = None
        self.started_at: float | None = None  # wall clock, for the API
        self.started_mono = 0.0
        self._next_start = 0.0
        self.stopped = False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cwd = Path(self.launch.working_dir) if self.launch.working_dir else self.workdir
        cwd.mkdir(parents=True, exist_ok=True)
        exe = shutil.which(self.launch.argv[0], path=self.env.get("PATH")) if self.launch.argv else None
        log = open(self.log_path, "ab")
        log.write(f"--- {time.strftime('%H:%M:%S')} exec {list(self.launch.argv)}\n".encode())
        log.flush()
        if exe is None:
            log.write(f"executable {self.launch.argv[:1]} not found in PATH\n".encode())
            log.close()
            self.last_exit = Exit(127, "StartError", f"executable {self.launch.argv[:1]} not found in $PATH")
            self._schedule_restart()
            return
        self.proc = subprocess.Popen([exe, *self.launch.argv[1:]], env=self.env, cwd=cwd, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.started_at = time.time()
        self.started_mono = time.monotonic()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def poll(self) -> bool:
        """Record an exit and restart when due; True if the state changed."""
        if self.stopped:
            return False
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            self.last_exit = Exit(code, "Completed" if code == 0 else "Error")
            self.proc = None
            self._schedule_restart()
            return True
        if self.proc is None and self._next_start and time.monotonic() >= self._next_start:
            if self.restart_policy == "Never" or (self.restart_policy == "OnFailure" and self.last_exit.code == 0):
                self._next_start = 0.0
                return False
            self.restarts += 1
            self._next_start = 0.0
            self.start()
            return True
        return False

    def _schedule_restart(self) -> None:
        self._next_start = time.monotonic() + BACKOFF_S[min(self.restarts, len(BACKOFF_S) - 1)]

    def stop(self, grace_s: float) -> None:
        """SIGTERM the process group, SIGKILL after grace_s seconds."""
        self.stopped = True
        if self.proc is None:
            return
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=max(grace_s, 0.1))
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.last_exit = Exit(self.proc.returncode, "Completed")
        self.proc = None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
