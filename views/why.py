"""Why BN Works: four explanations of batch norm, each turned into an experiment you can run and judge."""

import streamlit as st

from ui import common, widgets
from ui import why as ui

INTRO = """
Why does batch norm help? **Ioffe & Szegedy (2015)** said: it reduces *internal covariate shift* (ICS), the
drift of each layer's input distribution while the layers below it learn. **Santurkar et al. (2018)** tested
that story and rejected it: BN helps, they argue, because it makes the loss landscape *smoother*, so
gradients stay predictive and larger steps are safe. Two more claims circulate: BN makes a layer
*scale-invariant*, and it keeps the layer Jacobian's singular values near 1. None of these is settled by
authority. Each tab below turns one claim into an experiment on real networks (digits, trained here) and
prints what this run measured. Judge for yourself; the global seed in the sidebar reruns everything.
"""

with common.page(ui.STATE, "🧭 Why BN Works", INTRO):
    widgets.preset_picker(ui.STATE, "Preset (sets controls in one or more tabs)")
    noisy, ics, land, scale, jac = ui.tabs()

    with noisy:
        if noisy.open is not False:
            st.markdown(ui.TEXT["noisy"])
            cfg = ui.noisy_controls()
            result = common.run(ui.compute_noisy, cfg, label="Training no BN, BN and noisy BN…")
            if result is not None:
                ui.status_warnings(result.status)
                acc_spec, loss_spec = ui.noisy_specs(cfg)
                left, right = st.columns(2)
                left.vega_lite_chart(acc_spec, width="stretch")
                right.vega_lite_chart(loss_spec, width="stretch")
                layer, view = ui.view_controls()
                st.vega_lite_chart(ui.dist_spec(cfg, layer, view))
                st.caption(ui.TEXT["noisy_dist"])
                verdict, table, csv = ui.noisy_view(cfg, layer, view)
                st.markdown(verdict)
                st.dataframe(table, hide_index=True, column_config=ui.PERCENT_COLUMNS)
                common.download_csv(csv, "why_noisy_bn_layers.csv", "⬇️ Download the layer records (CSV)")
                common.takeaway(ui.TAKEAWAY["noisy"])
                common.try_this(*ui.TRY["noisy"])

    with ics:
        if ics.open is not False:
            st.markdown(ui.TEXT["ics"])
            st.latex(ui.ICS_LATEX)
            cfg = ui.ics_controls()
            if ui.run_button("ics_run", "▶ Train both nets and measure ICS"):
                result = common.run(ui.compute_ics, cfg, label="Training and measuring G, G′…")
                if result is not None:
                    ui.status_warnings(result.status)
                    cos_spec, l2_spec = ui.ics_specs(cfg)
                    left, right = st.columns(2)
                    left.vega_lite_chart(cos_spec, width="stretch")
                    right.vega_lite_chart(l2_spec, width="stretch")
                    st.markdown(ui.ics_verdict(result))
                    common.download_csv(result.ics, "why_ics.csv", "⬇️ Download the ICS records (CSV)")
                    common.takeaway(ui.TAKEAWAY["ics"])
            common.try_this(*ui.TRY["ics"])

    with land:
        if land.open is not False:
            st.markdown(ui.TEXT["landscape"])
            cfg = ui.landscape_controls()
            if ui.run_button("land_run", "▶ Train both nets and probe the landscape"):
                result = common.run(ui.compute_landscape, cfg, label="Training and probing the landscape…")
                if result is not None:
                    ui.status_warnings(result.status)
                    for column, spec in zip(st.columns(3), ui.landscape_specs(cfg), strict=True):
                        column.vega_lite_chart(spec, width="stretch")
                    st.markdown(ui.landscape_verdict(result))
                    common.download_csv(result.probes, "why_landscape.csv", "⬇️ Download every probe (CSV)")
                    common.takeaway(ui.TAKEAWAY["landscape"])
            common.try_this(*ui.TRY["landscape"])

    with scale:
        if scale.open is not False:
            st.markdown(ui.TEXT["scale"])
            st.latex(ui.SCALE_LATEX)
            cfg = ui.scale_controls()
            result = common.run(ui.compute_scale, cfg, label="Scaling the weights…")
            if result is not None:
                st.dataframe(ui.scale_table(result, cfg.alpha), hide_index=True, column_config=ui.ERROR_COLUMNS)
                st.markdown(ui.scale_sentence(result, cfg.alpha, cfg.eps))
                st.vega_lite_chart(ui.scale_spec(cfg), width="stretch")
            st.markdown(ui.TEXT["scale_training"])
            noisy_cfg = ui.noisy_config()
            trained = common.run(ui.compute_noisy, noisy_cfg, label="Training the BN net…")
            if trained is not None:
                left, right = st.columns(2)
                norm_spec, turn_spec = ui.weight_specs(noisy_cfg)
                left.vega_lite_chart(norm_spec, width="stretch")
                right.vega_lite_chart(turn_spec, width="stretch")
                st.markdown(ui.weight_sentence(trained))
            common.takeaway(ui.TAKEAWAY["scale"])
            common.try_this(*ui.TRY["scale"])

    with jac:
        if jac.open is not False:
            st.markdown(ui.TEXT["jacobian"])
            cfg = ui.jacobian_controls()
            result = common.run(ui.compute_jacobian, cfg, label="Jacobians and their singular values…")
            if result is not None:
                layer = ui.jacobian_layer(cfg)
                band_spec, hist_spec, grad_spec = ui.jacobian_specs(cfg, layer)
                st.vega_lite_chart(band_spec, width="stretch")
                left, right = st.columns(2)
                left.vega_lite_chart(hist_spec, width="stretch")
                right.vega_lite_chart(grad_spec, width="stretch")
                st.markdown(ui.jacobian_verdict(result, cfg))
                common.takeaway(ui.TAKEAWAY["jacobian"])
            common.try_this(*ui.TRY["jacobian"])

    st.divider()
    st.markdown(ui.TEXT["debate"])
