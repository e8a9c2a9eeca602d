"""SpanLab: turn a spreadsheet of text into a working SpanBERT model in an afternoon.

Entrypoint: `streamlit run app.py --server.fileWatcherType none`. Each page is a short script in pages/ that
calls into core/. Heavy libraries (torch, transformers) load only when a page needs them.
Before any page runs, pages.auth decides who may see what: the sign-in page for a shared server, only the Demo page
in demo mode, every page otherwise (README: "Running SpanLab for a team").
"""
import streamlit as st

from pages import auth, identity, notices

st.set_page_config(page_title="SpanLab", page_icon="🧪", layout="wide")

access = auth.gate()  # stops here with the sign-in page until this tab may use the app
navigation = auth.navigation(access)  # in demo mode only the Demo page, whatever the address asks for
with st.sidebar:
    st.caption("SpanLab · fine-tune SpanBERT on your own labeled text")
    if access.user is not None:
        auth.account_box(access)  # signed in: that name is the identity
    elif access.demo_runs is None:
        identity.sidebar()  # sign-in off: the name typed here
if access.demo_runs is None:
    notices.announce_run_end()  # this tab's run ended: say how, on whatever page it is
navigation.run()
