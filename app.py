"""BatchNorm Lab: the router. Run with ``streamlit run app.py``.

The thread count is set before torch is imported anywhere (see README, "Threads").
"""

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import streamlit as st

from ui import nav, present, sidebar


@st.cache_resource
def _start_process() -> dict:
    """Once per server process: torch threads and allocator settings, and no results persisted by older code."""
    from streamlit.file_util import get_streamlit_file_path

    from bn_core.device import tune_cpu_runtime
    from ui.prepare import drop_stale_disk_cache

    drop_stale_disk_cache(Path(get_streamlit_file_path("cache")))
    return tune_cpu_runtime()


presenting = st.query_params.get("present") in ("1", "true")  # the presenter view starts with the sidebar closed
st.set_page_config(
    page_title="BatchNorm Lab",
    page_icon=":material/science:",
    layout="wide",
    initial_sidebar_state="collapsed" if presenting else "auto",
)
_start_process()
present.base_css()
pages = {p.path: st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=i == 0)
         for i, p in enumerate(nav.PAGES)}  # fmt: skip
aliases = [st.Page(sidebar.hand_over(pages[path]), title=name, url_path=name, visibility="hidden")
           for name, path in nav.ALIASES.items()]  # fmt: skip
current = st.navigation([*pages.values(), *aliases], position="sidebar")  # the menu: one message, not a link each
for notice in sidebar.render():
    st.warning(notice, icon=":material/link:")
current.run()
