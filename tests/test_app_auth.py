"""Sign-in and demo mode (AppTest): no gate without secrets; with password secrets no page shows until the right
password, a wrong one is refused, every address leads to the sign-in page, and a page script run on its own (as
Streamlit does for a server's first request) stops too; sign-in through an identity provider (st.user); demo mode
shows only the Demo page for the chosen runs, with the run's card, whatever page is asked for."""
from __future__ import annotations

import html
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import passwords, storage
from core.training import TrainConfig, execute_run
from tests.conftest import sentiment_rows

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
ALICE_HASH = passwords.hash_password("alice-secret", iterations=2_000)
PASSWORD_SECRETS = {"spanlab": {"passwords": {"alice": ALICE_HASH}}}
OIDC_SECRETS = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                         "client_id": "spanlab", "client_secret": "s",
                         "server_metadata_url": "https://idp.example.com/.well-known/openid-configuration"},
                "spanlab": {"allowed_emails": ["@example.com"]}}


def app(secrets: dict | None = None, script: Path = APP, **query) -> AppTest:
    at = AppTest.from_file(str(script), default_timeout=60)
    if secrets:
        at.secrets = secrets
    at.query_params.update(query)
    return at


def ask_for(at: AppTest, page: str) -> AppTest:
    """Request ``page`` as a browser does by its address (/data, /label...): by the hash of its url path, whether or
    not the navigation offers it (AppTest.switch_page only switches to pages the navigation registered)."""
    from streamlit.util import calc_hash
    at._page_hash = calc_hash(page)
    at.run()
    assert not at.exception, at.exception
    return at


def titles(at: AppTest) -> list[str]:
    return [title.value for title in at.title]


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(password)
    [submit] = [button for button in at.button if button.label == "Sign in"]
    submit.click().run()
    assert not at.exception, at.exception
    return at


def test_no_secrets_no_gate(spanlab_home):
    at = app()
    at.run()
    assert not at.exception, at.exception
    assert titles(at) == ["Data"] and "signed_in_user" not in at.session_state
    at.switch_page("pages/train.py").run()
    assert titles(at) == ["Train"]


def test_password_secrets_hide_every_page_until_the_right_password(spanlab_home):
    at = app(PASSWORD_SECRETS)
    at.run()
    assert not at.exception, at.exception
    assert titles(at) == ["SpanLab"] and at.text_input(key="sign_in_password")
    sign_in(at, "alice", "wrong-password")
    assert [error.value for error in at.error] == ["Wrong name or password."]
    assert titles(at) == ["SpanLab"] and "signed_in_user" not in at.session_state
    sign_in(at, "mallory", "alice-secret")
    assert [error.value for error in at.error] == ["Wrong name or password."]

    sign_in(at, "Alice", "alice-secret")
    assert at.session_state["signed_in_user"] == "alice" and titles(at) == ["Data"]
    assert any("Signed in as alice" in caption.value for caption in at.sidebar.caption)
    [sign_out] = [button for button in at.sidebar.button if button.label == "Sign out"]
    sign_out.click().run()
    assert titles(at) == ["SpanLab"] and "signed_in_user" not in at.session_state


def test_no_address_leads_past_the_sign_in_page(spanlab_home):
    at = app(PASSWORD_SECRETS)
    at.run()
    for page in ("label", "train", "runs", "demo", "data"):
        ask_for(at, page)
        assert titles(at) == ["SpanLab"], page
    sign_in(at, "alice", "alice-secret")
    assert titles(at) == ["Data"]  # the page asked for last
    at.switch_page("pages/runs.py").run()
    assert titles(at) == ["Runs"]


def test_repeated_wrong_passwords_lock_the_name_for_a_while(spanlab_home):
    carol = {"spanlab": {"passwords": {"carol": passwords.hash_password("carol-secret", iterations=2_000)}}}
    at = app(carol)
    at.run()
    for _ in range(5):
        sign_in(at, "carol", "guess-guess")
        assert [error.value for error in at.error] == ["Wrong name or password."]
    sign_in(at, "carol", "carol-secret")  # even the right password, for now
    assert at.error[0].value.startswith("Too many failed sign-ins for this name")
    assert titles(at) == ["SpanLab"] and "signed_in_user" not in at.session_state


@pytest.mark.parametrize("page", ["data", "label", "train", "runs", "demo"])
def test_a_page_run_on_its_own_still_asks_for_sign_in(spanlab_home, page):
    """Streamlit runs pages/<page>.py without app.py when a fresh server's first request names that page."""
    at = app(PASSWORD_SECRETS, script=ROOT / "pages" / f"{page}.py")
    at.run()
    assert not at.exception, at.exception
    assert titles(at) == ["SpanLab"] and at.text_input(key="sign_in_password")


def test_a_plain_text_password_in_secrets_lets_nobody_in(spanlab_home):
    at = app({"spanlab": {"passwords": {"alice": "alice-secret"}}})
    at.run()
    assert titles(at) == ["SpanLab"]
    assert "misconfigured" in at.error[0].value and "hash-password" in at.error[0].value
    assert not at.text_input  # no form to try the plain-text password with


