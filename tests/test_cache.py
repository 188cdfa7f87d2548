"""ui.cache.cached: the per-process memo in front of st.cache_data."""

from __future__ import annotations

from dataclasses import dataclass

from ui import cache


@dataclass(frozen=True)
class Cfg:
    a: int
    b: float = 0.5


def _counted():
    calls: list[tuple] = []

    @cache.cached(max_entries=4)
    def compute(cfg: Cfg, scale: float = 1.0, _progress=None) -> dict:
        calls.append((cfg, scale))
        return {"value": cfg.a * scale}

    return compute, calls


def test_a_hit_returns_the_same_object_without_calling_the_function():
    compute, calls = _counted()
    first = compute(Cfg(1))
    assert compute(Cfg(1)) is first and calls == [(Cfg(1), 1.0)]
    assert compute(Cfg(1), scale=2.0) == {"value": 2.0} and len(calls) == 2  # another key


def test_underscore_arguments_are_not_part_of_the_key():
    compute, calls = _counted()
    compute(Cfg(2), _progress=lambda *a: None)
    compute(Cfg(2), _progress=None)
    assert len(calls) == 1


def test_the_memo_is_bounded_and_least_recently_used_goes_first():
    compute, calls = _counted()
    for a in range(5):  # one more than max_entries (4) and than MEMO_ENTRIES allows here
        compute(Cfg(10 + a))
    assert [key[0][0] for key in cache._MEMOS[-1].items] == [Cfg(11), Cfg(12), Cfg(13), Cfg(14)]
    calls.clear()
    compute(Cfg(14))
    assert calls == []  # still in the memo
    cache.clear()
    compute(Cfg(14))
    assert calls == [(Cfg(14), 1.0)]  # clear() forgets the memo and st.cache_data


def test_an_unhashable_argument_skips_the_memo():
    calls: list[list] = []

    @cache.cached(max_entries=4)
    def total(values: list) -> float:
        calls.append(values)
        return float(sum(values))

    assert total([1, 2]) == 3.0 and total([1, 2]) == 3.0
    assert len(calls) == 1  # st.cache_data still hashes it by value


def test_peek_reports_a_memo_hit_without_computing():
    compute, calls = _counted()
    assert compute.peek(Cfg(3)) == (False, None) and calls == []
    first = compute(Cfg(3))
    found, value = compute.peek(Cfg(3), _progress=print)  # underscore arguments are not part of the key
    assert found and value is first and len(calls) == 1
    assert compute.peek(Cfg(3), scale=2.0) == (False, None)
    assert compute.peek([1, 2]) == (False, None)  # unhashable: never in the memo


def test_arrow_makes_each_frames_table_once_by_identity():
    import gc

    import pandas as pd

    from ui import common

    df = pd.DataFrame({"x": [1.0, 2.0], "n": [3, 4]}, index=pd.Index(["a", "b"], name="row"))
    table = common.arrow(df)
    assert common.arrow(df) is table  # the same frame object: the same table
    twin = df.copy()
    assert common.arrow(twin) is not table and common.arrow(twin).equals(table)  # equal frames: never by value
    back = table.to_pandas()
    assert back.index.tolist() == ["a", "b"] and back["x"].tolist() == [1.0, 2.0]  # index kept
    n = len(common._ARROW)
    del df, twin
    gc.collect()
    assert len(common._ARROW) == n - 2  # a dead frame's table is forgotten


def test_table_hides_a_plain_row_count_and_shows_a_named_index():
    from streamlit.testing.v1 import AppTest

    def script():
        import pandas as pd

        from ui import common

        common.table(pd.DataFrame({"x": [1, 2]}))
        common.table(pd.DataFrame({"x": [1, 2]}, index=pd.Index(["a", "b"], name="row")))

    at = AppTest.from_function(script).run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.proto.hide_index for t in at.table] == [True, False]


