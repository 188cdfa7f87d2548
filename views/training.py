"""Training Comparison: the same network trained with and without BN; Ioffe & Szegedy Fig. 1, live."""

import streamlit as st

from ui import common
from ui import training as ui

INTRO = """
Two copies of the same network start from **identical weights** and see **the same batches**; one has batch
norm in every hidden layer, the other has none. Both are really trained here (or come from the cache), so
every curve below is a measurement. The default is Ioffe & Szegedy's Fig. 1: 3 hidden layers of 100 sigmoid
units, batch 60, plain SGD, on 8×8 handwritten digits. The presets switch to the paper's other claims.
"""

with common.page(ui.STATE, "📈 Training Comparison", INTRO):
    cfg = ui.controls()
    result = common.run(ui.compute, cfg, label="Training BN and no-BN…")
    # no st.stop(): the link must still be written back after an error (common.page syncs it at the end)
    if result is not None:
        ui.divergence_warnings(result)
        ui.fit_view(cfg)
        target, layer, which = float(ui.STATE["target"]), int(ui.STATE["layer"]), ui.STATE["band"]
        table, speed, drift, layer_text = ui.texts(cfg, target, layer, which)

        st.subheader("1 · Loss and accuracy")
        loss_spec, acc_spec = ui.curve_specs(cfg, target)
        left, right = st.columns(2)
        left.vega_lite_chart(loss_spec, width="stretch")
        right.vega_lite_chart(acc_spec, width="stretch")
        st.markdown(speed)
        st.caption(
            "Accuracy is measured in eval mode (BN uses its running statistics) on the held-out test set and on 256 "
            "fixed training examples. Click a legend entry to highlight it; hover for the numbers."
        )

        st.subheader("2 · The layer input over training (Fig. 1 b, c)")
        st.markdown(
            "Ioffe & Szegedy's *internal covariate shift*: while the layers below learn, the distribution of a "
            "layer's input keeps moving. The band is the 15–85 % range of one layer's input to its nonlinearity on "
            "a fixed batch of 128 training examples, the line its median."
        )
        ui.layer_controls(cfg)
        st.vega_lite_chart(ui.bands_spec(cfg, layer, which))
        st.markdown(drift)

        st.subheader("3 · Every layer's distribution at chosen steps")
        snaps, quantity = ui.hist_controls(cfg)
        st.vega_lite_chart(ui.hist_spec(cfg, snaps, quantity))
        st.caption(
            "Rows: BN and no BN; columns: hidden layers; colours: steps. Each panel has its own x range. "
            "For a sigmoid net, *activation output* shows saturation directly: mass piled at 0 and 1."
        )

        st.subheader("4 · Gradients and saturation per layer")
        grad_spec, sat_spec = ui.layer_specs(cfg)
        st.vega_lite_chart(grad_spec)
        st.vega_lite_chart(sat_spec)
        st.markdown(layer_text)
        st.caption(
            "Top: the norm of each hidden layer's weight gradient, per step, on that step's batch. Bottom: the share "
            "of saturated sigmoid/tanh outputs (below 0.05 or above 0.95; |a| > 0.95 for tanh), or of ReLU outputs "
            "that are exactly 0, on the fixed probe batch. Click a layer in the legend to highlight it."
        )

        st.dataframe(table, hide_index=True, column_config=ui.SUMMARY_COLUMNS)
        common.download_csv(ui.run_csv(cfg), "training_comparison.csv", "⬇️ Download every record (CSV)")

        st.subheader("5 · Grids over many networks")
        st.markdown(
            "One run can be lucky. The grids below train many networks at once with the batched sweep engine "
            f"(seeds {cfg.seed}, {cfg.seed + 1}, … from the global seed), the small-scale version of the paper's "
            "ImageNet table: final accuracy, and steps to the target accuracy. ✕ marks diverged runs."
        )
        with st.expander("Grid settings"):
            ui.grid_settings()
        tabs = st.tabs(["Learning rate", "Init scale", "Depth"])
        for tab, axis in zip(tabs, ("lr", "init_scale", "depth"), strict=True):
            with tab:
                ui.grid_section(axis, cfg)

        st.subheader("6 · Manual BN vs torch BN")
        st.markdown(
            "The BN net above trains with the hand-written BN (`bn_core.layers.ManualBatchNorm`, whose gradient is the "
            "staged backward of Algorithm 1) unless you pick the torch backend. Train it with both, from the same "
            "weights on the same batches, and compare every record."
        )
        ui.backend_section(cfg)

        common.takeaway(
            "With BN each layer's input keeps a stable distribution, so the same learning rate makes faster progress, "
            "much larger learning rates still train, a bad initialization hardly matters, sigmoids saturate less, "
            "and deep sigmoid nets that do not train at all without BN become trainable."
        )
        common.try_this(
            "Pick **Higher learning rate ×5**: which net still learns? Then try ×30 and compare.",
            "Pick **Bad initialization** and switch the histogram to *activation output*.",
            "Pick **Deep sigmoid net, 10 layers** and compare the gradient norms of layer 1 with and without BN.",
            "Set the learning rate to 1000 with a ReLU net: a run diverges and the page says at which step.",
        )
