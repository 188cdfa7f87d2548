"""Batch-Size Sensitivity: BN's statistics are estimates from the batch; small batches make them noisy."""

import streamlit as st

from ui import batch_size as ui
from ui import common, quiz
from ui.sidebar import seed

ex = ui.experiment
INTRO = """
BN normalizes with μ_B and σ²_B, the mean and variance **of the current batch**: estimates of the
population's μ and σ² from m examples. Small batches make them noisy. The noise jitters every
example's x̂ from step to step, which regularizes a little, and at a few examples per batch it
hurts: training sees one normalization, inference another. Everything below is computed live.
"""
DOWNLOAD = ":material/download:"

with common.page(ui.STATE, "Batch-Size Sensitivity", INTRO):
    shown = ui.one_shown(seed())
    noise_cfg = ui.noise_config()
    noise = common.run(ui.compute_noise, noise_cfg, label="Sampling batches…")
    sweep = sweep_cfg = None

    with common.section("1 · How noisy are μ_B and σ²_B?"):
        ui.noise_controls()
        common.need(noise)
        told = ui.noise_told(noise_cfg)
        spread_spec, jitter_spec = ui.noise_specs(noise_cfg)
        st.latex(ui.FORMULA)
        left, right = st.columns([3, 1])
        common.chart(spread_spec, where=left)
        common.dataframe(noise.population, where=right, hide_index=True)
        st.markdown(
            f"{told.falls} {told.theory.text} {told.halving.text}\n\n"
            "**The same example, in different batches.** Its x̂ across the sampled batches of each size:"
        )
        common.chart(jitter_spec)
        st.markdown(told.jitter.text)
        st.caption(ui.JITTER_CAPTION)
        common.download_csv(noise.ratio, "batch_noise.csv", "Download measured vs theory (CSV)", icon=DOWNLOAD)

    with common.section("2 · Accuracy vs batch size (Wu & He 2018, Fig. 1 in miniature)"):
        ui.sweep_controls()
        checked = ui.checked_sweep_config()
        if checked.config is None:
            st.error(checked.error, icon=":material/warning:")
            common.halt()
        cfg, n_nets = checked.config, ex.network_count(checked.config)
        st.markdown(ui.sweep_intro(cfg))
        st.caption(ui.lr_caption(cfg))
        if not ui.wants(cfg, "run"):
            st.info(f"{n_nets} networks to train, cached for everyone once trained.")
            st.button(
                "Train the networks",
                on_click=ui.request,
                args=("run", cfg),
                type="primary",
                icon=":material/play_arrow:",
            )
            common.halt()
        sweep = common.run(ui.compute_sweep, cfg, label=f"Training {n_nets} networks…")
        common.need(sweep)
        sweep_cfg, said = cfg, ui.sweep_told(cfg)
        for note in (*sweep.notes, *sweep.divergences(), *([] if said.steps.holds else [said.steps.text])):
            st.warning(note, icon=":material/warning:")
        train_mode = bool(ui.STATE["train_eval"])
        left, right = st.columns([3, 1])
        common.chart(ui.sweep_spec(cfg, train_mode), where=left)
        right.markdown("**Wu & He 2018** (ResNet-50, ImageNet), error % vs images per GPU:")
        common.dataframe(ui.paper_table(), where=right, hide_index=True)
        st.markdown(" ".join(v.text for v in (said.bn, *said.batch_free)))
        st.caption(ui.SWEEP_CAPTION)
        common.dataframe(ui.sweep_table(sweep, train_mode))
        common.download_csv(sweep.runs, "batch_size_sweep.csv", "Download every run (CSV)", icon=DOWNLOAD)

    with common.section("3 · Remedies, each a switch on the chart above"):
        st.markdown(ui.REMEDIES_TEXT)
        common.need(sweep)
        st.markdown("\n".join(f"- {verdict.text}" for verdict in ui.sweep_told(sweep_cfg).remedies))

    with common.section("4 · A batch of one"):
        st.markdown("One example, train mode: what each implementation says (real caught exceptions):")
        common.table(shown.outcomes)
        st.markdown(shown.verdict)
        common.dataframe(shown.functional, hide_index=True, column_config=shown.functional_columns)
        st.caption(shown.note)

    with common.section("5 · Non-i.i.d. batches"):
        niid_cfg = ui.non_iid_config()
        st.markdown(ui.non_iid_text(niid_cfg))
        ui.non_iid_controls()
        if not ui.wants(niid_cfg, "niid_run"):
            st.button(
                "Train on class-sorted batches",
                on_click=ui.request,
                args=("niid_run", niid_cfg),
                icon=":material/play_arrow:",
            )
            common.halt()
        niid = common.run(ui.compute_non_iid, niid_cfg, label="Training on shuffled and class-sorted batches…")
        common.need(niid)
        common.chart(ui.non_iid_spec(niid_cfg))
        st.markdown(ex.non_iid_verdict(niid).text)
        common.download_csv(niid.runs, "non_iid.csv", "Download the non-i.i.d. runs (CSV)", icon=DOWNLOAD)

    common.takeaway(ui.closing(noise_cfg, sweep_cfg).text)
    common.try_this(
        "Pick the *Remedies at small batches* preset and train: which remedy closes BN's gap at B = 2?",
        "Switch the population to *heavy outliers*: σ²_B gets far noisier than for a normal law (μ4 is larger).",
        "Pick *Extremes: batch 1 to 1024*: which curves rise at the largest batches, and why (look at the steps)?",
    )
    if noise is not None:
        quiz.check_yourself("batch", ui.check_questions(noise_cfg, seed(), sweep_cfg))