def _flaky_store(monkeypatch, failures: int) -> list[str]:
    """``st.cache_data`` whose stored results are unreadable for the first ``failures`` reads."""
    from streamlit.runtime.caching.cache_errors import CacheError

    events: list[str] = []

    def fake_cache_data(**_options):
        def decorate(fn):
            def read(*args, **kwargs):
                if events.count("unreadable") < failures:
                    events.append("unreadable")
                    raise CacheError("Failed to unpickle")
                events.append("read")
                return fn(*args, **kwargs)

            read.clear = lambda: events.append("dropped")
            return read

        return decorate

    monkeypatch.setattr(cache.st, "cache_data", fake_cache_data)
    return events


def test_a_result_read_while_another_session_writes_it_is_read_again(monkeypatch):
    events = _flaky_store(monkeypatch, failures=1)
    compute, calls = _counted()
    assert compute(Cfg(3)) == {"value": 3.0}
    assert events == ["unreadable", "read"] and len(calls) == 1
    assert compute(Cfg(3)) == {"value": 3.0} and events == ["unreadable", "read"]  # then the memo holds it


def test_stored_results_that_stay_unreadable_are_dropped_and_computed_anew(monkeypatch):
    events = _flaky_store(monkeypatch, failures=2)
    compute, calls = _counted()
    assert compute(Cfg(4)) == {"value": 4.0}
    assert events == ["unreadable", "unreadable", "dropped", "read"] and len(calls) == 1


def _watched_store(monkeypatch) -> dict:
    """The real ``st.cache_data``, watched: how many calls are inside it at once, per key and in all."""
    import threading

    real = cache.st.cache_data
    seen = {"inside": {}, "most": {}, "most_in_all": 0, "lock": threading.Lock()}

    def watched_cache_data(**options):
        def decorate(fn):
            stored = real(**options)(fn)

            def call(cfg, *args, **kwargs):
                with seen["lock"]:
                    seen["inside"][cfg] = seen["inside"].get(cfg, 0) + 1
                    seen["most"][cfg] = max(seen["most"].get(cfg, 0), seen["inside"][cfg])
                    seen["most_in_all"] = max(seen["most_in_all"], sum(seen["inside"].values()))
                try:
                    return stored(cfg, *args, **kwargs)
                finally:
                    with seen["lock"]:
                        seen["inside"][cfg] -= 1

            call.clear = stored.clear
            return call

        return decorate

    monkeypatch.setattr(cache.st, "cache_data", watched_cache_data)
    return seen


