"""One typed table of UI state per page, with defaults, bounds and URL sync.

A page declares its controls once, as :class:`Field` rows in a :class:`PageState`.
That single table drives:

* the widgets (``ui.widgets`` reads bounds and choices from it),
* the URL: every control round-trips through ``st.query_params`` so a teacher
  can share the exact view, and a tampered link is clamped with a visible notice,
* presets (named bundles of values) and their URL key ``preset``,
* persistence across page switches, errors and halted runs.

Where a value lives (the state rules): a control's value lives in a plain
session-state entry, the *model* (``__model:<page>``, a dict of key → value), which no widget owns and
Streamlit never cleans up. The widget (key ``<page>:<key>``) is only a view of it:

1. At the start of every run, :meth:`PageState.load` compares each widget's value
   with the value the model last gave it. A difference is a user's change and goes
   into the model; anything else (a widget that was not drawn, a choice the browser
   cleared) leaves the model as it is.
2. It then re-seeds every widget from the model, so each widget is sent to the
   browser with its value set. A widget that a halted run did not draw comes back
   with the model's value, not with its first or minimum value.
3. Code (presets, the URL, announced clamps, callbacks) writes only the model.

So a control changes only when the user, a preset, the link or an announced clamp
changes it, whatever ran before. On a page's first run in a session the URL wins;
afterwards the model does. Widgets never get ``value=``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import streamlit as st
from streamlit.errors import StreamlitAPIException

MAX_PARAM_CHARS = 400  # a longer URL value is ignored, not parsed
FieldKind = Literal["int", "float", "choice", "bool", "floats"]


@dataclass(frozen=True)
class Field:
    """One control: its URL key, default and legal values."""

    key: str  # URL key; the widget key is "<page>:<key>"
    default: Any  # value when the URL does not say
    kind: FieldKind  # how the URL text is parsed
    lo: float | None = None  # numeric lower bound (per element for "floats")
    hi: float | None = None  # numeric upper bound
    choices: tuple = ()  # legal values for "choice" (and a snapping grid for "float" when numeric)
    max_len: int = 64  # longest list for "floats"
    label: str = ""  # human name used in notices; defaults to the key
    omit_default: bool = False  # left out of the link while at its default (the presenter view's keys)

    @property
    def name(self) -> str:
        return self.label or self.key


def _fmt(value: Any) -> str:
    """The URL text for a value (the inverse of :func:`parse_value`)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        return ",".join(_fmt(v) for v in value)
    return str(value)


def _clamp(f: Field, x: float, raw: str, notices: list[str]) -> float:
    if f.lo is not None and x < f.lo:
        notices.append(f"**{f.name}** = `{raw[:40]}` is below the minimum {_fmt(f.lo)}; clamped to {_fmt(f.lo)}.")
        return f.lo
    if f.hi is not None and x > f.hi:
        notices.append(f"**{f.name}** = `{raw[:40]}` is above the maximum {_fmt(f.hi)}; clamped to {_fmt(f.hi)}.")
        return f.hi
    return x


def _number(f: Field, raw: str, notices: list[str]) -> float | None:
    try:
        x = float(raw)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        notices.append(f"**{f.name}** = `{raw[:40]}` is not a finite number; using the default {_fmt(f.default)}.")
        return None
    return _clamp(f, x, raw, notices)


def _snap(f: Field, x: float, notices: list[str]) -> float:
    """Numeric choices (a log grid, say): move x to the nearest legal value."""
    nearest = min(f.choices, key=lambda c: abs(math.log(c) - math.log(x)) if c > 0 and x > 0 else abs(c - x))
    if nearest != x:
        notices.append(f"**{f.name}** = {_fmt(x)} is not on the slider; using the nearest value {_fmt(nearest)}.")
    return nearest


