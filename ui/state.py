"""One typed table of UI state per page, with defaults, bounds and URL sync.

A page declares its controls once, as :class:`Field` rows in a :class:`PageState`.
That single table drives:

* the widgets (``ui.widgets`` reads bounds and choices from it),
* the URL: every control round-trips through ``st.query_params`` so a teacher
  can share the exact view, and a tampered link is clamped with a visible notice,
* presets (named bundles of values) and their URL key ``preset``,
* persistence across page switches (Streamlit drops widget state of pages that
  are not on screen, so the last values are kept in a shadow dict).

Precedence: on a page's first run in a session the URL wins; afterwards the
widgets do. Widgets never get ``value=``: their value lives in session state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

import streamlit as st

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
        return f"{self.page}:{name}"

    def spec(self, name: str) -> Field:
        return self._by_key[name]

    def __getitem__(self, name: str) -> Any:
        return st.session_state.get(self.key(name), self._by_key[name].default)

    def __setitem__(self, name: str, value: Any) -> None:
        st.session_state[self.key(name)] = value

    def values(self) -> dict[str, Any]:
        return {k: self[k] for k in self._by_key}

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._by_key)

    # -- presets ------------------------------------------------------------
    def apply_preset(self, name: str | None = None) -> None:
        """Set every control a preset names (usable as a widget ``on_change``)."""
        name = name or self["preset"]
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

        picked = st.session_state.get(self.key("preset"))
        if picked in self.presets and matches(picked):
            return picked
        return next((name for name in self.presets if matches(name)), "custom")

    # -- load / sync --------------------------------------------------------
    def load(self, known_elsewhere: Sequence[str] = (), report_unknown: bool = True) -> list[str]:
        """Fill session state from the URL (first run) or the shadow copy; return notices.

        Args:
            known_elsewhere: URL keys owned by another state table (the global
                seed), which must not be reported as unknown.
            report_unknown: report URL keys no table knows (off for the global
                table, which cannot know the page's keys).
        """
        loaded_flag, shadow_key = f"__loaded:{self.page}", f"__shadow:{self.page}"
        notices: list[str] = []
        if not st.session_state.get(loaded_flag):
            st.session_state[loaded_flag] = True
            notices = self._load_url(known_elsewhere, report_unknown)
        shadow = st.session_state.get(shadow_key, {})
        for k, f in self._by_key.items():
            if self.key(k) not in st.session_state:
                st.session_state[self.key(k)] = shadow.get(k, f.default)
        if self.on_load:
            self.on_load(self)
        if self.presets:
            self["preset"] = self.matching_preset()
        return notices

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
        return {k: _fmt(v) for k, v in self.values().items()}

    def remember(self) -> None:
        """Keep the current values for when the user comes back to this page."""
        st.session_state[f"__shadow:{self.page}"] = self.values()


def sync_url(*states: PageState) -> dict[str, str]:
    """Write every state's values to the URL (only if something changed); return them."""
    wanted: dict[str, str] = {}
    for s in states:
        s.remember()
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
