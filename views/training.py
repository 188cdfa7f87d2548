"""Training Comparison: the same network trained with and without BN; Ioffe & Szegedy Fig. 1, live."""

import streamlit as st

from ui import common, quiz
from ui import training as ui

INTRO = """
Two copies of the same network start from **identical weights** and see **the same batches**; one has batch
norm in every hidden layer, the other has none. Both are really trained here (or come from the cache), so
every curve below is a measurement. The default is Ioffe & Szegedy's Fig. 1: 3 hidden layers of 100 sigmoid
units, batch 60, plain SGD, on 8×8 handwritten digits. The presets switch to the paper's other claims.
"""

with common.page(ui.STATE, "Training Comparison", INTRO):
    cfg = ui.controls()
    result = common.run(ui.compute, cfg, label="Training BN and no norm…")
    view = ui.view_settings()
    shown = (cfg, view.target, view.layer, view.band)  # the key of every view of this result

    with common.section("1 · Loss and accuracy"):
        common.need(result)
        curves = ui.curves(*shown)
        for note in curves.notes:
            st.warning(note, icon=":material/warning:")
        common.side_by_side((curves.loss, curves.accuracy))
        st.markdown(curves.speed)
        st.caption(curves.caption)

    with common.section("2 · The layer input over training (Fig. 1 b, c)"):
        st.markdown(ui.BANDS_INTRO)
        ui.layer_controls(cfg)
        common.need(result)
        bands = ui.bands(*shown)
        common.side_by_side(bands.charts)
        st.markdown(bands.drift)

    with common.section("3 · Every layer's distribution at chosen steps"):
        ui.hist_controls(cfg)
        common.need(result)
        common.side_by_side(ui.hist_specs(cfg, view.snaps, view.quantity))
        st.caption(ui.HIST_CAPTION)

    with common.section("4 · Gradients and saturation per layer"):
        common.need(result)
        layers = ui.layers(*shown)
        common.side_by_side(layers.grads)
        common.side_by_side(layers.saturation)
        st.markdown(layers.text)
        st.caption(ui.LAYERS_CAPTION)
        common.dataframe(layers.table, hide_index=True, column_config=ui.SUMMARY_COLUMNS)
        common.download_csv(
            ui.run_csv(cfg), "training_comparison.csv", "Download every record (CSV)", icon=":material/download:"
        )

    with common.section("5 · Grids over many networks"):
        st.markdown(
            "One run can be lucky. The grids below train many networks at once with the stacked sweep engine "
            f"(seeds {cfg.seed}, {cfg.seed + 1}, … from the global seed), the small-scale version of the paper's "
            "ImageNet table: final accuracy, and steps to the target accuracy. ✕ marks diverged runs."
        )
        with st.expander("Grid settings"):
            ui.grid_settings()
        for tab, axis in ui.grid_tabs():
            with tab:
                if tab.open is not False:  # lazy tabs: only the open one is built
                    ui.render_grid(axis, cfg, view.target)

    with common.section("6 · Manual BN vs torch BN"):
        st.markdown(ui.BACKEND_INTRO)
        ui.render_backend_check(cfg)

    if result is not None:
        common.takeaway(ui.report(*shown).takeaway.text)
    common.try_this(
        "Pick **Higher learning rate ×5**: which net still learns? Then try ×30 and compare.",
        "Pick **Bad initialization** and switch the histogram to *activation output*.",
        "Pick **Deep sigmoid net, 10 layers** and compare the gradient norms of layer 1 with and without BN.",
        "Set the batch size to 1: BN cannot train on one example, and the page says why next to the other net.",
        "Set the learning rate to 1000 with a ReLU net: if a run diverges, the page says at which step.",
    )
    if result is not None:
        quiz.check_yourself("training", ui.check_questions(*shown))
