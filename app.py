"""BatchNorm Lab: the router. Run with ``streamlit run app.py``.

The thread count is set before torch is imported anywhere (see README, "Threads").
"""

import gc
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import streamlit as st

from ui import present, sidebar


@st.cache_resource
def _start_process() -> dict:
    """Once per server process: torch threads and allocator settings, and no results persisted by older code."""
    from streamlit.file_util import get_streamlit_file_path

    from bn_core.device import tune_cpu_runtime
    from ui.prepare import drop_stale_disk_cache

    drop_stale_disk_cache(Path(get_streamlit_file_path("cache")))
    return tune_cpu_runtime()


@st.cache_resource
def _freeze_what_is_loaded() -> int:
    """Once per server process, after its first page: move every object that exists (torch, pandas,
    Streamlit, the page modules: ~400,000) out of the garbage collector's sight. A full collection
    otherwise walks them all, ~0.2 s holding the GIL, and under 30 sessions one ran in the middle
    of their reruns. No collection first: it took those 0.2 s inside the first view of a fresh
    server, to free about 200 objects. Returns how many objects were frozen."""
    gc.freeze()
    return gc.get_freeze_count()


presenting = st.query_params.get("present") in ("1", "true")  # the presenter view starts with the sidebar closed
st.set_page_config(
    page_title="BatchNorm Lab",
    page_icon=":material/science:",
    layout="wide",
    initial_sidebar_state="collapsed" if presenting else "auto",
)
present.base_css()
current = st.navigation(sidebar.router_pages(), position="sidebar")  # the menu: one message, not a link each
sidebar.start_workers_for(current.url_path)  # before torch is imported: a fork server imports it beside us
_start_process()
for notice in sidebar.render():
    st.warning(notice, icon=":material/link:")
current.run()
_freeze_what_is_loaded()
