"""The launcher: start the workers on 127.0.0.1 (forked from one fork server), supervise them, stop them all.

It stops every worker it starts: on success, on a worker's error or crash, on a timeout
and on any exception in the parent.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue as queue_lib
import socket
import threading
import time
from multiprocessing import spawn as mp_spawn
from typing import Any

import torch
from torch import Tensor

from bn_core.distributed.config import (
    DistConfig,
    DistributedRunError,
    build_variant_model,
    pick_backend,
    replica_model_config,
    validate_launch,
)
from bn_core.distributed.results import DistResult, build_result
from bn_core.distributed.worker import Spec, worker_main
from bn_core.fork_server import fork_server_context
from bn_core.progress import Progress


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (rank 0's rendezvous store binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PREPARATION_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_parent_main() -> Any:
    """While starting workers: keep the spawned children from re-running the parent's ``__main__``.

    Why: "spawn" normally re-runs the parent's main script in every child (as
    ``__mp_main__``). Inside Streamlit, ``__main__`` is the app script itself, so every
    worker would import Streamlit and run the whole app in bare mode before starting,
    seconds of wasted start-up (and any page it runs could try to launch again). The
    worker's entry point lives in ``bn_core.distributed.worker``, so the children need nothing from
    ``__main__``. Only the preparation data of processes started inside this block
    changes; the lock keeps two launches from interleaving the swap.
    """
    original = mp_spawn.get_preparation_data

    def preparation_data(name: str) -> dict:
        data = original(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    with _PREPARATION_LOCK:
        mp_spawn.get_preparation_data = preparation_data
        try:
            yield
        finally:
            mp_spawn.get_preparation_data = original


def _stop_all(procs: list, grace_s: float = 3.0) -> None:
    """Terminate, then kill, every process still alive, and reap them all."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(5.0)


def _died(procs: list, done: set[int]) -> str | None:
    """A worker that exited without a result or a message: how it ended."""
    for rank, p in enumerate(procs):
        if rank not in done and p.exitcode is not None:
            how = f"was killed by signal {-p.exitcode}" if p.exitcode < 0 else f"exited with code {p.exitcode}"
            return f"rank {rank} {how} without a result"
    return None


def _failure(procs: list, out: Any, done: set[int], errors: dict[int, tuple[str, str]]) -> DistributedRunError:
    """Name the root cause. A rank that died without a word (a crash) comes first: the errors its peers
    then report ("connection closed …") are consequences. Waits briefly for the dust to settle."""
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        with contextlib.suppress(queue_lib.Empty):
            kind, rank, payload = out.get(timeout=0.05)
            if kind == "error":
                errors.setdefault(rank, payload)
    crash = _died(procs, done | set(errors))
    detail = "\n".join(f"--- rank {r}\n{tb}" for r, (_, tb) in sorted(errors.items()))
    first = next(iter(errors.items()), None)
    if crash is not None:
        then = f" Then rank {first[0]} failed: {_short(first[1][0])}" if first else ""
        return DistributedRunError(f"The distributed run failed: {crash}.{then}", detail)
    return DistributedRunError(f"Rank {first[0]} failed: {_short(first[1][0])}", detail)


def _short(summary: str) -> str:
    """First line of a worker's error, at most 300 characters (gloo's messages run long)."""
    line = summary.strip().splitlines()[0] if summary.strip() else "unknown error"
    return line if len(line) <= 300 else line[:297] + "…"


def _supervise(procs: list, out: Any, cfg: DistConfig, t0: float, progress: Progress) -> tuple[dict, float]:
    """Collect every rank's result, forwarding progress; raise on an error, a crash or the timeout."""
    results: dict[int, dict] = {}
    ready: list[float] = []
    while len(results) < len(procs):
        try:
            kind, rank, payload = out.get(timeout=0.05)
        except queue_lib.Empty:
            if _died(procs, set(results)) is not None:
                raise _failure(procs, out, set(results), {}) from None
            if time.time() - t0 > cfg.timeout_s:
                raise DistributedRunError(f"The distributed run timed out after {cfg.timeout_s:g} s.") from None
            continue
        if kind == "error":
            raise _failure(procs, out, set(results), {rank: payload})
        if kind == "ready":
            ready.append(payload)
            progress(0.0, f"{len(ready)} of {len(procs)} ranks joined")
        elif kind == "progress":
            progress(*payload)
        elif kind == "result":
            results[rank] = payload
    return results, max(ready)