def test_identity_provider_sign_in(spanlab_home):
    at = app(OIDC_SECRETS)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, at.exception
    assert titles(at) == ["SpanLab"]
    from streamlit.auth_util import is_authlib_installed
    if is_authlib_installed():
        assert [b.label for b in at.button] == ["Sign in with your organisation's account"]
    else:
        assert "Authlib" in at.error[0].value

    at.user = {"is_logged_in": True, "name": "Alice Example", "email": "alice@example.com"}
    at.run()
    assert titles(at) == ["Data"] and at.session_state["signed_in_user"] == "Alice Example"

    at.user = {"is_logged_in": True, "name": "Bob", "email": "bob@elsewhere.org"}
    ask_for(at, "data")
    assert titles(at) == ["SpanLab"] and "signed_in_user" not in at.session_state
    refusal = html.unescape(at.error[0].value).replace("\u2060", "")
    assert refusal == "bob@elsewhere.org is not allowed on this server. Ask whoever runs it to add you."


# --------------------------------------------------------------------------------------------------- demo mode

@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory, tiny_model_dir):
    """Two finished classification runs (the demo shows the first only) and a dataset."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPANLAB_HOME", str(tmp_path_factory.mktemp("demo-mode-home")))
        patch.delenv("DATABASE_URL", raising=False)
        storage.create_dataset("reviews", "classification", sentiment_rows(6))
        ids = []
        for _ in range(2):
            cfg = TrainConfig(dataset="reviews", eval_dataset="reviews", model=str(tiny_model_dir), batch_size=8,
                              device="cpu", learning_rate=2e-3, max_steps=4, eval_every=2)
            run_id = storage.create_run("reviews", "classification", cfg.model, cfg.to_params(),
                                        eval_dataset="reviews")
            execute_run(run_id)
            assert storage.get_run(run_id)["status"] == "completed"
            ids.append(run_id)
        yield ids


def assert_demo_only(at: AppTest, run_id: int) -> None:
    assert not at.exception, at.exception
    assert titles(at) == ["Demo"]
    select = at.selectbox(key="demo_run")
    assert select.options == [select.format_func(run_id)] and select.value == run_id
    card = " ".join(element.value for element in [*at.markdown, *at.caption])
    assert "Run #" in card and "reviews" in card and "Licence" in card
    assert not [b for b in at.button if "Delete" in b.label or "training" in b.label.lower()]
    assert not [t for t in at.text_input if "folder" in t.label.lower()]
    assert not at.get("page_link")


def assert_demo_or_refused(at: AppTest, run_id: int) -> None:
    """Asked for another page in demo mode: the Demo (app.py chose the pages), or, where Streamlit ran the page
    script on its own (AppTest does that on reruns, as a fresh server does for its first request), a refusal."""
    if titles(at) == ["Demo"]:
        assert_demo_only(at, run_id)
    else:
        assert not at.exception and titles(at) == [] and len(at.main.children) == 1
        assert "demo mode" in at.error[0].value


def test_demo_link_shows_only_the_demo_of_the_chosen_run(demo_runs):
    first, second = demo_runs
    at = app(demo=str(first))
    at.run()
    assert_demo_only(at, first)
    assert at.get("metric"), "the run card shows the run's scores"
    for page in ("data", "label", "train", "runs"):  # other pages cannot be reached by address
        ask_for(at, page)
        assert_demo_or_refused(at, first)
    at.query_params.clear()  # the tab stays in demo mode
    ask_for(at, "demo")
    assert_demo_only(at, first)
    at.text_area(key="demo_text").input("great film")
    at.button(key="demo_classify").click().run()
    assert not at.exception and at.session_state["demo_classification"]["run"] == first


def test_server_wide_demo_setting(demo_runs, monkeypatch):
    first, second = demo_runs
    monkeypatch.setenv("SPANLAB_DEMO_RUNS", str(second))
    at = app()
    at.run()
    assert_demo_only(at, second)
    ask_for(at, "runs")
    assert_demo_or_refused(at, second)
    page = app(script=ROOT / "pages" / "runs.py")  # a page script run on its own refuses too
    page.run()
    assert titles(page) == [] and "demo mode" in page.error[0].value


def test_demo_users_only_get_the_demo(demo_runs):
    first, _ = demo_runs
    board_hash = passwords.hash_password("board-secret", iterations=2_000)
    at = app({"spanlab": {"passwords": {"alice": ALICE_HASH, "board": board_hash}, "demo_users": ["board"],
                          "demo_runs": [first]}})
    at.run()
    sign_in(at, "board", "board-secret")
    assert_demo_only(at, first)
    ask_for(at, "data")
    assert_demo_or_refused(at, first)


def test_a_demo_of_missing_runs_says_so(demo_runs):
    at = app(demo="999")
    at.run()
    assert not at.exception and titles(at) == ["Demo"]
    assert "not available" in at.info[0].value and not at.get("page_link")
    broken = app(demo="3;rm")
    broken.run()
    assert "broken" in broken.error[0].value
