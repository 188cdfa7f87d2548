"""Check yourself: the questions at the end of every content page.

The questions (``bn_core.quiz.Question``) are built by the page's experiment from
its live result, so a numeric answer changes with the seed. An answer is kept in
session state only, never in the URL or the share link. Its widget key carries a
salted digest of the question, so a new seed (a new answer) starts the question
afresh and the page's HTML never spells the answer out.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

import streamlit as st

from bn_core.quiz import Question

_SALT = secrets.token_hex(8)  # per server process: the widget key reveals nothing about the answer


def answer_key(page: str, q: Question) -> str:
    """The widget key of a question's answer box: stable while the question is the same."""
    digest = hashlib.sha256(f"{_SALT}|{q.prompt}|{q.answer!r}".encode()).hexdigest()[:10]
    return f"quiz:{page}:{q.key}:{digest}"


def _ask(page: str, i: int, q: Question) -> str | float | None:
    """The answer box, labelled with the question itself (one element, not a heading and a box)."""
    label, key = f"**{i}.** {q.prompt}", answer_key(page, q)
    if q.kind == "choice":
        return st.radio(label, q.options, index=None, key=key)
    return st.number_input(label, value=None, format="%g", step=None, key=key, placeholder="your answer: a number")


def _feedback(q: Question, given: str | float | None) -> bool | None:
    if given is None:
        return None
    right = q.check(given)
    if right:
        st.success(f"Right. {q.explain}", icon=":material/check_circle:")
    else:
        st.error(f"Not quite. {q.explain}", icon=":material/cancel:")
    return right


def check_yourself(page: str, questions: Sequence[Question]) -> dict[str, str | float | None]:
    """Draw the page's questions with instant feedback; return ``{question key: answer given}``.

    A student who joined a live class sends each answer (anonymously) to the teacher.
    """
    from ui import classroom, present  # late import: classroom imports this module's answer_key

    with present.open_slide("Check yourself"):
        given = _questions(page, questions, classroom)
        classroom.render_teacher_view(page, questions)
    present.close_slide()
    return given


def _questions(page: str, questions: Sequence[Question], classroom) -> dict[str, str | float | None]:
    st.subheader("Check yourself")
    st.caption(
        "Answers come from the numbers on this page, so they change with the seed. Nothing leaves your session"
        + (" except your answers to the live class." if classroom.joined() else ".")
    )
    given: dict[str, str | float | None] = {}
    for i, q in enumerate(questions, start=1):
        given[q.key] = _ask(page, i, q)
        right = _feedback(q, given[q.key])
        if right is not None:
            classroom.send(page, q, given[q.key])
    return given
