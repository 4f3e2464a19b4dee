"""TRPO Workbench dashboard: `streamlit run app.py`.

`streamlit run` finds `app` below (a `st.App`, Streamlit's ASGI app) and serves the dashboard
script pages/navigation.py with it, with .streamlit/config.toml as usual.
"""

import streamlit as st

app = st.App("pages/navigation.py")
