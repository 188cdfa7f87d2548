"""Train vs Inference: running statistics, the train/eval switch, classic BN bugs, and BN folding."""

import streamlit as st

from ui import common, quiz, widgets
from ui import inference as ui

INTRO = """
In **train mode** a BN layer normalizes with the statistics of the current batch (μ_B, σ²_B) and
updates an exponential moving average of them. In **eval mode** it normalizes with that average
(`running_mean`, `running_var`), so each example's output no longer depends on its batch-mates.
Below, a real network is trained on handwritten digits and every number comes from it.
"""
CSV_ICON = ":material/download:"

with common.page(ui.STATE, "Train vs Inference", INTRO):
    ui.controls()
    cfg = ui.config()
    view = common.run(ui.overview, cfg, label="Training the network…")
    trained = view.trained if view is not None else cfg  # a batch of 1: the same run at B = 2
    if view is not None and view.diverged_at is None:
        st.caption(view.summary.text)
    if view is not None and view.stand_in is not None:
        st.info(view.stand_in.text, icon=":material/info:")
    layer, j = int(ui.STATE["layer"]), int(ui.STATE["j"])

    with common.section("1 · Running statistics: an exponential moving average"):
        for tex in ui.ema_latex(cfg.momentum):
            st.latex(tex)
        left, right = st.columns(2)
        left.markdown(f"{ui.momentum_verdict(cfg.momentum).text} {ui.MOMENTUM_NOTE}")
        common.dataframe(ui.MOMENTUM_FRAME, where=left, hide_index=True)
        widgets.number(ui.STATE, "keras", "Converter: a Keras momentum", step=0.01, where=right, format="%.3f")
        right.markdown(ui.keras_verdict(float(ui.STATE["keras"])).text)
        layer, j = ui.unit_controls()
        if cfg.batch_size < ui.MIN_TRAIN_BATCH:
            lesson = ui.batch_one(cfg)
            st.warning(lesson.lesson.text, icon=":material/block:")
            common.dataframe(lesson.table, hide_index=True, column_config=common.number_config(lesson.table))
            common.halt()
        ui.render_guard(view)
        common.chart(ui.ema_spec(trained, layer, j))
        unit = ui.unit_view(trained, layer, j)
        st.markdown(unit.sentence.text)
        st.caption(unit.legend)
        st.markdown("**Biased vs unbiased variance.** The forward pass divides by m; the EMA stores σ²_B · m/(m−1):")
        st.latex(ui.bessel_latex(unit.bessel))
        st.markdown(unit.bessel_text.text)
        common.download_csv(unit.csv, f"running_stats_layer{layer}_unit{j}.csv", "Statistics (CSV)", icon=CSV_ICON)

    with common.section("2 · Same batch, two modes"):
        st.latex(ui.MODES_TEX)
        widgets.grid_slider(ui.STATE, "n", "Test images fed through the layer", fmt="{:.0f}")
        n = int(ui.STATE["n"])
        gaps = ui.render_guard(view).gap(layer)
        tm = common.run(ui.modes_view, trained, n, layer, j, label="Feeding the batch…")
        common.need(tm)
        for e in tm.errors:
            st.warning(f"Train mode with a batch of 1 ({e.impl}):\n\n`{e.text}`", icon=":material/block:")
        common.chart(ui.modes_spec(trained, n, layer))
        st.markdown(tm.sentence.text)
        if tm.why is not None:
            st.markdown(f"**Why they differ**, for unit {j}: the two modes normalize with different numbers.")
            common.dataframe(tm.why, hide_index=True, column_config=common.number_config(tm.why, 5))
        gap_charts = ui.gap_specs(trained, layer)
        a, b = st.columns(2)
        common.chart(gap_charts.by_size, where=a)
        common.chart(gap_charts.by_step, where=b)
        st.markdown(f"{gaps.by_size.text} {gaps.by_step.text}")

    with common.section("3 · Misconception labs"):
        widgets.choice(ui.STATE, "lab", "Lab", style="segmented", fmt=ui.lab_label)
        lab = ui.lab_key(ui.STATE["lab"])  # never None: a deselected control falls back to the default lab
        st.markdown(ui.lab_text(lab))
        ui.render_guard(view)
        lab_frame = ui.render_selected(lab, trained)
        if lab_frame is not None:
            common.download_csv(lab_frame, f"lab_{lab}.csv", "This lab's numbers (CSV)", icon=CSV_ICON)

    with common.section("4 · BN folding for deployment"):
        st.latex(ui.FOLD_TEX)
        st.caption(ui.FOLD_NOTE)
        widgets.choice(ui.STATE, "fold", "Network", style="radio", fmt=ui.FOLD_NAMES.get)
        ui.render_guard(view)
        fold = common.run(ui.fold_view, trained, ui.STATE["fold"], label="Folding and timing…")
        common.need(fold)
        st.markdown(f"{fold.verdicts.exact.text} {fold.verdicts.speed.text}")
        common.chart(ui.fold_spec(trained, ui.STATE["fold"]))
        common.dataframe(fold.checks, hide_index=True, column_config=ui.FOLD_COLUMNS)

    common.takeaway(ui.TAKEAWAY)
    common.try_this(*ui.TRY_THIS)
    if view is not None:
        quiz.check_yourself(ui.PAGE_ID, ui.quiz_questions(trained))
