"""Multi-device BN: coming soon."""

import streamlit as st

st.title("Multi-device BN")
st.info("This page is being built. Nothing here is simulated, so it stays empty until the real experiment is ready.")
