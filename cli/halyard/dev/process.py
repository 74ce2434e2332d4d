"""One pod container run as a local process group, kubelet-style.

Start resolves argv[0] on the container's PATH; stdout and stderr go to the
container's log file in the CRI format the kubelet's log endpoint serves
(`<RFC 3339 ns> stdout|stderr F <line>`), the previous run's file kept as
`<log>.previous` (for `kubectl logs --previous`). An exit is recorded as the
kubelet reports it: exit code (128 + N for signal N), reason (`Completed`,
`Error`, `OOMKilled` for an unexpected SIGKILL: what the OOM killer sends)
and message (the termination message file, else with
`FallbackToLogsOnError` the last log lines of a failed run); for
restartPolicy Always/OnFailure the process restarts after an exponential
back-off. Stop sends SIGTERM to the group, then SIGKILL after the grace period.
"""
from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from halyard.dev.podenv import ContainerLaunch

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # restart delays, like CrashLoopBackOff but shorter
MESSAGE_BYTES = 4096  # the kubelet reads at most this much of the termination message file
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048  # FallbackToLogsOnError: the log's tail, as the kubelet takes it


@dataclass(frozen=True)
class Exit:
    """How the last run ended."""

    code: int
    reason: str  # Completed | Error | OOMKilled | StartError
    message: str = ""
    started_at: float | None = None  # wall clock
    finished_at: float | None = None


@dataclass(frozen=True)
class Termination:
    """Where a container leaves its termination message, and the fallback policy."""

    path: Path | None = None
    fallback_to_logs: bool = False


def exit_of(returncode: int) -> tuple[int, str]:
    """Popen return code -> (exit code, reason) as the kubelet reports them."""
    if returncode < 0:
        sig = -returncode
        return 128 + sig, "OOMKilled" if sig == signal.SIGKILL else "Error"
    return returncode, "Completed" if returncode == 0 else "Error"


def cri_line(stream: str, line: bytes, now_ns: int) -> bytes:
    secs, nanos = divmod(now_ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"
    return f"{stamp} {stream} F ".encode() + line.rstrip(b"\n") + b"\n"


class LogPump:
    """Copies a process's stdout/stderr into one CRI log file, keeping the tail."""

    def __init__(self, path: Path):
        self.path, self.lock = path, threading.Lock()
        self.tail: collections.deque[str] = collections.deque(maxlen=FALLBACK_LINES)
        self.threads: list[threading.Thread] = []

    def attach(self, proc: subprocess.Popen) -> None:
        for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            thread = threading.Thread(target=self._copy, args=(stream, pipe), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _copy(self, stream: str, pipe) -> None:
        with pipe, open(self.path, "ab") as out:
            for line in iter(pipe.readline, b""):
                with self.lock:
                    out.write(cri_line(stream, line, time.time_ns()))
                    out.flush()
                    self.tail.append(line.decode(errors="replace").rstrip("\n"))

    def join(self, timeout: float = 2.0) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def fallback_message(self) -> str:
        return "\n".join(self.tail)[-FALLBACK_BYTES:]


class ContainerProcess:
    """Lifecycle of one container's process; not thread-safe (the runner serialises calls)."""

    def __init__(self, launch: ContainerLaunch, base_env: dict, log_path: Path, workdir: Path,
                 restart_policy: str = "Always", termination: Termination = Termination()):
        self.launch, self.log_path, self.workdir = launch, log_path, workdir
        self.env = {**base_env, **launch.env}
        self.restart_policy, self.termination = restart_policy, termination
        self.proc: subprocess.Popen | None = None
        self.pump: LogPump | None = None
        self.restarts = 0
        self.last_exit: Exit | None = None
        self.started_at: float | None = None  # wall clock, for the API
        self.started_mono = 0.0
        self._next_start = 0.0
        self.stopped = False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_name(self.log_path.name + ".previous"))
        if self.termination.path is not None:
            self.termination.path.write_text("")  # a fresh file per run, as the kubelet mounts one
        cwd = Path(self.launch.working_dir) if self.launch.working_dir else self.workdir
        cwd.mkdir(parents=True, exist_ok=True)
        exe = shutil.which(self.launch.argv[0], path=self.env.get("PATH")) if self.launch.argv else None
        if exe is None:
            message = f"executable {self.launch.argv[:1]} not found in $PATH"
            self.log_path.write_bytes(cri_line("stderr", message.encode(), time.time_ns()))
            self.last_exit = Exit(127, "StartError", message, time.time(), time.time())
            self._schedule_restart()
            return
        self.proc = subprocess.Popen([exe, *self.launch.argv[1:]], env=self.env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pump = LogPump(self.log_path)
        self.pump.attach(self.proc)
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
            self.last_exit = self._exit(self.proc.returncode)
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

    def _exit(self, returncode: int, expected: bool = False) -> Exit:
        code, reason = exit_of(returncode)
        if expected:
            reason = "Completed" if code in (0, 128 + signal.SIGTERM) else "Error"
        if self.pump is not None:
            self.pump.join()
        message = ""
        if self.termination.path is not None and self.termination.path.exists():
            message = self.termination.path.read_bytes()[:MESSAGE_BYTES].decode(errors="replace").strip()
        if not message and code != 0 and self.termination.fallback_to_logs and self.pump is not None:
            message = self.pump.fallback_message()
        return Exit(code, reason, message, self.started_at, time.time())

    def _schedule_restart(self) -> None:
        self._next_start = time.monotonic() + BACKOFF_S[min(self.restarts, len(BACKOFF_S) - 1)]

    @property
    def backoff_s(self) -> float:
        """The delay before the next restart (for the CrashLoopBackOff message)."""
        return BACKOFF_S[min(self.restarts, len(BACKOFF_S) - 1)]

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
        self.last_exit = self._exit(self.proc.returncode, expected=True)
        self.proc = None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
