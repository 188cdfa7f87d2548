"""Why BN Works: four explanations of batch norm, each turned into an experiment you can run and judge."""

import streamlit as st

from ui import common, quiz, widgets
from ui import why as ui
from ui.why import debate, ics, jacobian, landscape, noisy, scale
from ui.why import quiz as why_quiz

DOWNLOAD = ":material/download:"

with common.page(ui.STATE, "Why BN Works", ui.INTRO):
    widgets.preset_picker(ui.STATE, "Preset (sets controls in one or more tabs)")
    tab_noisy, tab_ics, tab_land, tab_scale, tab_jac = ui.tabs()

    with tab_noisy, common.section("1 · Noisy BN: does BN need stable layer inputs?"):
        if tab_noisy.open is not False:
            st.markdown(noisy.TEXT)
            cfg = noisy.controls()
            result = common.run(noisy.compute, cfg, label="Training no norm, BN and noisy BN…")
            common.need(result)
            ui.render_divergence(result.outcomes)
            left, right = st.columns(2)
            common.chart(noisy.specs(cfg).accuracy, where=left)
            common.chart(noisy.specs(cfg).loss, where=right)
            layer, view = noisy.view_controls()
            common.chart(noisy.dist_spec(cfg, layer, view))
            st.caption(noisy.DIST_CAPTION)
            panel = noisy.panel(cfg, layer, view)
            st.markdown(f"{panel.view.training.text} {panel.view.stability.text}")
            common.dataframe(panel.table, hide_index=True, column_config=noisy.COLUMNS)
            common.download_csv(panel.csv, "why_noisy_bn_layers.csv", "Download the layer records (CSV)", icon=DOWNLOAD)
            common.takeaway(panel.view.takeaway.text)
            common.try_this(*noisy.TRY)

    with tab_ics, common.section("2 · Internal covariate shift, measured"):
        if tab_ics.open is not False:
            st.markdown(ics.TEXT)
            st.latex(ics.LATEX)
            cfg = ics.controls()
            if ui.run_button("ics_run", "Train both nets and measure ICS"):
                result = common.run(ics.compute, cfg, label="Training and measuring G, G′…")
                common.need(result)
                ui.render_divergence((result.summary.plain, result.summary.bn))
                left, right = st.columns(2)
                common.chart(ics.specs(cfg).cos, where=left)
                common.chart(ics.specs(cfg).l2, where=right)
                st.markdown(result.verdicts.measured.text)
                common.download_csv(result.ics, "why_ics.csv", "Download the ICS records (CSV)", icon=DOWNLOAD)
                common.takeaway(result.verdicts.takeaway.text)
            common.try_this(*ics.TRY)

    with tab_land, common.section("3 · The loss landscape along the gradient"):
        if tab_land.open is not False:
            st.markdown(landscape.TEXT)
            cfg = landscape.controls()
            if ui.run_button("land_run", "Train both nets and probe the landscape"):
                result = common.run(landscape.compute, cfg, label="Training and probing the landscape…")
                common.need(result)
                ui.render_divergence((result.summary.plain, result.summary.bn))
                common.side_by_side(landscape.specs(cfg))
                st.markdown(result.verdicts.measured.text)
                common.download_csv(result.probes, "why_landscape.csv", "Download every probe (CSV)", icon=DOWNLOAD)
                common.takeaway(result.verdicts.takeaway.text)
            common.try_this(*landscape.TRY)

    with tab_scale, common.section("4 · Scale invariance of a Linear → BN layer"):
        if tab_scale.open is not False:
            st.markdown(scale.TEXT)
            st.latex(scale.LATEX)
            cfg = scale.controls()
            common.need(common.run(scale.compute, cfg, label="Scaling the weights…"))
            checks = scale.panel(cfg)
            common.dataframe(checks.table, hide_index=True, column_config=scale.ERROR_COLUMNS)
            st.markdown(f"{checks.identities.text} {checks.turn.text}")
            common.chart(scale.spec(cfg))

    with tab_scale, common.section("5 · What it does to the learning rate"):
        if tab_scale.open is not False:
            st.markdown(scale.TRAINING_TEXT)
            noisy_cfg = noisy.config()
            common.need(common.run(noisy.compute, noisy_cfg, label="Training the BN net…"))
            trained = scale.training(noisy_cfg)
            left, right = st.columns(2)
            common.chart(trained.norm_spec, where=left)
            common.chart(trained.turn_spec, where=right)
            common.takeaway(trained.verdict.text)
            common.try_this(*scale.TRY)

    with tab_jac, common.section("6 · Layer Jacobians at initialization"):
        if tab_jac.open is not False:
            st.markdown(jacobian.TEXT)
            cfg = jacobian.controls()
            result = common.run(jacobian.compute, cfg, label="Jacobians and their singular values…")
            common.need(result)
            charts = jacobian.specs(cfg, jacobian.layer_control(cfg))
            common.chart(charts.bands)
            left, right = st.columns(2)
            common.chart(charts.histogram, where=left)
            common.chart(charts.grads, where=right)
            st.markdown(f"{result.verdicts.singular_values.text} {result.verdicts.gradient.text}")
            common.takeaway(result.verdicts.takeaway.text)
            common.try_this(*jacobian.TRY)

    st.divider()
    with common.section("7 · Where the debate stands"):
        for verdict in debate.summary().verdicts:
            st.markdown(f"- {verdict.text}")
        st.caption(debate.CLOSING)

    with common.section():
        quiz.check_yourself(why_quiz.PAGE_ID, why_quiz.questions())
