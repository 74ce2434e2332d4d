"""Tensor-parallel ranks of one replica: one process per device.

Rank 0 is the engine's own process: it runs the scheduler (and, serving, the
HTTP server) and its runner sends each step to the other ranks before running
it. Ranks 1..N-1 are processes it starts; each builds its slices of the model
and runs every step it is sent, in lockstep (the collectives inside the model
pair them up), without sampling. A step message is `(sampled, out)`: the
tokens rank 0 sampled in the previous step (`{request id: token}`, so every
rank's persistent batch holds the same tokens) and this step's
`SchedulerOutput`. Messages go over one local connection per rank
(`multiprocessing.connection`, 127.0.0.1, a random key); `None` stops a rank.

Collectives use a process group of the engine's own (`TCPStore` on
127.0.0.1 for the rendezvous, gloo on CPU, NCCL on CUDA, device `cuda:rank`).
A rank that exits takes the whole replica down: rank 0's monitor thread
ends its process (exit code 70); a rank whose connection closes (rank 0 gone)
exits, and one inside a collective gets gloo's or NCCL's error when its
peer's sockets close, so no rank waits forever.
"""
from __future__ import annotations

import atexit
import datetime
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from multiprocessing.connection import Client, Listener

import torch
import torch.distributed as dist

from halyard_worker.model.tp_layers import TPComm

log = logging.getLogger(__name__)

RANK_EXIT_CODE = 70
TIMEOUT = datetime.timedelta(minutes=10)  # rendezvous and any one collective


def rank_device(device: str, rank: int) -> torch.device:
    """cuda -> cuda:rank (one GPU per rank); cpu stays cpu."""
    d = torch.device(device)
    if d.type != "cuda":
        return d
    return torch.device("cuda", (d.index or 0) + rank)


def process_group(rank: int, size: int, port: int, device: torch.device, store=None) -> TPComm:
    """Join the replica's group (rank 0 passes the store it opened)."""
    if store is None:
        store = dist.TCPStore("127.0.0.1", port, size, False, timeout=TIMEOUT)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        group = dist.ProcessGroupNCCL(store, rank, size)
    else:
        group = dist.ProcessGroupGloo(store, rank, size, TIMEOUT)
    return TPComm(rank, size, group, device)


class RankLink:
    """Rank 0's side: the connections to ranks 1..N-1, their processes, the monitor."""

    def __init__(self, procs: list, conns: list, store):
        self.procs, self.conns, self.store = procs, conns, store
        self.closing = False
        for rank, p in enumerate(procs, start=1):
            threading.Thread(target=self._watch, args=(rank, p), name=f"halyard-tp-monitor-{rank}",
                             daemon=True).start()
        atexit.register(self.close)

    def send(self, message) -> None:
        for conn in self.conns:
            conn.send(message)

    def close(self) -> None:
        """Stop every rank (idempotent)."""
        if self.closing:
            return
        self.closing = True
        for conn in self.conns:
            try:
                conn.send(None)
                conn.close()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    def _watch(self, rank: int, proc) -> None:
        code = proc.wait()
        if self.closing:
            return
        log.critical("tensor-parallel rank %d exited (code %s); the replica cannot run without it: exiting",
                     rank, code)
        from halyard_worker.termination import WORKER_ERROR, write_termination_message

        write_termination_message(WORKER_ERROR, f"tensor-parallel rank {rank} exited with code {code}")
        os._exit(RANK_EXIT_CODE)


def start_ranks(config, size: int) -> tuple[TPComm, RankLink]:
    """Start ranks 1..size-1 for `config` (`python -m halyard_worker.engine.tp_ranks`:
    nothing of the caller's `__main__` is re-imported) and join the group as rank 0."""
    store = dist.TCPStore("127.0.0.1", 0, size, True, timeout=TIMEOUT, wait_for_workers=False)
    key = secrets.token_bytes(16)
    listener = Listener(("127.0.0.1", 0), authkey=key)
    env = dict(os.environ, HALYARD_TP_KEY=key.hex())
    procs, conns = [], []
    try:
        for rank in range(1, size):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "halyard_worker.engine.tp_ranks", str(rank), str(size),
                 str(listener.address[1]), str(store.port)], env=env))
            conn = listener.accept()
            conn.send(config)
            conns.append(conn)
    except BaseException:
        for p in procs:
            p.kill()
        raise
    finally:
        listener.close()
    link = RankLink(procs, conns, store)
    return process_group(0, size, store.port, rank_device(config.device, 0), store), link


def rank_main(rank: int, size: int, link_port: int, store_port: int) -> None:
    """Ranks 1..N-1: build this rank's runner, then run each step rank 0 sends."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s rank{rank} %(name)s: %(message)s")
    for sig in (signal.SIGINT, signal.SIGTERM):  # rank 0 drains and then stops this rank
        signal.signal(sig, signal.SIG_IGN)
    conn = Client(("127.0.0.1", link_port), authkey=bytes.fromhex(os.environ.pop("HALYARD_TP_KEY")))
    config = conn.recv()
    from halyard_worker.engine.setup import build_rank_runner

    comm = process_group(rank, size, store_port, rank_device(config.device, rank))
    runner = build_rank_runner(config, comm)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            log.error("rank 0 is gone: exiting")
            os._exit(RANK_EXIT_CODE)
        if message is None:
            return
        sampled, out = message
        runner.follow(sampled, out)


if __name__ == "__main__":
    rank_main(*(int(a) for a in sys.argv[1:5]))