def test_one_session_at_a_time_reads_or_computes_a_result_and_other_keys_do_not_wait(monkeypatch):
    """Streamlit's lock-free first read can find a result file another session has only just opened
    (empty: "Read zero byte file", a logged traceback); so the first call of a key holds its lock."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    seen = _watched_store(monkeypatch)
    calls: list[Cfg] = []

    @cache.cached(max_entries=8)
    def slow(cfg: Cfg) -> dict:
        calls.append(cfg)
        time.sleep(0.05)
        return {"value": cfg.a}

    start = threading.Barrier(12)

    def session(i: int) -> dict:
        start.wait()
        return slow(Cfg(100 + i % 2))  # twelve sessions, two results

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(session, range(12)))
    assert [r["value"] for r in results] == [100 + i % 2 for i in range(12)]
    assert sorted(calls, key=lambda c: c.a) == [Cfg(100), Cfg(101)]  # each computed once
    assert results[0] is results[2] and results[1] is results[3]  # the waiting sessions got the memo's object
    assert seen["most"] == {Cfg(100): 1, Cfg(101): 1}  # never two calls of one key inside st.cache_data at once
    assert seen["most_in_all"] == 2  # the two keys were computed side by side
    slow.clear()


def test_a_waiting_run_that_is_asked_to_stop_gives_up_its_place(monkeypatch):
    import threading

    class StopRequestedError(Exception):
        pass

    locks = cache._KeyLocks()
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with locks.hold("k"):
            holding.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    holding.wait(5)
    asked = []

    def yield_check() -> None:
        asked.append(1)
        if len(asked) == 3:
            raise StopRequestedError  # the user moved a slider: Streamlit's check raises to rerun

    from streamlit.runtime.caching import cache_utils

    monkeypatch.setattr(cache_utils, "get_run_yield_check", lambda: yield_check)
    try:
        with locks.hold("k"):
            raise AssertionError("the lock was held by another session")
    except StopRequestedError:
        pass
    release.set()
    t.join(5)
    assert len(asked) == 3 and locks.held == {}  # asked while waiting; nothing left behind
    with locks.hold("k"):  # and the key is free again
        assert locks.held["k"].users == 1


def test_a_run_waiting_for_another_runs_result_is_shown_that_runs_progress(monkeypatch):
    """30 students open a cold page: one computes; the others' bars follow its reports, not stay at 0."""
    import threading
    import time

    from streamlit.runtime.caching import cache_utils

    monkeypatch.setattr(cache, "FOLLOW_POLL_S", 0.005)
    monkeypatch.setattr(cache_utils, "get_run_yield_check", lambda: None)
    halfway, go_on = threading.Event(), threading.Event()

    @cache.cached(max_entries=4)
    def slow(cfg: Cfg, _progress=None) -> dict:
        for k in range(1, 4):
            _progress(k / 4, f"step {k}/4")
            if k == 2:
                halfway.set()
                go_on.wait(5)
        return {"value": cfg.a}

    computer: list = []
    waiter: list = []
    first = threading.Thread(target=lambda: slow(Cfg(7), _progress=lambda f, m: computer.append((f, m))))
    first.start()
    halfway.wait(5)
    second = threading.Thread(target=lambda: waiter.append(slow(Cfg(7), _progress=lambda f, m: waiter.append((f, m)))))
    second.start()
    deadline = time.monotonic() + 5
    while not waiter and time.monotonic() < deadline:
        time.sleep(0.005)
    shown_while_waiting = list(waiter)
    go_on.set()
    first.join(5)
    second.join(5)
    assert computer == [(0.25, "step 1/4"), (0.5, "step 2/4"), (0.75, "step 3/4")]
    assert shown_while_waiting == [(0.5, "step 2/4")]  # the computing run's bar, on the waiting run's screen
    assert set(waiter[1:-1]) <= set(computer) and waiter[-1] == {"value": 7}  # then the one result
    slow.clear()


def test_a_run_waiting_without_a_progress_bar_shows_the_functions_spinner(monkeypatch):
    import contextlib
    import threading

    from streamlit.runtime.caching import cache_utils

    monkeypatch.setattr(cache, "FOLLOW_POLL_S", 0.005)
    monkeypatch.setattr(cache_utils, "get_run_yield_check", lambda: None)
    shown: list[str] = []

    @contextlib.contextmanager
    def spinner(text: str):
        shown.append(text)
        yield

    monkeypatch.setattr(cache.st, "spinner", spinner)
    locks = cache._KeyLocks()
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with locks.hold("k", spinner="Gathering…"):  # the computing run: no one to wait for, no spinner of ours
            holding.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    holding.wait(5)
    assert shown == []
    threading.Timer(0.05, release.set).start()
    with locks.hold("k", spinner="Gathering…"):
        assert shown == ["Gathering…"]  # shown while this run waited for the other one
    t.join(5)


def test_a_result_the_disk_cannot_take_is_kept_in_memory_not_lost(monkeypatch, tmp_path):
    """A full disk: Streamlit's disk store raises after it has kept the result in memory. The student
    gets the result, and it is computed once."""
    from streamlit.runtime.caching import cache_data_api
    from streamlit.runtime.caching.storage import local_disk_cache_storage as disk
    from streamlit.runtime.caching.storage.cache_storage_protocol import CacheStorageError

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(cache_data_api._data_caches, "get_storage_manager", disk.LocalDiskCacheStorageManager)
    writes: list[str] = []

    def full_disk(self, key: str, value: bytes) -> None:
        writes.append(key)
        raise CacheStorageError("Unable to write to cache")  # what LocalDiskCacheStorage.set raises on OSError

    monkeypatch.setattr(disk.LocalDiskCacheStorage, "set", full_disk)
    cache.st.cache_data.clear()  # Streamlit keeps one cache per function source: start without the earlier tests'
    compute, calls = _counted()
    assert compute(Cfg(5)) == {"value": 5.0}
    assert len(calls) == 1 and len(writes) == 1  # computed once: the second try read Streamlit's memory copy
    assert compute(Cfg(5)) == {"value": 5.0} and len(calls) == 1
    cache.st.cache_data.clear()  # and leave none on the disk store for the tests after this one


