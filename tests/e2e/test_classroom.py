"""A live class in real browsers: one teacher, five students, answers arriving on the teacher's chart.

Each participant is its own browser context (its own Streamlit session). Bounds and
expiry of the store are unit-tested in tests/test_classroom.py; here the point is the
whole loop through the UI, and that a student sees nothing of the others. Last, two students
on a link nobody has computed: the second one's bar follows the one run the class shares.
"""

from __future__ import annotations

import re

import pytest

from bn_core.experiments.steps import StepsConfig, run_steps
from tests.e2e.server import browser_page, settle, wait_for_page

pytestmark = pytest.mark.e2e
PAGE = "normalization-steps"


def _open_panel(page) -> None:
    page.locator("[data-testid=stSidebar]").get_by_text("Live class").click()
    page.wait_for_timeout(300)


def _student(browser, url: str, code: str, answer: float):
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/{PAGE}")
    wait_for_page(page, min_charts=3)
    _open_panel(page)
    page.get_by_label("Class code").fill(code.lower())  # codes are not case-sensitive
    page.get_by_role("button", name="Join").click()
    settle(page, min_charts=3)
    assert page.get_by_text(f"You joined class {code}").count() == 1
    box = page.get_by_placeholder("your answer: a number").first  # question 1: σ²_B of feature f0
    box.fill(f"{answer:.6g}")
    box.press("Enter")
    settle(page, min_charts=3)
    return context, page


def test_a_teacher_sees_five_students_answers_and_students_see_none(streamlit_server, browser):
    teacher, errors = browser_page(browser)
    teacher.goto(f"{streamlit_server}/{PAGE}")
    wait_for_page(teacher, min_charts=3)
    _open_panel(teacher)
    teacher.get_by_role("button", name="Open a class").click()
    settle(teacher, min_charts=3)
    code = re.search(r"Class code: ([A-Z0-9]{5})", teacher.locator("[data-testid=stSidebar]").inner_text()).group(1)

    var_B = float(run_steps(StepsConfig()).x[:, 0].var())  # the live answer for seed 0, feature f0
    answers = [var_B, var_B, var_B, 2 * var_B + 1, 2 * var_B + 1]
    students = [_student(browser, streamlit_server, code, a) for a in answers]

    teacher.get_by_text("5 answers").first.wait_for(timeout=30_000)  # the fragment refreshes every few seconds
    assert teacher.get_by_text(f"Class {code}: answers so far").count() == 1
    assert teacher.locator("[data-testid=stSidebar]").get_by_text("5 students joined").count() == 1
    for _context, page in students:  # a student sees only their own feedback
        assert page.get_by_text("answers so far").count() == 0
        assert page.get_by_text("students joined").count() == 0
    right = students[0][1].locator("[data-testid=stAlert]").filter(has_text="Right.").count()
    wrong = students[3][1].locator("[data-testid=stAlert]").filter(has_text="Not quite.").count()
    assert right == 1 and wrong == 1
    for context, _page in students:
        context.close()
    assert errors == [], errors
    teacher.close()


def test_a_wrong_code_gets_a_clear_message(streamlit_server, browser):
    page, errors = browser_page(browser)
    page.goto(f"{streamlit_server}/{PAGE}")
    wait_for_page(page, min_charts=3)
    _open_panel(page)
    page.get_by_label("Class code").fill("ZZZZZ")
    page.get_by_role("button", name="Join").click()
    settle(page, min_charts=3)
    assert page.get_by_text("wrong or has expired").count() == 1
    assert page.locator("[data-testid=stException]").count() == 0 and errors == []
    page.close()


STEP_SHOWN = "() => /step [1-9]/.test(document.querySelector('[data-testid=stProgress]')?.innerText)"


def _step(page) -> int:
    """The step a page's progress bar shows, or -1 without one."""
    texts = page.locator("[data-testid=stProgress]").all_inner_texts()
    found = re.search(r"step (\d+)/", texts[0]) if texts else None
    return int(found.group(1)) if found else -1


def test_a_student_waiting_for_the_classs_one_run_sees_its_progress(streamlit_server, browser):
    """Two students open the same link that nobody has computed: one session trains, and the other
    one's bar follows that run's steps instead of standing at 0 until the result appears."""
    url = f"{streamlit_server}/training-comparison?seed=777&steps=2000&depth=10"  # a result no other test makes
    first, errors = browser_page(browser)
    first.goto(url)
    first.wait_for_function(STEP_SHOWN)
    second, errors_2 = browser_page(browser)
    second.goto(url)
    second.wait_for_function(STEP_SHOWN, timeout=30_000)
    seen = [_step(second)]
    second.wait_for_timeout(1000)
    seen.append(_step(second))
    assert 0 < seen[0] < seen[1] or seen[1] == -1, seen  # it moved (or the run finished in between)
    wait_for_page(second, min_charts=3)
    assert errors == errors_2 == []
    for page in (first, second):
        page.close()
