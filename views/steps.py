"""Normalization Steps: Algorithm 1 on a real batch, one step at a time."""

import streamlit as st

from ui import common, widgets
from ui import steps as ui

INTRO = """
Batch normalization computes, **for each feature separately**, the mean and variance
of the current mini-batch, normalizes with them, then scales by γ and shifts by β.
Pick a batch (synthetic, or your own CSV), follow one feature and one example, and
watch every step with the real numbers substituted.
"""

with common.page(ui.STATE, "🔢 Normalization Steps", INTRO):
    st.subheader("1 · The batch")
    csv, parsed = ui.data_source()
    if parsed is not None:
        common.show_issues(parsed.issues)
    if ui.STATE["source"] != "synthetic" and (parsed is None or not parsed.ok):
        common.halt()
    columns = parsed.columns if parsed is not None else tuple(f"f{k}" for k in range(ui.STATE["C"]))
    n_rows = parsed.values.shape[0] if parsed is not None else ui.STATE["N"]
    ui.fit_lists(len(columns), n_rows)

    st.subheader("2 · Controls")
    ui.feature_controls(columns, synthetic=csv is None)
    ui.bn_controls()
    cfg = ui.config(csv, len(columns))
    result = common.run(ui.compute, cfg, label="Normalizing…")
    if result is None:
        common.halt()
    j, i = ui.STATE["j"], ui.STATE["i"]

    st.subheader(f"3 · The four steps for feature `{columns[j]}`, example {i}")
    for tex in ui.step_equations(result, j, i, ui.STATE["eps"]):
        st.latex(tex)
    st.vega_lite_chart(ui.histogram_spec(cfg), width="stretch")
    st.caption("Whatever the input's location and spread, x̂ has mean 0 and variance ≈ 1; y then has mean β, std |γ|.")

    st.subheader("4 · The whole batch")
    st.dataframe(ui.marked_table(result, i), height=260, hide_index=True, column_config=ui.table_config(result))
    st.dataframe(result.stats, hide_index=True)
    common.download_csv(result.table, "batchnorm_steps.csv", "⬇️ Download the table (CSV)")

    st.subheader("5 · Manual vs torch")
    st.markdown(f"The same batch through the other backend, on `{result.device}` in `{result.dtype}`:")
    st.dataframe(result.backends, hide_index=True)

    st.subheader("6 · Which values share a mean and variance?")
    widgets.number(ui.STATE, "G", "Groups G for group norm (must divide C = 6)")
    if 6 % ui.STATE["G"] != 0:
        st.warning(f"G = {ui.STATE['G']} does not divide C = 6 channels, so group norm is left out.")
    norms_spec, norms_summary = ui.norms_panel()
    st.vega_lite_chart(norms_spec)
    st.dataframe(norms_summary)

    st.subheader("7 · Backward: the hand-written gradient vs autograd")
    st.markdown("For L = Σ w·y with random w (so ∂L/∂y = w), both hand-written backwards against autograd:")
    st.latex(
        r"\frac{\partial L}{\partial x_i} = \frac{\gamma}{m\sqrt{\sigma^2_\mathcal{B}+\epsilon}}"
        r"\left(m\,\frac{\partial L}{\partial y_i} - \sum_k \frac{\partial L}{\partial y_k}"
        r" - \hat{x}_i \sum_k \frac{\partial L}{\partial y_k}\hat{x}_k\right)"
    )
    left, right = st.columns(2)
    left.dataframe(result.backward, hide_index=True)
    right.dataframe(result.grads, hide_index=True)

    common.takeaway(
        "BN makes each feature's batch mean 0 and variance 1, then γ and β give the network back "
        "any scale and shift it wants, including the identity."
    )
    stats = result.stats.iloc[j]
    common.try_this(
        "Set the feature's scale to 0.001 and ε to 1e-5: the variance is now smaller than ε, so x̂ no longer has "
        "variance 1. Slide ε down and watch it recover.",
        "Press **γ ← σ_B, β ← μ_B** below: the output y equals the input x again. BN can undo itself.",
        "Switch the distribution to *heavy outliers*: one extreme value drags μ_B and inflates σ²_B for everyone.",
    )
    st.button(
        "γ ← σ_B, β ← μ_B (for this feature)",
        on_click=ui.set_feature_values,
        args=({"gamma": stats.sigma_B, "beta": stats.mu_B},),
    )
