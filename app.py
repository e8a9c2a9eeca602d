"""SpanLab: turn a spreadsheet of text into a working SpanBERT model in an afternoon.

Entrypoint: `streamlit run app.py --server.fileWatcherType none`. Each page is a short script in pages/ that
calls into core/. Heavy libraries (torch, transformers) load only when a page needs them.
"""
import streamlit as st

from pages import identity, notices

st.set_page_config(page_title="SpanLab", page_icon="🧪", layout="wide")

PAGES = [
    st.Page("pages/data.py", title="Data", icon="📄", default=True),
    st.Page("pages/label.py", title="Label", icon="🏷️"),
    st.Page("pages/train.py", title="Train", icon="🚀"),
    st.Page("pages/runs.py", title="Runs", icon="📈"),
    st.Page("pages/demo.py", title="Demo", icon="🎤"),
]

navigation = st.navigation(PAGES)
with st.sidebar:
    st.caption("SpanLab · fine-tune SpanBERT on your own labeled text")
    identity.sidebar()
notices.announce_run_end()  # this tab's run ended: say how, on whatever page it is
navigation.run()
