"""Multi-device BN: per-replica vs synchronized batch statistics, on real torch.distributed workers."""

import streamlit as st

from ui import common, quiz
from ui import multi_device as ui

INTRO = """
Data-parallel training gives each device (**rank**) a shard of every batch. Plain BN then
normalizes with the statistics of that shard alone: **b images per replica**, not the
global W·b. That is why Wu & He (2018) plot BN's error against *images per GPU*.
**Synchronized BN** all-reduces each channel's count, Σx and Σx², so every rank
normalizes with the global μ_B and σ²_B. Below, W real worker processes (`torch.distributed`,
gloo on the CPU) train the digits MLP with BN, sync BN and GN (group norm), step by step side by side.
"""
verdicts = ui.verdicts

with common.page(ui.STATE, "Multi-device BN", INTRO):
    ui.controls()
    cfg = ui.stats_config()
    result = common.run(ui.compute_stats, cfg, label="Starting the worker processes…")
    crowded = verdicts.oversubscribed(result) if result is not None else None
    if crowded is not None and crowded.holds:
        st.warning(crowded.text, icon=":material/memory:")

    with common.section("1 · Each rank's batch statistics"):
        layer = ui.layer_control()
        common.need(result)
        lesson = verdicts.shard_lesson(result)
        if not lesson.holds:
            st.warning(lesson.text, icon=":material/warning:")
        ui.render_stats_charts(cfg, layer)
        st.markdown(verdicts.spread_verdict(result, layer).text)
        st.caption(ui.STATS_CAPTION)

    with common.section("2 · Synchronized BN is BN of the global batch"):
        st.latex(
            r"\mu_\mathcal{B} = \frac{\sum_r \sum_{i \in r} x_i}{\sum_r m_r}, \qquad "
            r"\sigma^2_\mathcal{B} = \frac{\sum_r \sum_{i \in r} x_i^2}{\sum_r m_r} - \mu_\mathcal{B}^2, \qquad "
            r"\frac{\partial L}{\partial x_i} = \frac{\gamma}{M\sqrt{\sigma^2_\mathcal{B}+\epsilon}}"
            r"\Big(M\,\frac{\partial L}{\partial y_i} - \sum_{\rm all} \frac{\partial L}{\partial y}"
            r" - \hat{x}_i \sum_{\rm all} \frac{\partial L}{\partial y}\hat{x}\Big)"
        )
        common.need(result)
        st.markdown(verdicts.equivalence_verdict(result).text)
        table = ui.equivalence_table(result)
        common.dataframe(table, column_config=common.formats(table, "%.1e"))
        if result.torch_sync_note:
            st.caption(
                f"Why hand-written: on this machine `nn.SyncBatchNorm` said *{result.torch_sync_note}*. "
                "On CUDA the workers use NCCL and also train `nn.SyncBatchNorm` beside it."
            )

    with common.section("3 · Accuracy vs images per replica"):
        if not ui.sweep_controls():
            st.info("Turn on the sweep to train 4 sizes × 3 methods per seed on real workers (with a progress bar).")
            common.halt()
        sweep_cfg = ui.sweep_config()
        if (refusal := verdicts.sweep_refusal(sweep_cfg, result)) is not None:
            st.warning(refusal.text, icon=":material/timer:")
            common.halt()
        sweep = common.run(ui.compute_sweep, sweep_cfg, label=verdicts.sweep_estimate(sweep_cfg, result).text)
        common.need(sweep)
        common.chart(ui.replica_sweep_spec(sweep_cfg))
        st.markdown(verdicts.sweep_verdict(sweep).text)
        table = ui.replica_sweep_table(sweep)
        common.dataframe(table, column_config=common.formats(table, "%.3f", lr="%.4f"))
        st.caption(ui.SWEEP_NOTE)
        common.download_csv(
            sweep.accuracy, "multi_device_sweep.csv", "Download the accuracies (CSV)", icon=":material/download:"
        )

    with common.section("4 · What synchronizing costs"):
        common.need(result)
        volume_spec, time_spec = ui.cost_specs(cfg)
        left, right = st.columns(2)
        common.chart(volume_spec, where=left)
        common.chart(time_spec, where=right)
        st.markdown(verdicts.volume_verdict(result).text)
        st.markdown(verdicts.time_verdict(result).text)
        st.markdown(
            "**When is it worth it?** Wu & He (2018) and Peng et al. (2018) point to detection and segmentation, "
            "which train on large images with 1–2 per GPU: per-replica BN then normalizes with a handful of "
            "samples. Section 3 measures the same question here; group norm avoids it by never looking across "
            "examples."
        )
        common.download_csv(
            result.stats, "multi_device_stats.csv", "Download every rank's statistics (CSV)", icon=":material/download:"
        )

    with common.section("5 · What to take away"):
        common.need(result)
        takeaway = verdicts.conclusion(result)
        if takeaway.holds:
            common.takeaway(takeaway.text)
        else:
            st.warning(takeaway.text, icon=":material/warning:")
        common.try_this(
            "Pick the *Detection-like* preset (2 images per replica): watch the ranks' σ²_B, then run the sweep.",
            "Pick *1 image per replica*: which methods still train, and why?",
            "Try 4 ranks and compare the time per step in section 4 with the number of cores.",
        )
        quiz.check_yourself("multi_device", ui.questions(result, ui.STATE["layer"]))