def test_a_run_following_another_runs_progress_still_stops_when_asked(monkeypatch):
    import threading

    from streamlit.runtime.caching import cache_utils

    class StopRequestedError(Exception):
        pass

    monkeypatch.setattr(cache, "FOLLOW_POLL_S", 0.005)
    asked: list[int] = []

    def yield_check() -> None:
        asked.append(1)
        if len(asked) == 3:
            raise StopRequestedError  # the student moved a slider while waiting

    monkeypatch.setattr(cache_utils, "get_run_yield_check", lambda: yield_check)
    locks = cache._KeyLocks()
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with locks.hold("k") as entry:
            entry.progress = (0.5, "step 5/10")
            holding.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    holding.wait(5)
    shown: list[tuple[float, str]] = []
    try:
        with locks.hold("k", progress=lambda f, m: shown.append((f, m))):
            raise AssertionError("the lock was held by another session")
    except StopRequestedError:
        pass
    release.set()
    t.join(5)
    assert shown == [(0.5, "step 5/10")] and len(asked) == 3 and locks.held == {}


def test_time_left_is_the_rate_so_far_extrapolated_once_there_is_a_rate():
    assert cache.time_left(1.0, 0.25) == "about 3 s left"  # 1 s for a quarter: 3 s for the rest
    assert cache.time_left(30.0, 0.5) == "about 30 s left"
    assert cache.time_left(10.0, 0.99) == "about 1 s left"  # never "0 s"
    assert cache.time_left(0.5, 0.5) == ""  # too early to say
    assert cache.time_left(5.0, 0.01) == ""  # too little done to say
    assert cache.time_left(5.0, 1.0) == ""  # done
    assert cache.time_left(2.0, 0.6, since=0.2) == "about 2 s left"  # 2 s for 40 %: 2 s for the last 40 %
    assert cache.time_left(2.0, 0.22, since=0.2) == ""  # too little done since the first report


def test_a_computing_runs_reports_add_the_time_left_which_waiting_runs_are_shown_too(monkeypatch):
    """The estimate is added where the report is recorded for waiting runs (entry.progress), so all agree."""
    clock = [100.0]
    monkeypatch.setattr(cache.time, "monotonic", lambda: clock[0])

    @cache.cached(max_entries=4)
    def slow(cfg: Cfg, _progress=None) -> dict:
        _progress(0.1, "step 1/10")  # the first report: the pace is measured from here
        clock[0] += 2.0  # two seconds for the next four steps
        _progress(0.5, "step 5/10")
        return {"value": cfg.a}

    shown: list[tuple[float, str]] = []
    assert slow(Cfg(9), _progress=lambda f, m: shown.append((f, m))) == {"value": 9}
    assert shown == [(0.1, "step 1/10"), (0.5, "step 5/10 · about 2 s left")]
    slow.clear()


def test_the_estimate_follows_the_pace_of_the_last_second_not_the_slow_start(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(cache.time, "monotonic", lambda: clock[0])
    paces = [(0.0, 0.05), (1.0, 0.1), (1.5, 0.3), (2.0, 0.5)]  # slow while the class's pages load, then fast

    @cache.cached(max_entries=4)
    def run(cfg: Cfg, _progress=None) -> dict:
        for t, fraction in paces:
            clock[0] = t
            _progress(fraction, f"{fraction:.0%}")
        return {"value": cfg.a}

    shown: list[str] = []
    run(Cfg(11), _progress=lambda f, m: shown.append(m))
    assert shown[-1] == "50% · about 1 s left"  # 40 % in the last second: 1.25 s for the last half
    run.clear()  # (since the start it would read 2 s: 45 % in 2 s)
