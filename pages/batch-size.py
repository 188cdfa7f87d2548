"""Deep-link shim for /batch-size: not a page. Runs the router (app.py), which shows the real page.

Why it exists: with page files in pages/, the first run of a fresh server process is in
Streamlit's legacy "pages directory" mode, which looks the URL up among the file stems
in pages/. A deep link such as /batch-size as the very first request would otherwise get a
"page not found" dialog (seen in Chromium); this file makes the lookup succeed and hands
over to st.navigation. tests/e2e/test_browser.py checks it on a fresh server.
"""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "app.py"))
