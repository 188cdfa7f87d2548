"""Batch-Size Sensitivity: BN's statistics are estimates from the batch; small batches make them noisy."""

import streamlit as st

from ui import batch_size as ui
from ui import common
from ui.sidebar import seed

INTRO = """
BN normalizes with μ_B and σ²_B, the mean and variance **of the current batch**: estimates of the
population's μ and σ² from m examples. Small batches make them noisy. The noise jitters every
example's x̂ from step to step, which regularizes a little, and at a few examples per batch it
hurts: training sees one normalization, inference another. Everything below is computed live.
"""

with common.page(ui.STATE, "🎲 Batch-Size Sensitivity", INTRO):
    st.subheader("1 · How noisy are μ_B and σ²_B?")
    ui.noise_controls()
    noise_cfg = ui.noise_config()
    noise = common.run(ui.compute_noise, noise_cfg, label="Sampling batches…")
    if noise is not None:
        spread_spec, jitter_spec = ui.noise_specs(noise_cfg)
        st.latex(
            r"\mathrm{std}(\mu_\mathcal{B}) = \frac{\sigma}{\sqrt{m}}, \qquad \mathrm{Var}(\sigma^2_\mathcal{B}) = "
            r"\frac{(m-1)^2}{m^3}\left(\mu_4 - \frac{m-3}{m-1}\,\sigma^4\right)"
        )
        left, right = st.columns([3, 1])
        left.vega_lite_chart(spread_spec, width="stretch")
        right.dataframe(noise.population, hide_index=True)
        st.markdown(ui.noise_sentence(noise))
        st.markdown("**The same example, in different batches.** Its x̂ across the sampled batches of each size:")
        st.vega_lite_chart(jitter_spec, width="stretch")
        st.markdown(ui.jitter_sentence(noise))
        st.caption("Whisker: 5th-95th percentile; bar: 25th-75th; tick: median; dashed: (x − μ)/σ.")
        common.download_csv(noise.ratio, "batch_noise.csv", "⬇️ Download measured vs theory (CSV)")

    st.subheader("2 · Accuracy vs batch size (Wu & He 2018, Fig. 1 in miniature)")
    st.markdown(
        "A 2-hidden-layer ReLU MLP on the 8×8 digits, trained with SGD (momentum 0.9) at every batch size B, "
        "**the same number of epochs** for each B (small batches take more steps), seeds s, s+1, … from the "
        f"global seed s = {seed()}. BN is evaluated with its running statistics (eval mode) unless stated."
    )
    ui.sweep_controls()
    cfg, remedies = ui.checked_sweep_config(), []
    if cfg is not None:
        rule = "lr × B/32 (linear scaling)" if cfg.lr_rule == "linear" else f"{cfg.lr:g} at every B (constant)"
        st.caption(f"Learning rate: **{rule}**. Change it with the learning-rate rule above.")
        if ui.is_ready(cfg, "run"):
            sweep = common.run(ui.compute_sweep, cfg, label=f"Training {ui.network_count(cfg)} networks…")
            if sweep is not None:
                for note in (*sweep.notes, *ui.divergence_notes(sweep.runs)):
                    st.warning(note)
                left, right = st.columns([3, 1])
                left.vega_lite_chart(ui.sweep_spec(cfg), width="stretch")
                right.markdown("**Wu & He 2018** (ResNet-50, ImageNet), error % vs images per GPU:")
                right.dataframe(ui.paper_table(), hide_index=True)
                st.markdown(ui.sweep_sentence(sweep))
                st.caption("Lines: mean over seeds; bars: lowest to highest seed. Click a legend entry to highlight.")
                st.dataframe(ui.sweep_table(sweep))
                common.download_csv(sweep.runs, "batch_size_sweep.csv", "⬇️ Download every run (CSV)")

                remedies = ui.remedy_sentences(sweep)
        else:
            st.info(f"{ui.network_count(cfg)} networks to train, cached for everyone once trained.")
            st.button("▶ Train the networks", on_click=ui.request, args=("run",), type="primary")

    st.subheader("3 · Remedies, each a switch on the chart above")
    st.markdown(ui.REMEDIES_TEXT)
    for sentence in remedies:
        st.markdown(f"- {sentence}")

    st.subheader("4 · A batch of one, and non-i.i.d. batches")
    one = ui.compute_one(seed())
    st.markdown("One example, train mode: what each implementation says (real caught exceptions):")
    st.table(ui.outcomes_table(one))
    st.markdown(ui.one_sentence(one))
    st.dataframe(one.functional.style.format("{:.3g}"), hide_index=True)
    st.caption(ui.ONE_NOTE)

    niid_cfg = ui.non_iid_config()
    st.markdown(ui.non_iid_text(niid_cfg))
    ui.non_iid_controls()
    if ui.is_ready(niid_cfg, "niid_run"):
        niid = common.run(ui.compute_non_iid, niid_cfg, label="Training on shuffled and class-sorted batches…")
        if niid is not None:
            st.vega_lite_chart(ui.non_iid_spec(niid_cfg))
            st.markdown(ui.non_iid_sentence(niid))
            common.download_csv(niid.runs, "non_iid.csv", "⬇️ Download the non-i.i.d. runs (CSV)")
    else:
        st.button("▶ Train on class-sorted batches", on_click=ui.request, args=("niid_run",))

    common.takeaway(
        "BN's μ_B and σ²_B are estimates whose noise shrinks only like 1/√m. At a few examples per batch the "
        "noise dominates and training and inference disagree; group and layer norm never look across examples, "
        "so the batch size does not touch them."
    )
    common.try_this(
        "Pick the *Remedies at small batches* preset and train: which remedy closes BN's gap at B = 2?",
        "Switch the population to *heavy outliers*: σ²_B gets far noisier than for a normal law (μ4 is larger).",
        "Set the learning-rate rule to *constant*: small batches now take many large steps.",
    )
