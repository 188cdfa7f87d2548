"""The distributed workers' fork server, started early: before torch, and reused by the launch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ui import nav, sidebar

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, multiprocessing.forkserver as fs, sys
from bn_core.fork_server import start_fork_server
start_fork_server()
before_torch = "torch" not in sys.modules
server = fs._forkserver._forkserver_pid
from bn_core.distributed import DistConfig, launch
result = launch(DistConfig(world_size=2, steps=2, variants=("per_replica",), record_stats=False))
print(json.dumps({"before_torch": before_torch, "server": server, "after": fs._forkserver._forkserver_pid,
                  "steps": int(result.curves["step"].max())}))
"""


def test_the_fork_server_starts_without_torch_and_the_launch_forks_from_it():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["before_torch"], "starting the fork server imported torch in the app server"
    assert seen["server"] is not None and seen["after"] == seen["server"], "the launch started a second fork server"
    assert seen["steps"] == 2


@pytest.mark.parametrize("page", nav.PAGES, ids=lambda p: p.url_path)
def test_only_the_page_that_launches_workers_starts_their_fork_server(page, monkeypatch):
    started = []
    monkeypatch.setattr("bn_core.fork_server.start_fork_server", lambda: started.append(page.url_path))
    sidebar.start_workers_for(page.url_path)
    assert started == ([page.url_path] if page.url_path == "multi-device" else [])
    assert page.launches_workers == (page.url_path == "multi-device")


def test_a_fork_server_that_cannot_start_only_costs_the_head_start(monkeypatch, caplog):
    """No fork server on this platform: the router logs it and the page goes on (its launch reports why)."""

    def refuse():
        raise ValueError("cannot find context for 'forkserver'")

    monkeypatch.setattr("bn_core.fork_server.start_fork_server", refuse)
    sidebar.start_workers_for("multi-device")
    assert "could not start early" in caplog.text