def _load_digits(seed: int) -> dict[str, Tensor]:
    """The digits split, in shared memory.

    Why shared memory: a spawned child reads its arguments from a pipe only after it has
    imported torch, and ``Process.start()`` blocks while the pipe (64 KB) is full. Shared
    tensors pickle as small handles, so the ranks start in parallel instead of in turn.
    """
    from bn_core.data import DataConfig, load_dataset  # here: workers get tensors and never import sklearn/pandas

    split = load_dataset(DataConfig(name="digits", seed=seed))
    return {k: getattr(split, k).clone().share_memory_() for k in ("x_train", "y_train", "x_test", "y_test")}


def _initial_models(cfg: DistConfig, backend: str) -> Tensor:
    """Every (seed, variant)'s initial model, built here once and pickled into shared memory.

    All ranks unpickle the same bytes, so they start from identical weights (what DDP's
    initial broadcast guarantees), and the workers skip the builders' one-off imports
    (~0.7 s each).
    """
    variants = [*cfg.variants, *(["sync_torch"] if backend == "nccl" else [])]
    models = {(s, v): build_variant_model(v, replica_model_config(cfg), s) for s in cfg.seeds for v in variants}
    return torch.frombuffer(bytearray(pickle.dumps(models)), dtype=torch.uint8).share_memory_()


def _context(start_method: str) -> Any:
    """The multiprocessing context for the workers.

    "forkserver" (the default): the first launch starts one fork server
    (:mod:`bn_core.fork_server`, unless a page started it earlier), which imports torch and
    this package once; every later worker is a fork of it. Why: a spawned worker imports
    torch afresh (about 2 s of start-up per launch, and a private copy of torch's Python heap
    per rank), while a forked one starts in milliseconds and shares those pages with the fork
    server until it writes to them. The fork server is a fresh single-threaded process, so
    forking it is safe even though the app server runs many threads. "spawn" remains for
    comparison (bench) and for platforms without fork.
    """
    if start_method == "forkserver":
        return fork_server_context()
    return torch.multiprocessing.get_context(start_method)


def launch(cfg: DistConfig, progress: Progress | None = None) -> DistResult:
    """Spawn ``cfg.world_size`` workers on 127.0.0.1, run the experiment, stop them all, return DataFrames.

    Each worker is a process forked from the fork server (see :func:`_context`; safe inside a
    threaded server) with one torch thread. They rendezvous over TCP on a free port and train
    data-parallel: disjoint shards of every global batch, gradients averaged with one
    all-reduce per step, identical initial weights from the seed.

    Args:
        cfg: the launch; see :class:`DistConfig`.
        progress: ``progress(fraction, message)``, called in this process.

    Raises:
        ValueError: an invalid config, before anything starts.
        DistributedRunError: a worker raised, crashed or the launch timed out; every
            worker has been terminated (then killed) and reaped before it propagates.
    """
    data = _load_digits(cfg.data_seed)
    validate_launch(cfg, len(data["y_train"]))
    backend = pick_backend(cfg.backend, cfg.world_size)
    ctx = _context(cfg.start_method)
    out = ctx.Queue()
    t0 = time.time()
    spec = Spec(cfg, free_port(), backend, data, _initial_models(cfg, backend), os.getpid(), t0)
    procs = [ctx.Process(target=worker_main, args=(r, spec, out), daemon=True) for r in range(cfg.world_size)]
    try:
        with _without_parent_main():
            for p in procs:
                p.start()
        (progress or (lambda f, m: None))(0.0, f"started {len(procs)} worker processes")
        results, startup_s = _supervise(procs, out, cfg, t0, progress or (lambda f, m: None))
    except DistributedRunError as err:
        err.pids = tuple(p.pid for p in procs if p.pid is not None)
        raise
    finally:
        _stop_all(procs)
        out.close()
        out.cancel_join_thread()
    return build_result(cfg, backend, results, startup_s, time.time() - t0, tuple(p.pid for p in procs))
