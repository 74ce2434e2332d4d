"""A container process: PATH resolution, restart on crash, SIGTERM then SIGKILL."""
from __future__ import annotations

import sys
import time

from halyard.dev.podenv import ContainerLaunch
from halyard.dev.process import ContainerProcess, Termination, exit_of


def make(tmp_path, argv, policy="Always", termination=Termination()):
    launch = ContainerLaunch("c", tuple(argv), {"GREETING": "hi", "MSG": str(tmp_path / "term")}, None)
    return ContainerProcess(launch, {"PATH": "/usr/bin:/bin"}, tmp_path / "c.log", tmp_path / "work", policy,
                            termination)


def finish(proc):
    proc.proc.wait(10)
    assert proc.poll()
    return proc.last_exit


def test_runs_with_env_and_logs_in_cri_format(tmp_path):
    proc = make(tmp_path, ["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"], policy="Never")
    proc.start()
    assert (finish(proc).code, proc.last_exit.reason) == (3, "Error")
    lines = (tmp_path / "c.log").read_text().splitlines()
    assert sorted(line.split(" ", 1)[1] for line in lines) == ["stderr F oops", "stdout F hi"]
    assert all(line[:4].isdigit() and line.split(" ")[0].endswith("Z") for line in lines)


def test_exit_message_comes_from_the_termination_file(tmp_path):
    (tmp_path / "term").touch()
    term = Termination(tmp_path / "term", fallback_to_logs=True)
    proc = make(tmp_path, ["sh", "-c", "echo noise; printf 'ModelLoadFailed: gone' > $MSG; exit 1"], "Never", term)
    proc.start()
    assert finish(proc).message == "ModelLoadFailed: gone"


def test_fallback_to_logs_quotes_the_tail_of_a_failed_run(tmp_path):
    term = Termination(tmp_path / "term", fallback_to_logs=True)
    proc = make(tmp_path, ["sh", "-c", "echo first; echo 'fatal: bad thing' >&2; exit 2"], "Never", term)
    proc.start()
    assert "fatal: bad thing" in finish(proc).message  # stdout and stderr interleave in any order
    quiet = make(tmp_path, ["sh", "-c", "echo first; exit 2"], "Never", Termination(tmp_path / "term"))
    quiet.start()
    assert finish(quiet).message == ""


def test_a_restart_keeps_the_previous_log(tmp_path):
    proc = make(tmp_path, ["sh", "-c", "echo run; exit 1"])
    proc.start()
    finish(proc)
    proc._next_start = 1e-9  # due now
    proc.poll()
    proc.proc.wait(10)
    proc.pump.join()
    assert "run" in (tmp_path / "c.log.previous").read_text() and proc.restarts == 1


def test_signals_are_reported_as_128_plus_n_and_sigkill_as_oom():
    assert exit_of(-9) == (137, "OOMKilled")
    assert exit_of(-15) == (143, "Error")
    assert exit_of(0) == (0, "Completed")


def test_unknown_executable_is_a_start_error(tmp_path):
    proc = make(tmp_path, ["halyard-no-such-binary"])
    proc.start()
    assert not proc.running and proc.last_exit.code == 127 and "not found" in proc.last_exit.message


def test_crash_restarts_with_backoff(tmp_path):
    proc = make(tmp_path, ["sh", "-c", "exit 1"])
    proc.start()
    deadline = time.monotonic() + 10
    while proc.restarts == 0 and time.monotonic() < deadline:
        proc.poll()
        time.sleep(0.05)
    assert proc.restarts == 1


def test_stop_escalates_to_sigkill_after_grace(tmp_path):
    ignore_term = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('rea' + 'dy', flush=True); time.sleep(60)"
    proc = make(tmp_path, [sys.executable, "-c", ignore_term])
    proc.launch = ContainerLaunch("c", (sys.executable, "-c", ignore_term), {}, None)
    proc.start()
    log = tmp_path / "c.log"  # written by the runner's log thread once the child prints
    deadline = time.monotonic() + 30
    while not (log.exists() and "stdout F ready\n" in log.read_text()):
        assert time.monotonic() < deadline, "the child never logged 'ready'"
        time.sleep(0.05)
    started = time.monotonic()
    proc.stop(grace_s=0.5)
    assert 0.4 < time.monotonic() - started < 5
    assert (proc.last_exit.code, proc.last_exit.reason) == (137, "Error")  # killed by us: not an OOM
