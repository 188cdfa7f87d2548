"""Page scaffolding every page shares: state load/sync, share link, progress, errors, downloads.

A page reads like this::

    with common.page(STATE, "Title", "Intro …"):
        cfg = controls()
        result = common.run(cached_fn, cfg, label="Training")
        if result is not None:
            st.altair_chart(chart(result.frame))

``page`` loads the URL state, shows notices about tampered links, renders the
"share this view" box and writes the final state back to the URL, even when the
body stops early. ``run`` shows a progress bar for the cached computation and
turns any exception into a friendly message instead of a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.dataframe_util import convert_pandas_df_to_arrow_table
from streamlit.runtime.scriptrunner_utils.script_run_context import in_cached_function

from bn_core.progress import Progress
from ui import charts, present
from ui.sidebar import GLOBAL
from ui.state import PageState, share_url, sync_url

log = logging.getLogger("batchnorm_lab")


class Halt(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by :func:`halt` to end a page body early; :func:`page` swallows it."""


def halt() -> NoReturn:
    """End the current :func:`section` (or, outside one, the page body) here, after an error
    message. Like ``st.stop()``, but the page still draws its other sections and can
    write the controls back to the URL and draw the share box: after ``st.stop()``
    Streamlit refuses every further call, so a tampered link would stay tampered."""
    raise Halt


T = TypeVar("T")


@contextlib.contextmanager
def page(ps: PageState, title: str, intro: str) -> Iterator[None]:
    """Title, intro, link notices and the share box around a page body."""
    notices = ps.load(known_elsewhere=GLOBAL.keys)
    present.start(title)
    with st.container(horizontal=True, vertical_alignment="bottom"):  # one layout block, not four
        st.title(title, width="stretch")
        share_box = st.empty()
        if not present.presenting():
            st.button("Present", icon=":material/slideshow:", on_click=_start_presenting, help=PRESENT_HELP)
    for text in notices:
        st.warning(text, icon=":material/link:")
    with present.open_slide("Introduction"):
        st.markdown(intro)
    present.close_slide()
    try:
        yield
    except Halt:
        pass
    except Exception as err:
        log.exception("page %s failed", ps.page)
        st.error(f"Something went wrong on this page ({type(err).__name__}). Change a control to try again.")
    finally:
        present.finish()
        params = sync_url(GLOBAL, ps)
        with share_box.popover("Share", icon=":material/share:", help="A link that reproduces this exact view"):
            st.caption("Copy this link: it opens this page with the same controls, seed and slide.")
            st.code(share_url(params), language=None, wrap_lines=True)


PRESENT_HELP = "Presenter view: one section at a time, large charts, the controls in a compact bar"


def _start_presenting() -> None:
    GLOBAL["present"] = True
    GLOBAL["slide"] = 0


@contextlib.contextmanager
def section(title: str | None = None) -> Iterator[None]:
    """One section of a page: an error or a :func:`halt` inside it ends this section only.

    The section's own message (a batch of 1, a diverged run) stays in place and every
    other section of the page still runs, so one bad control never wipes the page.
    """
    with present.open_slide(title):
        if title:
            st.subheader(title)
        try:
            yield
        except Halt:
            pass
        except Exception as err:
            log.exception("a section (%s) failed", title)
            st.error(
                f"This section failed ({type(err).__name__}); the rest of the page still works. "
                "Change a control to try again.",
                icon=":material/error:",
            )
        finally:
            present.close_slide()


def need(result: object) -> None:
    """In a section that shows a result: end the section quietly when the result is missing
    (its computation already said why, where it ran)."""
    if result is None:
        st.caption("This section needs the result above; change the control that the message names.")
        halt()


def _progress_callback(bar: Any, label: str) -> Progress:
    def update(fraction: float, message: str = "") -> None:
        # Called from inside st.cache_data functions: the bar lives outside the cached
        # function, so its updates must not be recorded for cache replay.
        token = in_cached_function.set(False)
        try:
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"{label} {message}".strip())
        finally:
            in_cached_function.reset(token)

    return update


def run(fn: Callable[..., T], *args: Any, label: str = "Computing…", **kwargs: Any) -> T | None:
    """Call a cached experiment with a progress bar; on failure show a message and return None.

    ``fn`` must accept a ``_progress`` keyword (underscore: not part of the cache key).
    A ``ValueError`` carries a message meant for the user (bad combination of
    controls); anything else is logged and reported generically.
    """
    found, result = getattr(fn, "peek", _not_held)(*args, **kwargs)
    if found:  # already computed in this process: no bar to draw and take away (two messages per rerun)
        return result
    bar = st.progress(0.0, text=label)
    try:
        return fn(*args, _progress=_progress_callback(bar, label), **kwargs)
    except ValueError as err:
        st.error(str(err), icon=":material/warning:")
    except Exception as err:
        log.exception("experiment %s failed", getattr(fn, "__name__", fn))
        st.error(f"The computation failed ({type(err).__name__}). Try other settings.", icon=":material/warning:")
    finally:
        bar.empty()
    return None


def _not_held(*args: Any, **kwargs: Any) -> tuple[bool, None]:
    return False, None


def show_issues(issues: Sequence[Any]) -> None:
    """Show ``bn_core.data.DataIssue``-like items with the matching alert."""
    for issue in issues:
        {"error": st.error, "warning": st.warning}.get(issue.level, st.info)(issue.text)


