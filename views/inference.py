"""Train vs Inference: running statistics, the train/eval switch, classic BN bugs, and BN folding."""

import streamlit as st

from ui import common, widgets
from ui import inference as ui

INTRO = """
In **train mode** a BN layer normalizes with the statistics of the current batch (μ_B, σ²_B) and
updates an exponential moving average of them. In **eval mode** it normalizes with that average
(`running_mean`, `running_var`), so each example's output no longer depends on its batch-mates.
Below, a real network is trained on handwritten digits and every number comes from it.
"""

with common.page(ui.STATE, "🔁 Train vs Inference", INTRO):
    ui.controls()
    cfg = ui.config()
    view = common.run(ui.overview, cfg, label="Training the network…")
    if view is None:
        common.halt()
    if view["diverged_at"] is not None:
        st.error(f"Training {view['status']}: the loss became NaN or infinite. Lower the learning rate.")
        common.halt()
    st.caption(view["caption"])

    st.subheader("1 · Running statistics: an exponential moving average")
    for tex in ui.ema_latex(cfg.momentum):
        st.latex(tex)
    layer, j = ui.unit_controls()
    st.vega_lite_chart(ui.ema_spec(cfg, layer, j), width="stretch")
    final, bessel, unit_csv = ui.unit_view(cfg, layer, j)
    st.markdown(ui.ema_sentence(final, layer, j))
    st.caption(view["ema_caption"])
    left, right = st.columns(2)
    left.markdown(ui.momentum_sentence(cfg.momentum))
    left.dataframe(ui.MOMENTUM_FRAME, hide_index=True)
    widgets.number(ui.STATE, "keras", "Converter: a Keras momentum", step=0.01, where=right, format="%.3f")
    right.markdown(ui.keras_sentence(float(ui.STATE["keras"])))
    tex, text = ui.bessel_latex(bessel, cfg.width, layer)
    st.markdown("**Biased vs unbiased variance.** The forward pass divides by m; the EMA stores σ²_B · m/(m−1):")
    st.latex(tex)
    st.markdown(text)
    common.download_csv(unit_csv, f"running_stats_layer{layer}_unit{j}.csv", "⬇️ Statistics (CSV)")

    st.subheader("2 · Same batch, two modes")
    st.latex(
        r"y_{\rm train} = \gamma\,\frac{x-\mu_\mathcal{B}}{\sqrt{\sigma^2_\mathcal{B}+\epsilon}}+\beta"
        r"\qquad\qquad y_{\rm eval} = \gamma\,\frac{x-\texttt{running\_mean}}{\sqrt{\texttt{running\_var}+\epsilon}}"
        r"+\beta"
    )
    widgets.grid_slider(ui.STATE, "n", "Test images fed through the layer", fmt="{:.0f}")
    n = int(ui.STATE["n"])
    tm = common.run(ui.modes_view, cfg, n, layer, j, label="Feeding the batch…")
    if tm is not None:
        for impl, text in tm["errors"].items():
            st.warning(f"Train mode with a batch of 1 ({impl}):\n\n`{text}`")
        st.vega_lite_chart(ui.modes_spec(cfg, n, layer), width="stretch")
        if not tm["errors"]:
            st.markdown(tm["sentence"])
            st.markdown(f"**Why they differ**, for unit {j}: the two modes normalize with different numbers.")
            st.dataframe(tm["why"], hide_index=True, column_config=ui.number_columns(tm["why"], "%.5f"))
    size_spec, step_spec = ui.gap_specs(cfg, layer)
    a, b = st.columns(2)
    a.vega_lite_chart(size_spec, width="stretch")
    b.vega_lite_chart(step_spec, width="stretch")
    st.markdown(view["gap"][layer])

    st.subheader("3 · Misconception labs")
    widgets.choice(ui.STATE, "lab", "Lab", style="segmented", fmt=ui.LABS.get)
    lab = ui.STATE["lab"]
    st.markdown(ui.LAB_TEXT[lab])
    lab_frame = ui.LAB_RENDERERS[lab](cfg)
    if lab_frame is not None:
        common.download_csv(lab_frame, f"lab_{lab}.csv", "⬇️ This lab's numbers (CSV)")

    st.subheader("4 · BN folding for deployment")
    st.latex(
        r"W' = \frac{\gamma}{\sigma}\,W, \qquad b' = \frac{\gamma\,(b-\texttt{running\_mean})}{\sigma}+\beta,"
        r"\qquad \sigma = \sqrt{\texttt{running\_var}+\epsilon}"
    )
    widgets.choice(ui.STATE, "fold", "Network", style="radio", fmt=ui.FOLD_NAMES.get)
    fold = common.run(ui.fold_view, cfg, ui.STATE["fold"], label="Folding and timing…")
    if fold is not None:
        st.markdown(fold[0])
        st.vega_lite_chart(ui.fold_spec(cfg, ui.STATE["fold"]), width="stretch")
        st.dataframe(fold[1], hide_index=True, column_config=ui.FOLD_COLUMNS)
    st.caption(ui.FOLD_NOTE)

    common.takeaway(
        "Train mode normalizes with the batch and updates an EMA; eval mode uses that EMA. Call `model.eval()` "
        "to predict, keep BN in eval mode when fine-tuning a frozen backbone, and recompute the statistics "
        "(precise BN, AdaBN) when the EMA is stale or the data has moved."
    )
    common.try_this(*ui.TRY_THIS)
    st.markdown("**Check yourself**")
    for question, answer in ui.QUESTIONS:
        st.markdown(question)
        with st.expander("Answer"):
            st.markdown(answer)
