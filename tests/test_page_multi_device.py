"""Multi-device BN page in AppTest: real worker launches behind every number, clear messages for bad input.

Each distinct config is one launch of worker processes (seconds); the default view is
cached for the whole test process, so most tests reuse it.
"""

from __future__ import annotations

import re

import pytest

from bn_core.distributed import DistributedRunError
from tests.helpers import alerts, assert_clean, charts, open_page
from ui import multi_device as ui

PAGE = "views/multi_device.py"
LAUNCH_TIMEOUT = 400  # a run that starts worker processes can be slow when the machine is loaded
DEFAULT_CHARTS = 6  # section 1: μ_B and σ²_B for BN and sync BN; section 4: volume and time


def _markdown(at, phrase: str) -> str:
    return next(m.value for m in at.markdown if phrase in m.value)


def _gaps(at) -> tuple[float, float]:
    """(BN, sync BN) largest μ_B gap between ranks, as the page states them."""
    text = _markdown(at, "differed by up to")
    per, sync = re.findall(r"\*\*([0-9.e+-]+)\*\*", text)[:2]
    return float(per), float(sync)


def _equivalence(at):
    return next(df.value for df in at.dataframe if "dgamma" in getattr(df.value, "columns", []))


@pytest.fixture(scope="module")
def default_page():
    at = open_page(PAGE, timeout=LAUNCH_TIMEOUT)
    assert_clean(at)
    return at


def test_default_view_runs_real_workers_and_shows_every_section(default_page):
    at = default_page
    assert len(charts(at)) == DEFAULT_CHARTS
    per, sync = _gaps(at)
    assert per > 0.01 and sync == 0.0
    eq = _equivalence(at)
    assert (eq.loc["sync BN"] < 1e-6).all()
    assert eq.loc["BN", "y"] > 1e-2
    assert any("nn.SyncBatchNorm" in c.value and "GPU" in c.value for c in at.caption)
    cost = _markdown(at, "bytes** per step")
    assert "4,096 bytes" in cost and "4 calls" in cost  # 2 BN layers × 64 channels × 32 bytes
    assert any("Turn on the sweep" in a for a in alerts(at, "info"))
    assert len(at.get("download_button")) == 1
    assert at.query_params["W"] == "2" and at.query_params["b"] == "4"
    assert [s.value for s in at.subheader][-1] == "Check yourself"


def test_the_printed_time_ratio_is_the_quotient_of_the_printed_times(default_page):
    text = _markdown(default_page, "as long as a BN step")
    pattern = r"\*\*([0-9.]+)×\*\* as long as a BN step \(([0-9.]+) vs ([0-9.]+) ms"
    factor, sync_ms, per_ms = re.search(pattern, text).groups()
    assert float(factor) == pytest.approx(float(sync_ms) / float(per_ms), abs=0.006)  # 2 decimals as printed


def test_switching_the_layer_reuses_the_run(default_page, monkeypatch):
    """A layer switch redraws from the cached launch: no worker process starts, the numbers stay."""
    at = default_page
    launches = []
    monkeypatch.setattr(ui, "run_stats", lambda cfg, progress: launches.append(cfg))
    before = _equivalence(at)
    at.radio(key="multi:layer").set_value(2).run()
    assert_clean(at)
    assert "layer 2's μ_B" in _markdown(at, "differed by up to")
    assert at.query_params["layer"] == "2"
    assert _equivalence(at).equals(before) and len(charts(at)) == DEFAULT_CHARTS
    at.radio(key="multi:layer").set_value(1).run()
    assert "layer 1's μ_B" in _markdown(at, "differed by up to")
    assert launches == []  # every view came from the one cached launch


def test_detection_like_preset_scatters_the_statistics_more():
    at = open_page(PAGE, timeout=LAUNCH_TIMEOUT)
    per_default, _ = _gaps(at)
    at.selectbox(key="multi:preset").set_value("Detection-like: 2 images per replica").run()
    assert_clean(at)
    assert at.query_params["b"] == "2" and at.query_params["preset"].startswith("Detection")
    per_small, sync_small = _gaps(at)
    assert sync_small == 0.0 and per_small > per_default  # 2 examples per rank: noisier statistics
    assert len(charts(at)) == DEFAULT_CHARTS


