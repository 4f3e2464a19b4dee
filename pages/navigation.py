"""TRPO Workbench dashboard: `streamlit run app.py`.

The entry script only declares the pages (files in pages/) and runs the selected one. Nothing
here starts threads or opens files; the pages read the run store and ask the one process-wide
training registry (pages/common.py) to start or stop runs.
"""

import streamlit as st

st.set_page_config(page_title="TRPO Workbench", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/train.py", title="Train", icon=":material/play_circle:", default=True),
        st.Page("pages/runs.py", title="Runs", icon=":material/table_chart:"),
        st.Page("pages/trust_region.py", title="Trust region", icon=":material/target:"),
        st.Page("pages/sweeps.py", title="Sweeps", icon=":material/tune:"),
        st.Page("pages/replay.py", title="Replay", icon=":material/movie:"),
        st.Page("pages/how_trpo_works.py", title="How TRPO works", icon=":material/school:"),
    ]
)
navigation.run()
