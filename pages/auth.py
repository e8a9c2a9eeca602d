"""Who may use this server, and what they see: sign-in for a shared server, and the read-only demo mode.

A module used by app.py and the pages, not a page. Settings (README, "Running SpanLab for a team"):

- ``[auth]`` in ``.streamlit/secrets.toml``: Streamlit's OpenID Connect sign-in (``st.login`` / ``st.user``) with the
  team's identity provider; optionally ``[spanlab] allowed_emails`` (addresses, or ``@domain`` entries).
- ``[spanlab.passwords]``: ``name = "pbkdf2_sha256$..."`` lines printed by ``python -m core hash-password``, for a
  team without an identity provider. Only hashes are stored; checks are constant-time.
- Neither: no sign-in (local use; the app listens on localhost only).
- Demo mode: ``SPANLAB_DEMO_RUNS=3,5`` (environment) or ``[spanlab] demo_runs = [3, 5]`` makes the whole server a
  read-only Demo of those runs; ``[spanlab] demo_users`` names people who only ever get that Demo; ``?demo=3,5`` in
  the address turns this browser tab into the Demo of those runs (until the tab is reloaded without it).

The gate runs before any page (app.py) and again at the top of every page script (``require``), because Streamlit runs
a page script on its own when a server's very first request names it (its pages/ folder convention), before app.py
has chosen the pages. Whoever may not see a page gets the sign-in form or a refusal, never the page (nor Streamlit's
list of the pages/ files).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import streamlit as st

from pages.common import plain

log = logging.getLogger(__name__)

SIGNED_IN_KEY = "signed_in_user"  # the signed-in person's name (identity code reads it, or st.user)
DEMO_KEY = "demo_runs"            # the run ids this browser tab demos (set from ?demo=...)
DEMO_PAGE = "demo"
PASSWORD_USER_KEY = "_password_user"  # who signed in with a password in this tab (never set from st.user)
DEMO_LINK_PROBLEM_KEY = "demo_link_problem"
FAILED_SIGN_IN_DELAY_S = 1.0


@dataclass
class Settings:
    """The sign-in and demo settings of this server."""
    oidc_providers: list[str | None] = field(default_factory=list)  # None = the unnamed [auth] provider
    passwords: dict[str, str] = field(default_factory=dict)
    allowed_emails: list[str] = field(default_factory=list)
    demo_runs: list[int] | None = None   # the server-wide demo
    demo_users: list[str] = field(default_factory=list)
    problem: str | None = None           # a broken setting: nobody gets in until it is fixed

    @property
    def sign_in_required(self) -> bool:
        return bool(self.oidc_providers or self.passwords or self.problem)


@dataclass
class Access:
    """What this browser tab may do now."""
    user: str | None                 # who signed in (None: sign-in is off, or nobody yet)
    signed_in: bool                  # may use the app (True when sign-in is off)
    demo_runs: list[int] | None      # not None: only the Demo page, only these runs


def parse_run_ids(value) -> list[int]:
    """'3,5' / [3, 5] / 3 as run ids; raises ValueError naming the bad part."""
    parts = value if isinstance(value, (list, tuple)) else str(value).replace(" ", ",").split(",")
    ids = []
    for part in parts:
        text = str(part).strip()
        if not text:
            continue
        if not text.isdigit():
            raise ValueError(f"'{text}' is not a run id (give run numbers, e.g. 3,5)")
        ids.append(int(text))
    return list(dict.fromkeys(ids))


def _secrets() -> tuple[dict, str | None]:
    """The secrets as a dict ({} when there is no secrets file), and a problem when the file cannot be read."""
    from streamlit.errors import StreamlitSecretNotFoundError
    try:
        return st.secrets.to_dict(), None
    except StreamlitSecretNotFoundError as exc:
        if getattr(exc, "error_id", None) == "no-secrets-found":
            return {}, None
        return {}, f"The secrets file cannot be read ({exc}). Fix .streamlit/secrets.toml and restart the server."


def settings() -> Settings:
    secrets, problem = _secrets()
    result = Settings(problem=problem)
    auth = secrets.get("auth") or {}
    if auth:
        named = [name for name, value in auth.items() if isinstance(value, dict)]
        result.oidc_providers = ([None] if "client_id" in auth else []) + named
        if not result.oidc_providers:
            result.problem = "[auth] in secrets.toml names no identity provider (client_id, or an [auth.NAME] table)."
    spanlab = secrets.get("spanlab") or {}
    result.passwords = {str(name): str(value) for name, value in (spanlab.get("passwords") or {}).items()}
    result.allowed_emails = [str(item).strip().lower() for item in spanlab.get("allowed_emails") or []]
    result.demo_users = [str(item).strip().casefold() for item in spanlab.get("demo_users") or []]
    from core.passwords import PasswordSettingError, check_stored
    for name, stored in result.passwords.items():
        try:
            check_stored(stored)
        except PasswordSettingError as exc:  # the name goes to the server's log only, not to the sign-in page
            log.error("secrets.toml [spanlab.passwords] %s: %s", name, exc)
            result.problem = f"an entry of [spanlab.passwords] is unusable ({exc}); the server's log names it."
    demo = os.environ.get("SPANLAB_DEMO_RUNS", "").strip() or spanlab.get("demo_runs")
    if demo not in (None, "", []):
        try:
            result.demo_runs = parse_run_ids(demo)
        except ValueError as exc:
            result.problem = f"SPANLAB_DEMO_RUNS / [spanlab] demo_runs: {exc}."
    return result


# --------------------------------------------------------------------------------------------------- identity

def _email_allowed(email: str, allowed: list[str]) -> bool:
    if not allowed:
        return True
    email = email.strip().lower()
    return any(email == item or (item.startswith("@") and email.endswith(item)) for item in allowed)


def _oidc_user(config: Settings) -> tuple[str | None, str | None]:
    """(name, refusal) of the person signed in through the identity provider."""
    if not config.oidc_providers:
        return None, None
    user = st.user
    if not user.get("is_logged_in"):
        return None, None
    email = str(user.get("email") or "")
    if not _email_allowed(email, config.allowed_emails):
        return None, f"{plain(email) or 'This account'} is not allowed on this server. Ask whoever runs it to add you."
    return str(user.get("name") or email or user.get("sub") or "signed-in user"), None


def current_access(config: Settings | None = None) -> Access:
    """Who this tab is and what it may see, from the settings, the sign-in and the address."""
    config = config or settings()
    user, signed_in = None, not config.sign_in_required
    if config.sign_in_required and not config.problem:
        oidc_name, _ = _oidc_user(config)
        password_name = st.session_state.get(PASSWORD_USER_KEY)
        if password_name not in config.passwords:  # password sign-in is off, or this name was removed meanwhile
            password_name = None
        user = oidc_name or password_name
        signed_in = user is not None
        if signed_in:
            st.session_state[SIGNED_IN_KEY] = user
        else:
            st.session_state.pop(SIGNED_IN_KEY, None)
    demo = config.demo_runs
    if user is not None and user.casefold() in config.demo_users:
        demo = config.demo_runs or []
    if demo is None:
        demo = _tab_demo_runs()
    return Access(user=user, signed_in=signed_in, demo_runs=demo)


def _tab_demo_runs() -> list[int] | None:
    """The runs of ``?demo=...`` in the address; once set, this tab stays in demo mode."""
    if "demo" in st.query_params:
        try:
            st.session_state[DEMO_KEY] = parse_run_ids(st.query_params.get("demo"))
            st.session_state.pop(DEMO_LINK_PROBLEM_KEY, None)
        except ValueError as exc:
            st.session_state[DEMO_KEY] = []
            st.session_state[DEMO_LINK_PROBLEM_KEY] = f"This demo link is broken: {exc}."
    return st.session_state.get(DEMO_KEY)


# --------------------------------------------------------------------------------------------------- sign-in

@st.cache_resource
def _throttle():
    """One brake on password guessing per server process, shared by every browser tab."""
    from core.passwords import SignInThrottle
    return SignInThrottle()


def _password_sign_in(config: Settings) -> None:
    from core.passwords import check_sign_in
    with st.form("sign_in", enter_to_submit=True):
        name = st.text_input("Name", key="sign_in_name", autocomplete="username")
        password = st.text_input("Password", type="password", key="sign_in_password",
                                 autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    throttle = _throttle()
    wait = throttle.wait_s(name)
    if wait > 0:  # the same answer for every name, known or not
        st.error(f"Too many failed sign-ins for this name: try again in {max(1, round(wait / 60))} minute(s).")
        return
    person = check_sign_in(name, password, config.passwords)
    if person is None:
        throttle.failed(name)
        log.warning("failed sign-in for name %r", name[:60])
        time.sleep(FAILED_SIGN_IN_DELAY_S)  # slows guessing down (on top of the hash's own cost)
        st.error("Wrong name or password.")
        return
    throttle.succeeded(name)
    st.session_state[PASSWORD_USER_KEY] = person
    st.session_state[SIGNED_IN_KEY] = person
    log.info("%s signed in", person)
    st.rerun()


def _oidc_sign_in(config: Settings) -> None:
    from streamlit.auth_util import is_authlib_installed
    if not is_authlib_installed():
        st.error("Sign-in with the identity provider needs the Authlib package on the server: "
                 "pip install -r requirements.txt, then restart.")
        return
    for provider in config.oidc_providers:
        title = f"Sign in with {provider}" if provider else "Sign in with your organisation's account"
        if st.button(title, key=f"sign_in_oidc_{provider or 'default'}", type="primary"):
            if provider:
                st.login(provider)
            else:
                st.login()


def sign_in_page() -> None:
    """The only page of a tab that has not signed in yet."""
    config = settings()
    st.title("SpanLab")
    if config.problem:
        st.error(f"Sign-in is misconfigured, so nobody can sign in: {config.problem}")
        return
    _, refusal = _oidc_user(config)
    if refusal:
        st.error(refusal)
        st.button("Sign out", key="sign_out_refused", on_click=st.logout)
        return
    st.caption("This SpanLab server is shared: sign in to continue.")
    if config.oidc_providers:
        _oidc_sign_in(config)
    if config.passwords:
        if config.oidc_providers:
            st.caption("Or with a SpanLab name and password:")
        _password_sign_in(config)


def _sign_out(oidc: bool) -> None:
    for key in (SIGNED_IN_KEY, PASSWORD_USER_KEY, DEMO_KEY):
        st.session_state.pop(key, None)
    if oidc:
        st.logout()


def account_box(access: Access) -> None:
    """Sidebar: who is signed in, and Sign out."""
    if access.user is None:
        return
    oidc = bool(st.user.get("is_logged_in")) if settings().oidc_providers else False
    st.caption(f"Signed in as {plain(access.user)}")
    st.button("Sign out", key="sign_out", on_click=_sign_out, args=(oidc,))


# --------------------------------------------------------------------------------------------------- the gate

def gate() -> Access:
    """app.py calls this before any page: a tab that must sign in gets only the sign-in form (whatever the address,
    no page runs and none is listed) and the run stops here; otherwise the tab's access is returned."""
    access = current_access()
    if not access.signed_in:
        _hidden_navigation()
        sign_in_page()
        st.stop()
    return access


