"""Train vs Inference page in AppTest: every control group, presets, extremes, bad links, URL round trip,
a batch of 1 that keeps the other sections, the lab choice's fallback, and the check-yourself questions."""

from __future__ import annotations

import re

import pytest

from tests.helpers import alerts, assert_clean, charts, open_page

PAGE = "views/inference.py"
TORCH_BATCH_ERROR = "Expected more than 1 value per channel when training"


def _markdown(at, phrase: str) -> str:
    return next(m.value for m in at.markdown if phrase in m.value)


def _caption(at, phrase: str) -> str:
    return next(c.value for c in at.caption if phrase in c.value)


def _code(at) -> str:
    return " ".join(c.value for c in at.code)


def _numbers(at) -> tuple[str, ...]:
    """The computed sentences that pin down a view: the run, the EMA, the Bessel check, the two modes."""
    phrases = ("After the last step", "Over the second half", "The same", "Batch 2 →")
    return (_caption(at, "Trained for real"), *(_markdown(at, p) for p in phrases))


@pytest.fixture(scope="module")
def default_page():
    at = open_page(PAGE)
    assert_clean(at)
    return at


def test_default_view_shows_every_section(default_page):
    at = default_page
    assert not alerts(at, "error")
    assert len(charts(at)) == 6  # EMA, two-mode histograms, gap vs batch, gap vs step, lab, folding
    titles = [h.value for h in at.subheader]
    assert titles[:4] == ["1 · Running statistics: an exponential moving average", "2 · Same batch, two modes",
                          "3 · Misconception labs", "4 · BN folding for deployment"]  # fmt: skip
    latex = " ".join(el.value for el in at.latex)
    assert r"\texttt{running\_mean} \leftarrow (1 - \texttt{momentum})" in latex
    assert r"\texttt{running\_var}+\epsilon" in latex and r"W' = \frac{\gamma}{\sigma}" in latex
    assert r"\frac{32}{31}" in latex  # Bessel's factor with this run's m
    assert TORCH_BATCH_ERROR in _code(at)  # lab 1 shows torch's real error text
    assert any(w.startswith("Verdict: predicting one example") for w in alerts(at, "warning"))
    assert "**98.2 %** test accuracy" in _caption(at, "Trained for real")
    assert "PyTorch momentum 0.1 = Keras momentum 0.9" in _markdown(at, "PyTorch momentum 0.1")
    fold = _markdown(at, "folded away")
    assert "The folded net computes the same function" in fold and "than torch's BN for one image" in fold
    assert len(at.get("download_button")) == 2
    fifth = [w for w in [*at.number_input, *at.radio] if str(w.label).startswith("**5.**")]
    assert "Check yourself" in titles and len(fifth) == 1
    assert at.query_params["m"] == "0.1" and at.query_params["lab"] == "eval" and at.query_params["steps"] == "300"


def test_layer_feature_and_converter_controls(default_page):
    at = default_page
    at.radio(key="inference:layer").set_value(2).run()
    at.slider(key="inference:j").set_value(63).run()
    at.number_input(key="inference:keras").set_value(0.9).run()
    assert_clean(at)
    assert "unit 63 of layer 2" in _markdown(at, "After the last step")
    assert "Keras momentum **0.9** = PyTorch momentum **0.1**" in _markdown(at, "Keras momentum **0.9**")
    assert at.query_params["layer"] == "2" and at.query_params["j"] == "63"
    for extreme in (0.0, 0.999):
        at.number_input(key="inference:keras").set_value(extreme).run()
        assert_clean(at)
    assert "PyTorch momentum **0.001**" in _markdown(at, "Keras momentum **0.999**")


def test_batch_fed_in_both_modes_including_one(default_page):
    at = default_page
    at.select_slider(key="inference:n").set_value(1.0).run()
    assert_clean(at)
    warnings = " ".join(alerts(at, "warning"))
    assert "Train mode with a batch of 1" in warnings and TORCH_BATCH_ERROR in warnings
    at.select_slider(key="inference:n").set_value(450.0).run()
    assert_clean(at)
    assert "The same 450 test images" in _markdown(at, "The same 450")
    assert at.query_params["n"] == "450"


@pytest.mark.parametrize("lab", ["val", "finetune", "shift"])
def test_each_lab_runs_on_the_trained_net_with_a_verdict(default_page, lab):
    at = default_page
    at.button_group(key="inference:lab").set_value(lab).run()
    assert_clean(at)
    verdicts = [w for w in alerts(at, "warning") if w.startswith("Verdict")]
    assert len(verdicts) == 1
    expected = {"val": "reported", "finetune": "requires_grad=False", "shift": "AdaBN won back **100%**"}[lab]
    assert expected in verdicts[0]
    assert len(charts(at)) == 6 and at.query_params["lab"] == lab


