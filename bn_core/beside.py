"""One function run in a forked worker process while this process does other work: both cores for one view.

The Training page trains its no-norm net in such a worker while the BN net trains here, so
a new comparison uses both cores of a quiet server (the first view of the deep preset: 5.4
to 4.0 s here). The worker is a ``fork`` of this process: it starts in about a millisecond,
needs no import and no pickled arguments, and shares every page with this process until it
writes to one. It runs the same code with the same number of torch threads, so on the CPU
its result is bitwise what this process would have computed (tests/test_beside.py).

A worker can make a run faster, never different, and never stuck: anything that goes wrong
in it (no spare core, a start that fails, an error, a crash, a timeout) makes
:meth:`Beside.result` return None with the reason in :attr:`Beside.problem`, the worker is
reaped, and the caller computes the value itself. Forking a threaded server is safe for
what the child does here (torch on the CPU, pickle, a pipe; CPython resets the GIL and the
import lock after a fork, glibc its malloc locks): the same as ``torch.utils.data``'s forked
workers, which also run one torch thread. Accelerators are never forked (CUDA cannot be), so the
caller uses this on the CPU only, and no worker is forked from a process with more than one torch
thread (its OpenMP pool does not survive a fork).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["Beside", "start_beside"]

_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 1) - 1))  # workers beside runs: one per spare core


def _beside_main(conn: Any, threads: int, fn: Callable[..., Any], args: tuple) -> None:
    """In the worker: say it started, run ``fn(*args)``, send back the pickled value or the error."""
    gc.freeze()  # every object inherited from the server out of this process's collections (they would copy its pages)
    gc.enable()  # (the parent forked with collections off, so none ran before the line above)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the app server's handler: terminate() ends this process
    torch.set_num_threads(threads)  # the parent's count: the same reductions, so the same bits
    with contextlib.suppress(BrokenPipeError, OSError):
        conn.send_bytes(b"started")
        try:
            conn.send_bytes(pickle.dumps(("ok", fn(*args))))
        except Exception as err:  # noqa: BLE001 - reported to the parent, which computes the value itself
            conn.send_bytes(pickle.dumps(("error", f"{type(err).__name__}: {err}")))
        conn.close()


class Beside:
    """One function running in a worker process; :meth:`result` collects it (or says why it could not)."""

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        ctx = torch.multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_beside_main, args=(child, torch.get_num_threads(), fn, args), daemon=True)
        self.problem: str | None = None  # why the result is None, for logs and tests
        self._reaped = False
        collecting = gc.isenabled()
        gc.disable()  # no collection in the child before it freezes what it inherited (_beside_main)
        try:
            self._proc.start()  # a fork: the arguments are already in the child's memory, nothing is pickled
        finally:
            if collecting:
                gc.enable()
            child.close()

    def _started(self) -> bool:
        """True once the worker has said it started."""
        try:
            return self._conn.poll(0) and self._conn.recv_bytes() == b"started"
        except EOFError:  # it died before it could say so
            return False

    def result(self, timeout_s: float, start_grace_s: float = 1.0) -> Any | None:
        """The function's value, or None when the worker failed, passed ``timeout_s`` or did not start.

        Call it once this process is done with its own share; it reaps the worker either way.
        """
        try:
            deadline = time.monotonic() + start_grace_s
            while not (started := self._started()) and time.monotonic() < deadline and self._proc.is_alive():
                time.sleep(0.01)
            if started:
                return self._collect(timeout_s)
            self.problem = "the worker did not start"
            return None
        finally:
            self.cancel()

    def _collect(self, timeout_s: float) -> Any | None:
        deadline = time.monotonic() + timeout_s
        while not self._conn.poll(0.05):
            if time.monotonic() > deadline or not self._proc.is_alive():
                self.problem = "the worker timed out" if self._proc.is_alive() else "the worker exited without a result"
                return None
        try:
            kind, value = pickle.loads(self._conn.recv_bytes())
        except EOFError:  # the pipe closed: the worker died before it sent anything
            self.problem = "the worker exited without a result"
            return None
        except (OSError, pickle.UnpicklingError) as err:
            self.problem = f"the worker's result could not be read ({type(err).__name__})"
            return None
        if kind != "ok":
            self.problem = f"the worker failed: {value}"
            return None
        return value

    def cancel(self) -> None:
        """Stop the worker if it is still running, reap it and free its slot; idempotent."""
        if self._reaped:
            return
        self._reaped = True
        try:
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._conn.close()
        finally:
            _SLOTS.release()


def start_beside(fn: Callable[..., Any], *args: Any) -> Beside | None:
    """Run ``fn(*args)`` in a forked worker while the caller works; None where no spare core is free.

    Only in a process with one torch thread (the app's setting): with more, this process's
    OpenMP thread pool may have run, and a fork of it can hang in its first parallel region
    (measured with 2 threads: every worker reached its timeout). The caller then computes here.

    ``fn``'s value must be picklable (it comes back through a pipe). Always follow with
    :meth:`Beside.result` (which reaps the worker) and compute the value here when it
    returns None.
    """
    if (os.cpu_count() or 1) < 2 or torch.get_num_threads() != 1 or not _SLOTS.acquire(blocking=False):
        return None  # (a fork of a process whose OpenMP pool has run hangs in its first parallel region)
    try:
        return Beside(fn, args)
    except Exception:  # noqa: BLE001 - no pipe or process object could be made: compute here
        _SLOTS.release()
        return None