APP_PAGES = [  # (script, title, icon), in the order of the sidebar; the first is the start page
    ("pages/data.py", "Data", "📄"),
    ("pages/label.py", "Label", "🏷️"),
    ("pages/train.py", "Train", "🚀"),
    ("pages/runs.py", "Runs", "📈"),
    ("pages/demo.py", "Demo", "🎤"),
]


def navigation(access: Access):
    """The navigation this tab may use (st.navigation): every page, or in demo mode only the Demo page (hidden
    sidebar), so that no address leads anywhere else."""
    if access.demo_runs is not None:
        return st.navigation([st.Page("pages/demo.py", title="Demo", icon="🎤", default=True)], position="hidden")
    return st.navigation([st.Page(script, title=title, icon=icon, default=index == 0)
                          for index, (script, title, icon) in enumerate(APP_PAGES)])


def _hidden_navigation() -> None:
    """Every page known (so that no "page not found" dialog covers the sign-in form, whatever the address) and none
    listed; the caller draws what this tab may see instead of running the page, and stops."""
    st.navigation([st.Page(script, title=title, default=index == 0) for index, (script, title, _) in
                   enumerate(APP_PAGES)], position="hidden")


def _in_pages_folder_mode() -> bool:
    """Whether Streamlit ran this page script on its own, as it does (its pages/ folder convention, listing every
    file in pages/ in the sidebar) when a fresh server's first request names a page, before any run of app.py."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a later Streamlit without the folder convention
        return False
    return bool(getattr(PagesManager, "uses_pages_directory", False))


def require(page: str) -> Access:
    """The first line of every page script: stop here unless this tab may see ``page`` ("data", "demo", ...)."""
    access = current_access()
    restricted = not access.signed_in or (access.demo_runs is not None and page != DEMO_PAGE)
    if restricted and _in_pages_folder_mode():  # no listing of the pages/ files beside the refusal
        _hidden_navigation()
    if not access.signed_in:
        sign_in_page()
        st.stop()
    if access.demo_runs is not None and page != DEMO_PAGE:
        st.error("This SpanLab is in demo mode: only the Demo page is available.")
        st.stop()
    return access