def parse_value(f: Field, raw: str, notices: list[str]) -> Any:
    """URL text → a legal value for ``f``; problems are appended to ``notices``."""
    if len(raw) > MAX_PARAM_CHARS:
        notices.append(f"**{f.name}**: the value is {len(raw)} characters long; ignored.")
        return f.default
    if f.kind == "choice":
        legal = {_fmt(c): c for c in f.choices}
        if raw in legal:
            return legal[raw]
        notices.append(f"**{f.name}** = `{raw[:40]}` is not one of {', '.join(legal)}; using `{_fmt(f.default)}`.")
        return f.default
    if f.kind == "bool":
        if raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
        notices.append(f"**{f.name}** = `{raw[:40]}` is not true/false; using the default.")
        return f.default
    if f.kind == "floats":
        return _parse_floats(f, raw, notices)
    x = _number(f, raw, notices)
    if x is None:
        return f.default
    if f.kind == "int":
        return round(x)
    return _snap(f, x, notices) if f.choices else x


def _parse_floats(f: Field, raw: str, notices: list[str]) -> tuple[float, ...]:
    parts = [p for p in raw.split(",") if p.strip()][: f.max_len]
    values = []
    for i, part in enumerate(parts):
        default = f.default[min(i, len(f.default) - 1)]
        element = Field(f"{f.key}[{i}]", default, "float", f.lo, f.hi, label=f"{f.name}[{i}]")
        x = _number(element, part.strip(), notices)
        values.append(default if x is None else x)
    return tuple(values) or tuple(f.default)


