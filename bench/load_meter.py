"""What ``python -m bench.load`` measures of the processes: CPU-seconds and peak RSS/PSS, server and client.

The server is one process tree (``streamlit run`` and the workers it forks); the client
is this process and its other children (Chromium, in playwright mode).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque

import psutil


class Meter:
    """Samples a server's process tree and the client's (this process and its other children).

    CPU-seconds are user + system of every process seen, each at its last sample, so
    a Chromium renderer that exits mid-run still counts up to its last sample.
    """

    def __init__(self, server_pid: int, interval: float = 0.1):
        self.server_pid, self.interval = server_pid, interval
        self._procs: dict[int, psutil.Process] = {}
        self.server_cpu: dict[int, float] = {}
        self.client_cpu: dict[int, float] = {}
        self.server_peak_rss = self.client_peak_rss = 0
        self.server_peak_pss = 0  # proportional set size: shared library pages split between processes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _proc(self, pid: int) -> psutil.Process:
        if pid not in self._procs:
            self._procs[pid] = psutil.Process(pid)
        return self._procs[pid]

    def _tree(self, root: psutil.Process) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return [root, *root.children(recursive=True)]
        return []

    def sample(self) -> None:
        # One snapshot of this process's tree, split by ancestry, so a worker the server
        # spawns between two listings is never counted as the client's.
        everyone = self._tree(self._proc(os.getpid()))
        parent = {}
        for p in everyone:
            with contextlib.suppress(psutil.Error):
                parent[p.pid] = p.ppid()

        def in_server(pid: int) -> bool:
            while pid != self.server_pid and pid in parent:
                pid = parent[pid]
            return pid == self.server_pid

        server = [p for p in everyone if in_server(p.pid)]
        client = [p for p in everyone if not in_server(p.pid)]
        for procs, cpu, peak, full in (
            (server, self.server_cpu, "server_peak_rss", True),
            (client, self.client_cpu, "client_peak_rss", False),
        ):
            rss = pss = 0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    times = p.cpu_times()
                    mem = p.memory_full_info() if full else p.memory_info()  # full: rss and pss (Linux)
                    cpu[p.pid] = times.user + times.system
                    rss += mem.rss
                    pss += getattr(mem, "pss", 0)
            setattr(self, peak, max(getattr(self, peak), rss))
            if full:
                self.server_peak_pss = max(self.server_peak_pss, pss)

    def cpu(self) -> tuple[float, float]:
        """(server, client) CPU-seconds so far, sampled now."""
        self.sample()
        return sum(self.server_cpu.values()), sum(self.client_cpu.values())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Meter:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def drain(proc) -> deque[str]:
    """Read the server's output in a thread, so a full pipe never stalls it; keep the tail."""
    tail: deque[str] = deque(maxlen=400)

    def read() -> None:
        with contextlib.suppress(ValueError, OSError):  # the pipe is closed once the server has stopped
            for line in iter(proc.stdout.readline, b""):
                tail.append(line.decode(errors="replace").rstrip())

    threading.Thread(target=read, daemon=True).start()
    return tail