def test_one_image_per_replica_shows_the_lesson_and_sync_bn_still_trains(default_page):
    at = default_page
    at.select_slider(key="multi:b").set_value(1.0).run()
    assert_clean(at)
    assert not alerts(at, "error")
    assert any("cannot train" in w and "2·1 = 2 values" in w for w in alerts(at, "warning"))
    assert len(charts(at)) == 4  # sync BN's μ_B and σ²_B, the volume and the time
    assert "with sync BN by **0**" in _markdown(at, "differed with sync BN")
    assert "pick b ≥ 2" in _markdown(at, "time cost is measured")
    assert (_equivalence(at).loc["sync BN"] < 1e-6).all()
    assert at.radio(key="multi:layer").value == 1  # the controls below the lesson are still drawn
    at.select_slider(key="multi:b").set_value(4.0).run()
    assert len(charts(at)) == DEFAULT_CHARTS


def test_sweep_trains_every_size_and_method():
    at = open_page(PAGE, query={"sweep": "1", "seeds": "1", "epochs": "1"}, timeout=LAUNCH_TIMEOUT)
    assert_clean(at)
    assert len(charts(at)) == DEFAULT_CHARTS + 1
    table = next(df.value for df in at.dataframe if "global_batch" in getattr(df.value, "columns", []))
    assert list(table.index) == [2, 4, 8, 16]
    assert list(table["global_batch"]) == [4, 8, 16, 32]
    assert {"BN", "sync BN", "GN"} <= set(table.columns)
    assert table["steps"].iloc[0] > table["steps"].iloc[-1]  # same epochs: small batches take more steps
    assert "At 2 images per replica BN" in _markdown(at, "images per replica BN (per-replica statistics) reached")
    assert len(at.get("download_button")) == 2


def test_tampered_url_is_clamped_with_visible_notices():
    query = {"W": "0", "b": "5", "steps": "abc", "layer": "7", "sweep": "maybe", "bogus": "1"}
    at = open_page(PAGE, query=query)
    assert_clean(at)
    notes = " ".join(alerts(at, "warning"))
    for phrase in ("clamped to 2", "nearest value 4", "not a finite number", "not one of", "true/false", "bogus"):
        assert phrase in notes, phrase
    assert at.query_params["W"] == "2" and at.query_params["b"] == "4" and at.query_params["steps"] == "100"
    assert len(charts(at)) == DEFAULT_CHARTS


def test_url_round_trips_to_the_same_numbers(default_page):
    params = {k: default_page.query_params[k] for k in default_page.query_params}
    again = open_page(PAGE, query=params)
    assert_clean(again)
    assert _gaps(again) == _gaps(default_page)
    assert _equivalence(again).equals(_equivalence(default_page))


def _quiz_box(at, key: str):
    return next(w for w in at.number_input if w.key.startswith(f"quiz:multi_device:{key}:"))


def test_check_yourself_accepts_the_live_numbers(default_page):
    at = default_page
    assert len([w for w in at.number_input if w.key.startswith("quiz:multi_device:")]) == 3  # gap, count, ratio
    _quiz_box(at, "gap").set_value(_gaps(at)[0]).run()  # the number section 1 prints
    _quiz_box(at, "count").set_value(7.0).run()  # 2 ranks × 4 images is 8 values, not 7
    assert any(s.startswith("Right.") for s in alerts(at, "success"))
    assert any(e.startswith("Not quite.") and "**8**" in e for e in alerts(at, "error"))


def test_a_failed_launch_becomes_a_clear_message():
    def failing(cfg, progress):
        raise DistributedRunError("Rank 1 failed: RuntimeError: boom", "traceback …")

    with pytest.raises(ValueError, match=r"failed and were all stopped\. Rank 1 failed"):
        ui.guarded_launch(failing, None, None)
    assert ui._LAUNCH_SLOT.acquire(blocking=False)  # the slot was released
    ui._LAUNCH_SLOT.release()
