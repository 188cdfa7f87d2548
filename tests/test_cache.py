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
