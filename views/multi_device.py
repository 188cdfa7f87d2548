"""Multi-device BN: per-replica vs synchronized batch statistics, on real torch.distributed workers."""

import streamlit as st

from ui import common, widgets
from ui import multi_device as ui

INTRO = """
Data-parallel training gives each device (**rank**) a shard of every batch. Plain BN then
normalizes with the statistics of that shard alone: **b images per replica**, not the
global W·b. That is why Wu & He (2018) plot BN's error against *images per GPU*.
**Synchronized BN** all-reduces each channel's count, Σx and Σx², so every rank
normalizes with the global μ_B and σ²_B. Below, W real worker processes (`torch.distributed`,
gloo on the CPU) train the digits MLP with per-replica BN, synchronized BN and group norm,
step by step side by side.
"""

with common.page(ui.STATE, "🌐 Multi-device BN", INTRO):
    ui.controls()
    cfg = ui.stats_config()
    result = common.run(ui.compute_stats, cfg, label="Starting the worker processes…")
    if result is None:
        common.halt()
    W = ui.STATE["W"]
    if result.cpu_count < W:
        st.warning(f"{W} ranks on {result.cpu_count} cores: ranks take turns, and every all-reduce waits for them.")

    st.subheader("1 · Each rank's batch statistics")
    widgets.choice(ui.STATE, "layer", "BN layer", style="radio")
    layer = ui.STATE["layer"]
    st.vega_lite_chart(ui.stats_spec(cfg, layer))
    st.markdown(ui.stats_sentence(result, layer, W))
    st.caption(
        "Unit 0 of the layer. Rank 0 is drawn wide, the others thin: with synchronized BN they lie on top of "
        "each other. Dashed: all ranks' examples pooled, which is exactly what synchronized BN normalizes with. "
        "Click a rank in the legend to highlight it."
    )

    st.subheader("2 · Synchronized BN is BN of the global batch")
    st.latex(
        r"\mu_\mathcal{B} = \frac{\sum_r \sum_{i \in r} x_i}{\sum_r m_r}, \qquad "
        r"\sigma^2_\mathcal{B} = \frac{\sum_r \sum_{i \in r} x_i^2}{\sum_r m_r} - \mu_\mathcal{B}^2, \qquad "
        r"\frac{\partial L}{\partial x_i} = \frac{\gamma}{M\sqrt{\sigma^2_\mathcal{B}+\epsilon}}"
        r"\Big(M\,\frac{\partial L}{\partial y_i} - \sum_{\rm all} \frac{\partial L}{\partial y}"
        r" - \hat{x}_i \sum_{\rm all} \frac{\partial L}{\partial y}\hat{x}\Big)"
    )
    per_rank = result.check_per_rank
    st.markdown(
        f"The same random float64 batch, split over the {W} ranks ({per_rank} examples each), through the "
        f"hand-written synchronized BN, vs one process running `ManualBatchNorm` on all {W * per_rank} "
        "examples. Largest absolute differences:"
    )
    st.dataframe(ui.equivalence_table(result).style.format("{:.1e}"))
    if result.torch_sync_note:
        st.caption(
            f"Why hand-written: on this machine `nn.SyncBatchNorm` said *{result.torch_sync_note}*. "
            "On CUDA the workers use NCCL and also train `nn.SyncBatchNorm` beside it."
        )

    st.subheader("3 · Accuracy vs images per replica")
    ui.sweep_controls()
    if ui.STATE["sweep"]:
        sweep_cfg = ui.sweep_config()
        sweep = common.run(ui.compute_sweep, sweep_cfg, label="Training 4 sizes × 3 variants…")
        if sweep is not None:
            st.vega_lite_chart(ui.sweep_spec(sweep_cfg), width="stretch")
            st.markdown(ui.sweep_sentence(sweep))
            st.dataframe(ui.sweep_table(sweep).style.format(precision=3).format("{:.4f}", subset=["lr"]))
            st.caption(ui.SWEEP_NOTE)
            common.download_csv(sweep.accuracy, "multi_device_sweep.csv", "⬇️ Download the accuracies (CSV)")
    else:
        st.info(
            "Turn on the sweep to train 4 sizes × 3 variants per seed on real workers (a progress bar shows how far)."
        )

    st.subheader("4 · What synchronizing costs")
    left, right = st.columns(2)
    volume_spec, time_spec = ui.cost_specs(cfg)
    left.vega_lite_chart(volume_spec, width="stretch")
    right.vega_lite_chart(time_spec, width="stretch")
    st.markdown(ui.cost_sentence(result))
    st.markdown(
        "**When is it worth it?** When each device holds only a few images: detection and segmentation "
        "train on large images, 1–2 per GPU, and per-replica BN then normalizes with a handful of "
        "samples. With 32 images per device the shard's statistics are already good and the extra "
        "round trips buy little; group norm avoids the question by never looking across examples."
    )
    common.download_csv(result.stats, "multi_device_stats.csv", "⬇️ Download every rank's statistics (CSV)")

    common.takeaway(
        "Per-replica BN normalizes with the shard's statistics, so its noise grows as images per device "
        "shrink. Synchronized BN restores the global batch's statistics exactly, for two small all-reduces per "
        "BN layer and step."
    )
    common.try_this(
        "Pick the *Detection-like* preset: 2 images per replica. Watch the ranks' σ²_B scatter, then run the sweep.",
        "Set 32 images per replica: the per-replica curves move close together and the overhead buys little.",
        "Try 4 ranks on this 2-core machine: synchronized steps slow down more than per-replica ones.",
    )
