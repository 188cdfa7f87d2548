"""Streamlit and Altair glue between the pages and bn_core (page → ui → bn_core)."""
