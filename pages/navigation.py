"""The dashboard's script (app.py serves it): declares the pages and runs the selected one.

Streamlit runs this file for every session and rerun. It sits in pages/ with the pages, so
Streamlit's legacy "pages/ folder next to the main script" mode never applies and a link
straight to a page works on a fresh server. Nothing here starts threads or opens files; the
pages read the run store and ask the one process-wide training registry (pages/common.py) to
start or stop runs.
"""

import streamlit as st

from trpo.replay import configure_headless_rendering

# MuJoCo reads MUJOCO_GL when it is first imported (the catalog's env checks import it), so the
# server sets its rendering variables before any page runs; the Replay page renders headless.
configure_headless_rendering()
st.set_page_config(page_title="TRPO Workbench", layout="wide")

navigation = st.navigation(
    [
        st.Page("train.py", title="Train", icon=":material/play_circle:", default=True),
        st.Page("runs.py", title="Runs", icon=":material/table_chart:"),
        st.Page("trust_region.py", title="Trust region", icon=":material/target:"),
        st.Page("sweeps.py", title="Sweeps", icon=":material/tune:"),
        st.Page("replay.py", title="Replay", icon=":material/movie:"),
        st.Page("how_trpo_works.py", title="How TRPO works", icon=":material/school:"),
    ]
)
navigation.run()
