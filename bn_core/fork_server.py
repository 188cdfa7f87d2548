"""The fork server that every distributed worker is forked from, startable before this process imports torch.

:func:`bn_core.distributed.launch` starts its workers with the "forkserver" method: one
fresh, single-threaded process imports torch and :data:`WORKER_MODULE` once, and every
worker is a fork of it (see ``bn_core.distributed.launcher``). The first launch of a
process normally starts that server, and then waits while it imports torch (about 1.3 s
here). :func:`start_fork_server` starts it earlier and returns at once: a page that will
launch workers calls it before its own first ``import torch``, so the two imports run on
two cores at the same time. This module imports only the standard library.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
from multiprocessing.context import BaseContext

__all__ = ["WORKER_MODULE", "fork_server_context", "start_fork_server"]

WORKER_MODULE = "bn_core.distributed.worker"  # what the fork server imports once, torch with it


def fork_server_context() -> BaseContext:
    """The "forkserver" context, its server set to import :data:`WORKER_MODULE` when it starts."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([WORKER_MODULE])
    return ctx


def start_fork_server() -> None:
    """Start the fork server now, if it is not running; returns without waiting for its imports.

    Later launches fork their workers from it (they wait for its imports only if they come
    before those are done). Idle, it holds about 215 MB (PSS), which is why only the page
    that launches workers starts it.
    """
    fork_server_context()
    multiprocessing.forkserver.ensure_running()