@dataclass
class PageState:
    """The typed state table of one page (or of the global sidebar)."""

    page: str  # short page id, also the session-state prefix
    fields: Sequence[Field]
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> {key: value}
    on_load: Callable[[PageState], None] | None = None  # fix-ups after loading, e.g. list lengths

    def __post_init__(self) -> None:
        self._by_key = {f.key: f for f in self.fields}
        if self.presets:
            self._by_key["preset"] = Field("preset", "custom", "choice", choices=("custom", *self.presets))

    # -- access -------------------------------------------------------------
    def key(self, name: str) -> str:
        """The widget key of a control. Asking for it is how a widget is drawn, so it also marks
        the control as drawn in this run (see :meth:`_seed_widgets`)."""
        st.session_state.setdefault(f"__drawn:{self.page}", set()).add(name)
        return self._wkey(name)

    def _wkey(self, name: str) -> str:
        return f"{self.page}:{name}"

    def _store(self, kind: str) -> dict[str, Any]:
        """One session-state entry per page and kind: ``model`` (the controls' values) and ``seed``
        (the value the model last gave each widget, to tell a user's change from it). One entry,
        not one per control: Streamlit copies the whole session state each time it draws a
        widget (``SessionState.filtered_state``), so every extra key costs every widget of every
        rerun of every session."""
        return st.session_state.setdefault(f"__{kind}:{self.page}", {})

    def spec(self, name: str) -> Field:
        return self._by_key[name]

    def __getitem__(self, name: str) -> Any:
        return self._store("model").get(name, self._by_key[name].default)

    def __setitem__(self, name: str, value: Any) -> None:
        self._store("model")[name] = value

    def values(self) -> dict[str, Any]:
        return {k: self[k] for k in self._by_key}

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._by_key)

    # -- presets ------------------------------------------------------------
    def apply_preset(self, name: str | None = None) -> None:
        """Set every control a preset names (usable as a widget ``on_change``: then the
        preset comes from the picker, whose change reaches the model only at ``load``)."""
        name = name or st.session_state.get(self._wkey("preset"), self["preset"])
        for k, v in self.presets.get(name, {}).items():
            self[k] = v
        self["preset"] = name

    def matching_preset(self) -> str:
        """The preset the controls currently equal ("custom" once any control departs from it).

        The one already picked wins while it still matches, so that two presets with the
        same values keep the name the user chose.
        """

        def matches(name: str) -> bool:
            return all(self[k] == v for k, v in self.presets[name].items())

        picked = self._store("model").get("preset")
        if picked in self.presets and matches(picked):
            return picked
        return next((name for name in self.presets if matches(name)), "custom")

    # -- load / sync --------------------------------------------------------
    def load(self, known_elsewhere: Sequence[str] = (), report_unknown: bool = True) -> list[str]:
        """Take the user's widget changes into the model, fill it from the URL on the
        page's first run, and re-seed every widget from it; return notices.

        Args:
            known_elsewhere: URL keys owned by another state table (the global
                seed), which must not be reported as unknown.
            report_unknown: report URL keys no table knows (off for the global
                table, which cannot know the page's keys).
        """
        loaded_flag = f"__loaded:{self.page}"
        notices: list[str] = []
        self._take_widget_changes()
        if not st.session_state.get(loaded_flag):
            st.session_state[loaded_flag] = True
            notices = self._load_url(known_elsewhere, report_unknown)
        model = self._store("model")
        for k, f in self._by_key.items():
            if k not in model:
                model[k] = f.default
        if self.on_load:
            self.on_load(self)
        if self.presets:
            self["preset"] = self.matching_preset()
        self._seed_widgets()
        return notices

    def _take_widget_changes(self) -> None:
        """A widget whose value differs from what the model last seeded it with was changed by the user."""
        seeds = self._store("seed")
        for k, f in self._by_key.items():
            if self._wkey(k) not in st.session_state or k not in seeds:
                continue
            value = st.session_state[self._wkey(k)]
            if not _same(value, seeds[k]) and _legal(f, value):
                self[k] = value

    def _seed_widgets(self) -> None:
        """Send a widget the model's value when the browser may not hold it: the widget was not
        drawn in the last run (a halted or interrupted run, another page) or code changed the
        model. Streamlit then marks the value as set, so the browser shows it instead of the
        widget's first value. A widget the browser already shows correctly is left alone, so a
        rerun never pulls back a value the user is still changing."""
        drawn_last_run = st.session_state.get(f"__drawn:{self.page}", set())
        st.session_state[f"__drawn:{self.page}"] = set()
        seeds = self._store("seed")
        for k in self._by_key:
            value, wkey = self[k], self._wkey(k)
            shown = k in drawn_last_run and wkey in st.session_state and _same(st.session_state[wkey], value)
            if not shown:
                try:
                    st.session_state[wkey] = value
                except StreamlitAPIException:  # a widget kind whose value cannot be set (none of ours today)
                    continue
            seeds[k] = value  # what the widget holds now

    def _load_url(self, known_elsewhere: Sequence[str], report_unknown: bool) -> list[str]:
        params = {k: st.query_params.get(k, "") for k in st.query_params}
        notices = [
            f"Ignored the unknown link parameter `{k[:40]}`."
            for k in params
            if report_unknown and k not in self._by_key and k not in known_elsewhere
        ]
        if "preset" in params and "preset" in self._by_key:
            preset = parse_value(self._by_key["preset"], params["preset"], notices)
            if preset != "custom":
                self.apply_preset(preset)
        for k, raw in params.items():
            if k in self._by_key and k != "preset":
                self[k] = parse_value(self._by_key[k], raw, notices)
        return notices

    def url_params(self) -> dict[str, str]:
        return {
            k: _fmt(v)
            for k, v in self.values().items()
            if not (self._by_key[k].omit_default and v == self._by_key[k].default)
        }


def _same(a: Any, b: Any) -> bool:
    """Equal values, with a list and a tuple of the same items counted as the same (multiselects)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return tuple(a) == tuple(b)
    return a == b


def _legal(f: Field, value: Any) -> bool:
    """Whether a widget's value may enter the model: a cleared choice (None) or an off-grid value may not."""
    if value is None:
        return False
    if f.kind == "choice" and f.choices and not isinstance(f.default, (list, tuple)):
        return value in f.choices
    return True


def sync_url(*states: PageState) -> dict[str, str]:
    """Write every state's values to the URL (only if something changed); return them."""
    wanted: dict[str, str] = {}
    for s in states:
        wanted.update(s.url_params())
    current = {k: st.query_params.get(k) for k in st.query_params}
    if current != wanted:
        st.query_params.from_dict(wanted)
    return wanted


def share_url(params: Mapping[str, str]) -> str:
    """The full link to this view, for the "share" box."""
    base = ""
    try:
        base = (st.context.url or "").split("?", 1)[0]
    except Exception:  # noqa: BLE001 - no browser context (tests, scripts)
        base = ""
    return f"{base}?{urlencode(params)}"
