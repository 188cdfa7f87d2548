"""The live class store: codes, privacy, bounds and expiry (no server needed)."""

from __future__ import annotations

import pytest

from bn_core.classroom import CODE_ALPHABET, CODE_LENGTH, MAX_ANSWERS, MAX_CLASSES, TTL_S, ClassError, ClassStore


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_class_collects_answers_that_only_its_teacher_sees():
    store = ClassStore()
    code = store.open_class("teacher")
    assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET)
    for k in range(5):
        store.join(code.lower(), f"s{k}")  # codes are case-insensitive
        store.submit(code, f"s{k}", "steps", "var_B", "1.5" if k < 3 else "2")
    store.submit(code, "s0", "steps", "var_B", "2")  # a student's new answer replaces the old one
    assert store.answers(code, "teacher", "steps", "var_B") == ["1.5", "1.5", "2", "2", "2"]
    assert store.size(code) == 5
    with pytest.raises(ClassError, match="Only the teacher"):
        store.answers(code, "s1", "steps", "var_B")


def test_a_wrong_code_gets_a_clear_message():
    with pytest.raises(ClassError, match="wrong or has expired"):
        ClassStore().join("NOPE1", "s")


def test_classes_expire_after_their_time():
    clock = Clock()
    store = ClassStore(clock)
    code = store.open_class("t")
    clock.t += TTL_S - 1
    store.join(code, "s")
    clock.t += 2
    with pytest.raises(ClassError, match="expired"):
        store.submit(code, "s", "p", "q", "a")
    assert store.open_count() == 0


def test_bounds_on_classes_and_answers():
    clock = Clock()
    store = ClassStore(clock)
    codes = [store.open_class(f"t{k}") for k in range(MAX_CLASSES)]
    with pytest.raises(ClassError, match=f"{MAX_CLASSES} open classes"):
        store.open_class("one too many")
    code = codes[0]
    for k in range(MAX_ANSWERS):
        store.submit(code, f"s{k}", "p", "q", "x")
    with pytest.raises(ClassError, match=f"{MAX_ANSWERS} answers"):
        store.submit(code, "late", "p", "q", "x")
    store.submit(code, "s0", "p", "q", "y")  # replacing an answer is still allowed
    assert len(store.answers(code, "t0", "p", "q")) == MAX_ANSWERS
    clock.t += TTL_S
    assert store.open_class("after expiry")  # expired classes free their places


def test_results_persisted_by_other_code_are_dropped(tmp_path, monkeypatch):
    """Prepared results persist on disk; a restart with changed bn_core/ui code must not serve them."""
    import streamlit as st

    from ui import prepare

    cleared = []
    monkeypatch.setattr(st.cache_data, "clear", lambda: cleared.append(True))
    assert prepare.drop_stale_disk_cache(tmp_path) and cleared == [True]  # no stamp yet: clear, then stamp
    assert not prepare.drop_stale_disk_cache(tmp_path) and cleared == [True]  # same code: keep the results
    (tmp_path / prepare.CODE_STAMP).write_text("older code")
    assert prepare.drop_stale_disk_cache(tmp_path) and cleared == [True, True]
