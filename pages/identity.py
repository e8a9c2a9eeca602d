"""Who is using this browser tab: the name SpanLab records on imports, label changes, runs and deletions.

Not a page (app.py lists the pages explicitly). In order: the signed-in OIDC user (``st.user``, when the server
has ``[auth]`` configured), the password sign-in's user (``st.session_state["signed_in_user"]``), else the name
typed into the sidebar (remembered for the tab; "anonymous" until one is typed).
"""
from __future__ import annotations

import logging

import streamlit as st

log = logging.getLogger(__name__)

SIGNED_IN_KEY = "signed_in_user"  # set by the password sign-in
NAME_KEY = "identity_name"        # the sidebar's name box
CHOSEN_KEY = "identity_chosen"    # the name typed there, kept for the tab even on runs that do not draw the box
ANONYMOUS = "anonymous"


def _oidc_user() -> str | None:
    """The name (else the email) of the user signed in through st.login, or None."""
    try:
        user = st.user
        if not user.get("is_logged_in"):
            return None
        name = user.get("name") or user.get("email")
    except Exception as error:  # no auth configured, or an older/odd user object: not signed in that way
        log.debug("st.user not usable: %s", error)
        return None
    return str(name).strip() or None if name else None


def signed_in_name() -> str | None:
    """The name from a sign-in (OIDC or password), or None when nobody signed in."""
    signed_in = st.session_state.get(SIGNED_IN_KEY)
    return _oidc_user() or (str(signed_in).strip() or None if signed_in else None)


def current_user() -> str:
    """The person using this tab: signed-in name, else the name typed in the sidebar, else "anonymous"."""
    typed = " ".join(str(st.session_state.get(CHOSEN_KEY) or st.session_state.get(NAME_KEY) or "").split())
    return signed_in_name() or typed or ANONYMOUS


def sidebar() -> None:
    """Show who this tab acts as; without a sign-in, a box to type one's name (kept for the tab)."""
    name = signed_in_name()
    if name:
        st.caption(f"Signed in as **{_plain(name)}**")
        return
    if NAME_KEY not in st.session_state and st.session_state.get(CHOSEN_KEY):
        st.session_state[NAME_KEY] = st.session_state[CHOSEN_KEY]  # Streamlit forgets a box some run did not draw
    st.text_input("Your name", key=NAME_KEY, placeholder=ANONYMOUS, max_chars=100, on_change=_remember,
                  help="Recorded with your imports, label changes, runs and deletions, so teammates see who did "
                       "what; undo reverts only your own changes.")
    if current_user() == ANONYMOUS:
        st.caption(f"Working as **{ANONYMOUS}**: type your name so others see who changed what.")


def _remember() -> None:
    st.session_state[CHOSEN_KEY] = " ".join(str(st.session_state.get(NAME_KEY) or "").split())


def _plain(text: str) -> str:
    """``text`` shown as plain text inside Markdown (a user-supplied name)."""
    from pages.common import plain
    return plain(text)
