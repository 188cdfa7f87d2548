"""Landing page: what the lab is, the four equations, and the lesson plan."""

import streamlit as st

from ui import prepare
from ui import welcome as ui
from ui.sidebar import seed

st.title("BatchNorm Lab")
st.markdown(ui.INTRO)
ui.equations()
st.subheader("Lesson plan")
ui.lesson_plan()
st.subheader("What makes it real")
st.markdown(ui.REAL)
st.subheader("Prepare this class")
prepare.render_panel(seed())
