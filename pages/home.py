"""Landing page: what the lab is, the four equations, and the lesson plan."""

import streamlit as st

from ui import home

st.title("🧪 BatchNorm Lab")
st.markdown(home.INTRO)
home.equations()
st.subheader("Lesson plan")
home.lesson_plan()
st.subheader("What makes it real")
st.markdown(home.REAL)