def download_csv(data: pd.DataFrame | bytes, filename: str, label: str = "Download CSV", **kw: Any) -> None:
    """A download button for a DataFrame or ready CSV bytes (numbers only; no user text is echoed into formulas).

    The file is made when the button is clicked (Streamlit's deferred download): a rerun
    neither encodes nor stores it, and the browser never holds a file URL that the next
    rerun has already replaced (that stale URL answered 404 under concurrent sessions).
    """

    def make_file() -> bytes:
        return data if isinstance(data, bytes) else data.to_csv(index=False).encode()

    st.download_button(label, make_file, file_name=filename, mime="text/csv", **kw)


def number_config(df: pd.DataFrame, decimals: int = 4) -> dict:
    """Column formats for ``st.dataframe``: fixed decimals where the numbers read well that way,
    scientific notation in a column holding tiny (< 1e-3) or huge (≥ 1e5) nonzero values.

    It runs on every rerun of every session, so it reads each column once as a NumPy array
    (pandas' masks cost more than the page's charts here)."""
    config = {}
    for name, dtype in df.dtypes.items():
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        values = np.abs(df[name].to_numpy(dtype=float, na_value=np.nan))
        nonzero = values[values > 0]  # NaN compares False: left out
        odd = bool(nonzero.size) and (nonzero.min() < 1e-3 or nonzero.max() >= 1e5)
        if pd.api.types.is_integer_dtype(dtype) and not odd:
            continue
        config[name] = st.column_config.NumberColumn(format="%.3e" if odd else f"%.{decimals}f")
    return config


_ARROW: dict[int, tuple[weakref.ref, Any]] = {}  # id(frame) → (the frame, its Arrow table)


def arrow(df: pd.DataFrame) -> Any:
    """The ``pyarrow.Table`` Streamlit would make of ``df`` (index and all), made once per frame object.

    ``st.dataframe`` converts a pandas frame to Arrow on every rerun of every session; a frame that
    comes from a cached result is the same object on every rerun, so its table is remembered for as
    long as the frame lives (checked by identity, never by value)."""
    hit = _ARROW.get(id(df))
    if hit is not None and hit[0]() is df:
        return hit[1]
    table = convert_pandas_df_to_arrow_table(df)
    _ARROW[id(df)] = (weakref.ref(df), table)
    weakref.finalize(df, _ARROW.pop, id(df), None)
    return table


def dataframe(df: pd.DataFrame, where: Any = st, **kw: Any) -> None:
    """``st.dataframe`` of a pandas frame, through :func:`arrow`."""
    where.dataframe(arrow(df), **kw)


def table(df: pd.DataFrame) -> None:
    """``st.table`` of a pandas frame, through :func:`arrow`, its index hidden when it is a plain row
    count (what Streamlit decides itself, but from the frame: from an Arrow table it would convert the
    table back to pandas on every rerun just to look at the index)."""
    st.table(arrow(df), hide_index=isinstance(df.index, pd.RangeIndex))


def formats(df: pd.DataFrame, fmt: str, **per_column: str) -> dict:
    """Column formats for ``st.dataframe``: one printf-style format (``"%.3g"``) for every float
    column, ``per_column`` overriding it by name. The browser formats the numbers; a pandas
    ``Styler`` would format every cell on the server on every rerun of every session."""
    floats = [name for name, dtype in df.dtypes.items() if pd.api.types.is_float_dtype(dtype)]
    return {name: st.column_config.NumberColumn(format=per_column.get(name, fmt)) for name in floats} | {
        name: st.column_config.NumberColumn(format=f) for name, f in per_column.items() if name not in floats
    }


def try_this(*prompts: str) -> None:
    """The "try this" box near the end of each page (a slide of its own in presenter view)."""
    with present.open_slide("Try this"):
        st.markdown("**Try this**\n" + "\n".join(f"- {p}" for p in prompts))
    present.close_slide()


def takeaway(text: str) -> None:
    """The page's takeaway (a slide of its own in presenter view)."""
    with present.open_slide("Takeaway"):
        st.success(text, icon=":material/lightbulb:")
    present.close_slide()


def chart(chart_or_spec: Any, where: Any = st) -> None:
    """Draw an Altair chart or a Vega-Lite spec at the container's width (projector-size text when presenting)."""
    spec = chart_or_spec if isinstance(chart_or_spec, dict) else charts.arrow_spec(chart_or_spec)
    where.vega_lite_chart(present.chart_config(spec), width="stretch")


def row() -> Any:
    """A row for a few controls or charts side by side that wraps onto new lines on a narrow screen.

    One layout block: ``st.columns(n)`` is n + 1, and every block is a message in every rerun of
    every session. Each element takes an equal share of the row (controls with a natural width,
    like radios and toggles, keep it)."""
    return st.container(horizontal=True)


def side_by_side(specs: Sequence[dict]) -> None:
    """Charts next to each other (one per net or method), each an equal share of the row; a pair is
    one :func:`row` (it stacks on a phone), three or more keep ``st.columns`` (a row of them would
    wrap unevenly at tablet widths)."""
    if len(specs) <= 2:
        with row():
            for spec in specs:
                chart(spec)
        return
    for column, spec in zip(st.columns(len(specs)), specs, strict=True):
        chart(spec, where=column)
