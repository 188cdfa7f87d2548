"""Normalization Steps: Algorithm 1 on a real batch, one step at a time."""

import streamlit as st

from ui import common, quiz, widgets
from ui import steps as ui

INTRO = """
Batch normalization computes, **for each feature separately**, the mean and variance
of the current mini-batch, normalizes with them, then scales by γ and shifts by β.
Pick a batch (synthetic, or your own CSV), follow one feature and one example, and
watch every step with the real numbers substituted.
"""

with common.page(ui.STATE, "Normalization Steps", INTRO):
    with common.section("1 · The batch"):
        csv, parsed = ui.data_source()
        if parsed is not None:
            common.show_issues(parsed.issues)
    if ui.STATE["source"] != "synthetic" and (parsed is None or not parsed.ok):
        common.halt()
    columns = parsed.columns if parsed is not None else tuple(f"f{k}" for k in range(ui.STATE["C"]))
    n_rows = parsed.values.shape[0] if parsed is not None else ui.STATE["N"]
    j, i = ui.fit_lists(len(columns), n_rows)

    with common.section("2 · Controls"):
        ui.feature_controls(columns, synthetic=csv is None)
        ui.bn_controls()
        cfg = ui.config(csv, len(columns))
        result = common.run(ui.compute, cfg, label="Normalizing…")
        tables = ui.tables(cfg, i) if result is not None else None

    with common.section(f"3 · The four steps for feature `{columns[j]}`, example {i}"):
        common.need(result)
        for tex in ui.step_equations(result, j, i):
            st.latex(tex)
        common.side_by_side(ui.histogram_specs(cfg))
        st.caption(ui.normalized_verdict(result, j).text)

    with common.section("4 · The whole batch"):
        common.need(result)
        common.dataframe(tables.batch, height=260, hide_index=True, column_config=tables.batch_config)
        common.dataframe(result.stats, hide_index=True, column_config=tables.stats)
        common.download_csv(result.table, "batchnorm_steps.csv", "Download the table (CSV)", icon=":material/download:")

    with common.section("5 · Manual vs torch"):
        common.need(result)
        st.markdown(f"The same batch through the other backend, on `{result.device}` in `{result.dtype}`:")
        common.dataframe(result.backends, hide_index=True, column_config=tables.backends)

    with common.section("6 · Which values share a mean and variance?"):
        widgets.number(ui.STATE, "G", "Groups G for group norm (must divide C = 6)")
        if 6 % ui.STATE["G"] != 0:
            st.warning(f"G = {ui.STATE['G']} does not divide C = 6 channels, so group norm is left out.")
        norms_specs, norms_summary = ui.norms_panel()
        common.side_by_side(norms_specs)
        common.dataframe(norms_summary)

    with common.section("7 · Backward: the hand-written gradient vs autograd"):
        common.need(result)
        st.markdown("For L = Σ w·y with random w (so ∂L/∂y = w), both hand-written backwards against autograd:")
        st.latex(ui.BACKWARD_TEX)
        left, right = st.columns(2)
        common.dataframe(result.backward, where=left, hide_index=True, column_config=tables.backward)
        common.dataframe(result.grads, where=right, hide_index=True, column_config=tables.grads)

    common.takeaway(
        "BN makes each feature's batch mean 0 and variance 1 (as long as σ²_B is large next to ε), then γ and β "
        "give the network back any scale and shift it wants, including the identity."
    )
    common.try_this(*ui.TRY_THIS)
    if result is not None:
        ui.undo_button(result, j)
        quiz.check_yourself("steps", ui.questions(result, j, i))
