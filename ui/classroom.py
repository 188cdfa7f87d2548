"""The live class: open or join it in the sidebar, send answers, and the teacher's live view.

The store (``bn_core.classroom.ClassStore``) is one per server process, shared by
every session through ``st.cache_resource``. A session is anonymous: it holds a
random token and, once it joins or opens a class, the class code.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from bn_core.classroom import ClassError, ClassStore
from bn_core.quiz import Question
from ui import charts, widgets

REFRESH_S = 3  # the teacher's charts poll the store this often


@st.cache_resource
def store() -> ClassStore:
    """The server's one class store (in memory; a restart ends every class)."""
    return ClassStore()


def _token() -> str:
    return st.session_state.setdefault("__class:token", secrets.token_hex(12))


def joined() -> bool:
    """Whether this session is a student in a live class."""
    return bool(st.session_state.get("__class:student"))


def teaching() -> str | None:
    """The code of the class this session opened, if any."""
    return st.session_state.get("__class:teacher")


def _join() -> None:
    code = st.session_state.get("__class:code_box", "")
    try:
        st.session_state["__class:student"] = store().join(code, _token())
        st.session_state.pop("__class:error", None)
    except ClassError as err:
        st.session_state["__class:error"] = str(err)


def _open() -> None:
    try:
        st.session_state["__class:teacher"] = store().open_class(_token())
        st.session_state.pop("__class:error", None)
    except ClassError as err:
        st.session_state["__class:error"] = str(err)


def _leave() -> None:
    for key in ("__class:student", "__class:teacher", "__class:error"):
        st.session_state.pop(key, None)


def render_panel() -> None:
    """The sidebar's "Live class" box: join with a code, or open a class as the teacher."""
    panel = widgets.lazy_expander(
        "Live class", key="__class:panel", icon=":material/groups:", expanded=joined() or bool(teaching())
    )
    with panel as shown:
        if not shown:
            return
        if teaching():
            _teacher_panel(teaching())
        elif joined():
            st.markdown(
                f"You joined class **{st.session_state['__class:student']}**. Your check-yourself "
                "answers are sent anonymously; nobody sees who answered what."
            )
            st.button("Leave the class", on_click=_leave, key="__class:leave")
        else:
            st.text_input("Class code", key="__class:code_box", max_chars=12, placeholder="e.g. K7PQ3")
            a, b = st.columns(2)
            a.button("Join", on_click=_join, key="__class:join")
            b.button("Open a class", on_click=_open, key="__class:open", help="For the teacher: get a code")
        if st.session_state.get("__class:error"):
            st.warning(st.session_state["__class:error"], icon=":material/warning:")


@st.fragment(run_every=REFRESH_S)
def _teacher_panel(code: str) -> None:
    try:
        size = store().size(code)
    except ClassError as err:
        st.warning(str(err), icon=":material/warning:")
        st.button("Forget it", on_click=_leave, key="__class:forget")
        return
    st.markdown(f"Class code: **`{code}`** · {size} student{'s' if size != 1 else ''} joined.")
    st.caption("Students type the code here. The answers to each page's questions appear on that page.")
    st.button("Close the class", on_click=_leave, key="__class:close")


def send(page: str, q: Question, given: str | float | None) -> None:
    """Send a student's answer to the live class (nothing happens outside a class)."""
    code = st.session_state.get("__class:student")
    if not code or given is None:
        return
    try:
        store().submit(code, _token(), page, q.key, _answer_text(q, given))
    except ClassError as err:
        st.warning(str(err), icon=":material/warning:")


def _answer_text(q: Question, given: str | float) -> str:
    return str(given) if q.kind == "choice" else f"{float(given):.3g}"


def answer_frame(q: Question, answers: Sequence[str]) -> pd.DataFrame:
    """Counts per answer given (every option of a choice question, even unpicked ones)."""
    counts = pd.Series(list(answers), dtype="object").value_counts()
    labels = list(q.options) if q.kind == "choice" else sorted(counts.index, key=float)
    rows = [(a, int(counts.get(a, 0)), "right" if q.check(a) else "wrong") for a in labels]
    return pd.DataFrame(rows, columns=["answer", "count", "correct"])


def render_teacher_view(page: str, questions: Sequence[Question]) -> None:
    """For the teacher: a live chart of the class's answers to each question, refreshed every few seconds."""
    if teaching():
        _live_answers(page, tuple(questions))


@st.fragment(run_every=REFRESH_S)
def _live_answers(page: str, questions: tuple[Question, ...]) -> None:
    code = teaching()
    try:
        size = store().size(code)
    except ClassError as err:
        st.warning(str(err), icon=":material/warning:")
        return
    st.subheader(f"Class {code}: answers so far")
    st.caption(f"{size} student{'s' if size != 1 else ''} joined; the charts refresh every {REFRESH_S} s.")
    for i, q in enumerate(questions, start=1):
        try:
            answers = store().answers(code, _token(), page, q.key)
        except ClassError as err:
            st.warning(str(err), icon=":material/warning:")
            return
        st.markdown(f"**{i}.** {len(answers)} answer{'s' if len(answers) != 1 else ''}")
        if answers:
            st.altair_chart(charts.answer_bars(answer_frame(q, answers)), width="stretch")
