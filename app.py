"""SpanLab: turn a spreadsheet of text into a working SpanBERT model in an afternoon.

Entrypoint: `streamlit run app.py --server.fileWatcherType none`. Each page is a short script in pages/ that
calls into core/. Heavy libraries (torch, transformers) load only when a page needs them.
Before any page runs, pages.auth decides who may see what: the sign-in page for a shared server, only the Demo page
in demo mode, every page otherwise (README: "Running SpanLab for a team").
"""
import streamlit as st

from pages import auth

st.set_page_config(page_title="SpanLab", page_icon="🧪", layout="wide")

PAGES = [
    st.Page("pages/data.py", title="Data", icon="📄", default=True),
    st.Page("pages/label.py", title="Label", icon="🏷️"),
    st.Page("pages/train.py", title="Train", icon="🚀"),
    st.Page("pages/runs.py", title="Runs", icon="📈"),
    st.Page("pages/demo.py", title="Demo", icon="🎤"),
]

access = auth.gate()  # stops here with the sign-in page until this tab may use the app
if access.demo_runs is not None:  # read-only: the Demo page is the only page, whatever the address asks for
    navigation = st.navigation([st.Page("pages/demo.py", title="Demo", icon="🎤", default=True)], position="hidden")
else:
    navigation = st.navigation(PAGES)
with st.sidebar:
    st.caption("SpanLab · fine-tune SpanBERT on your own labeled text")
    auth.account_box(access)
navigation.run()