def test_domain_shift_extremes(default_page):
    at = default_page
    at.button_group(key="inference:lab").set_value("shift").run()
    for a, b, noise in ((-1.0, -1.0, 0.0), (3.0, 1.0, 1.0)):
        at.slider(key="inference:a").set_value(a)
        at.slider(key="inference:b").set_value(b)
        at.slider(key="inference:noise").set_value(noise).run()
        assert_clean(at)
        assert any(w.startswith("Verdict: the shift cost") for w in alerts(at, "warning"))
    assert at.query_params["a"] == "3" and at.query_params["noise"] == "1"


def test_preset_switch_retrains_with_keras_momentum():
    at = open_page(PAGE)
    at.selectbox(key="inference:preset").set_value("Keras default 0.99 (= PyTorch 0.01)").run()
    assert_clean(at)
    assert at.query_params["m"] == "0.01" and at.query_params["preset"].startswith("Keras")
    assert "momentum 0.01" in _caption(at, "Trained for real")
    assert "ln 2 / m = **69.31** steps" in _markdown(at, "PyTorch momentum 0.01")


def test_cumulative_average_momentum_none_round_trips():
    at = open_page(PAGE, query={"m": "None"})
    assert_clean(at)
    assert at.selectbox(key="inference:m").value == "None"
    assert r"\tfrac{1}{k}" in at.latex[0].value
    assert "momentum None (cumulative average)" in _caption(at, "Trained for real")
    assert at.query_params["m"] == "None"


def test_a_training_batch_of_one_shows_its_lesson_and_keeps_the_other_sections():
    at = open_page(PAGE, query={"B": "1"})
    assert_clean(at)
    assert not alerts(at, "error")
    lesson = next(w for w in alerts(at, "warning") if w.startswith("**Batch size B = 1"))
    assert "σ²_B = 0" in lesson and TORCH_BATCH_ERROR in lesson and "B = 2" in lesson
    assert any("Sections 2–4 use the same network trained at B = 2" in i for i in alerts(at, "info"))
    # section 1 shows the lesson instead of its chart; the two-mode, gap, lab and folding charts remain
    assert len(charts(at)) == 5
    assert "batch 2, 300 steps" in _caption(at, "Trained for real")
    assert "The same 32 test images" in _markdown(at, "The same 32")
    assert at.query_params["B"] == "1"
    at.slider(key="inference:B").set_value(32).run()  # back to a trainable batch: section 1's chart returns
    assert_clean(at)
    assert len(charts(at)) == 6 and not any(w.startswith("**Batch size") for w in alerts(at, "warning"))


def test_every_control_at_its_minimum():
    at = open_page(PAGE)
    at.slider(key="inference:steps").set_value(50)
    at.select_slider(key="inference:lr").set_value(0.01)
    at.slider(key="inference:B").set_value(2)
    at.slider(key="inference:j").set_value(0)
    at.select_slider(key="inference:n").set_value(1.0)
    at.button_group(key="inference:lab").set_value("lag").run()
    at.select_slider(key="inference:lag_lr").set_value(0.01).run()
    assert_clean(at)
    assert not alerts(at, "error")
    assert "50 steps" in _caption(at, "Trained for real")
    # both learning rates at 0.01: nothing to compare, and the verdict says so instead of claiming a lag
    assert any(w.startswith("Verdict: the comparison rate (0.01) is not above") for w in alerts(at, "warning"))


def test_every_control_at_its_maximum_including_a_huge_learning_rate():
    at = open_page(PAGE)
    at.slider(key="inference:steps").set_value(600)
    at.select_slider(key="inference:lr").set_value(10.0)
    at.slider(key="inference:B").set_value(256)
    at.radio(key="inference:layer").set_value(2)
    at.slider(key="inference:j").set_value(63)
    at.select_slider(key="inference:n").set_value(450.0).run()
    assert_clean(at)
    caption = _caption(at, "Trained for real")
    assert "lr 10" in caption and "600 steps" in caption  # BN keeps even lr 10 finite; it just stops learning
    assert len(charts(at)) == 6


def test_tampered_url_is_clamped_with_visible_notices():
    query = {"m": "0.7", "steps": "abc", "lab": "zzz", "n": "3", "j": "99", "keras": "5", "a": "-7", "bogus": "1"}
    at = open_page(PAGE, query=query)
    assert_clean(at)
    notes = " ".join(alerts(at, "warning"))
    for phrase in ("not one of", "not a finite number", "nearest value 4", "clamped to 63", "clamped to 0.999",
                   "clamped to -1", "bogus"):  # fmt: skip
        assert phrase in notes, phrase
    assert at.query_params["m"] == "0.1" and at.query_params["lab"] == "eval" and at.query_params["j"] == "63"
    assert at.query_params["steps"] == "300" and at.query_params["n"] == "4"
    assert "The same 4 test images" in _markdown(at, "The same 4")


def test_url_round_trips_to_the_same_numbers():
    # the Keras-preset run (trained above in this process, so cached) viewed at other controls
    at = open_page(PAGE, query={"m": "0.01", "layer": "2", "j": "5", "n": "8"})
    at.button_group(key="inference:lab").set_value("val").run()
    assert_clean(at)
    params = {k: at.query_params[k] for k in at.query_params}
    again = open_page(PAGE, query=params)
    assert_clean(again)
    assert _numbers(again) == _numbers(at)
    assert [w for w in alerts(again, "warning") if "Verdict" in w] == [
        w for w in alerts(at, "warning") if "Verdict" in w
    ]


@pytest.mark.slow
def test_folding_the_cnn():
    at = open_page(PAGE, query={"fold": "cnn", "steps": "50"})
    assert_clean(at)
    sentence = _markdown(at, "folded away")
    assert sentence.startswith("2 BN layers folded away") and "identical predictions on 100.0 %" in sentence
    assert at.query_params["fold"] == "cnn"


def test_a_lab_choice_of_none_falls_back_to_the_default_lab(default_page):
    """A deselected segmented control gives None in the browser: the section must show a lab, not a KeyError."""
    at = default_page
    # the page's model value, as a deselected control would leave it
    at.session_state["__model:inference"] = {**at.session_state["__model:inference"], "lab": None}
    at.run()
    assert_clean(at)
    assert not [e for e in alerts(at, "error") if "KeyError" in e or "failed" in e]
    assert any(w.startswith("Verdict: predicting one example") for w in alerts(at, "warning"))
    assert len(charts(at)) == 6
    at.button_group(key="inference:lab").set_value("eval").run()
    assert_clean(at)


def _quiz_box(at, key: str):
    return next(b for b in at.number_input if b.key and b.key.startswith(f"quiz:inference:{key}:"))


@pytest.mark.parametrize("seed", [0, 3])
def test_check_yourself_answers_come_from_the_numbers_on_the_page(seed):
    at = open_page(PAGE, query={"seed": str(seed), "steps": "50"})
    assert_clean(at)
    bessel = _quiz_box(at, "bessel").label  # the question is the answer box's label
    var_B = float(re.search(r"σ²_B = ([\d.e+-]+) \(biased", bessel).group(1))
    _quiz_box(at, "bessel").set_value(var_B * 32 / 31).run()
    assert_clean(at)
    assert sum(el.value.startswith("Right.") for el in at.success) == 1
    gap = _markdown(at, "Batch 2 → 256")
    a, b = (float(v) for v in re.search(r"\(([\d.]+) vs ([\d.]+)\)", gap).groups())
    _quiz_box(at, "gap_factor").set_value(a / b).run()
    assert sum(el.value.startswith("Right.") for el in at.success) == 2
    _quiz_box(at, "gap_factor").set_value(a / b * 1.5).run()
    assert any(el.value.startswith("Not quite.") for el in at.error)


def test_a_diverged_run_says_diverged_at_step_k_in_each_section(monkeypatch):
    """No control makes this net diverge (BN keeps even lr 10 finite), so the training data is poisoned."""
    import math

    from bn_core.data import DataConfig, DataSplit, load_dataset
    from bn_core.experiments.inference import run_inference

    clean = load_dataset(DataConfig("digits"))
    poisoned = DataSplit(**{**vars(clean), "x_train": clean.x_train.clone()})
    poisoned.x_train[:, 5] = math.inf  # every batch's loss is NaN at step 1
    monkeypatch.setattr("ui.inference.run.run_inference", lambda cfg, progress=None: run_inference(cfg, data=poisoned))
    at = open_page(PAGE, query={"seed": "97", "steps": "60"})  # a config no other test caches
    assert_clean(at)
    errors = [e for e in alerts(at, "error") if "diverged at step 1" in e]
    assert len(errors) == 4  # sections 1–4 each say it in place
    assert not charts(at) and "Check yourself" in [h.value for h in at.subheader]
    assert at.markdown and "PyTorch momentum 0.1 = Keras momentum 0.9" in _markdown(at, "PyTorch momentum 0.1")
