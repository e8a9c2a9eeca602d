"""A shared server in a real browser (Debian's chromium, the real Streamlit server): with password sign-in on, the
very first request of a fresh server for a page other than the start page (which Streamlit answers by running that
page script on its own) gets the sign-in form, a wrong password is refused, the right one lets in; dataset and
label names written as Markdown show as text: no <img> is made and no request reaches the image's URL (a small
local HTTP server counts them), no bold or link forms.

Needs /usr/bin/chromium (scripts/test.sh installs it); skipped without it.
"""
from __future__ import annotations

import http.server
import threading

import pytest

from core import passwords
from tests.browser import browser_context, needs_chromium, new_tab, streamlit_server
from tests.test_e2e_browser import go_to, settle

pytestmark = [pytest.mark.browser, needs_chromium]


class _Beacon(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 — http.server's name
        _Beacon.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def beacon():
    """A local HTTP server that records every request: what a hostile name's image URL would reach."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Beacon)
    _Beacon.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Beacon.hits
    finally:
        server.shutdown()


def shown_text(locator) -> str:
    """What the reader sees (the invisible word joiners that keep addresses from becoming links left out)."""
    return locator.inner_text().replace("\u2060", "")


def assert_nothing_formed(page, base: str) -> None:
    assert page.locator(f'img[src^="{base}"]').count() == 0
    links = page.locator(f'a[href^="{base}"]')
    assert links.count() == 0, links.first.evaluate("a => a.parentElement.parentElement.outerHTML")
    assert page.locator("strong", has_text="bold").count() == 0


def test_sign_in_first_and_names_as_plain_text(tmp_path, monkeypatch, beacon):
    from playwright.sync_api import expect

    base, hits = beacon
    name = f"![x]({base}/beacon.png) **bold** [link]({base}/link)"
    label = f"![y]({base}/label.png)"
    home = tmp_path / "home"
    monkeypatch.setenv("SPANLAB_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    from core import storage
    storage.create_dataset(name, "classification", [{"text": "good movie"}, {"text": "bad film"}],
                           labels=[label, "neutral"])
    secrets = tmp_path / "secrets.toml"
    stored = passwords.hash_password("alice-secret", iterations=2_000)
    secrets.write_text(f'[spanlab.passwords]\nalice = "{stored}"\n', encoding="utf-8")

    with streamlit_server("app.py", home, tmp_path / "server.log", server_args=("--secrets.files", str(secrets))) \
            as url, browser_context(tmp_path / "profile") as context:
        page = new_tab(context)
        expect.set_options(timeout=30_000)
        page.goto(f"{url}/label")  # the fresh server's first request names a page
        password = page.get_by_label("Password", exact=True)
        password.wait_for()
        assert page.get_by_role("heading", name="Label", level=1).count() == 0
        assert page.locator('[data-testid="stSidebarNav"] a').count() == 0

        page.get_by_label("Name", exact=True).fill("alice")
        password.fill("wrong-password")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Wrong name or password.").wait_for()
        password.fill("alice-secret")
        page.get_by_role("button", name="Sign in").click()
        page.locator('[data-testid="stSidebarNav"] a').first.wait_for()
        settle(page)

        go_to(page, "Data")
        expander = page.get_by_text("Delete '![x](").first  # the expander, literally
        expect(expander).to_be_visible()
        assert shown_text(expander) == f"Delete '{name}'"
        assert_nothing_formed(page, base)
        go_to(page, "Label")
        label_button = page.locator('[data-testid="stButton"] button', has_text="![y](").first
        expect(label_button).to_be_visible()
        assert shown_text(label_button) == label
        settle(page)
        assert_nothing_formed(page, base)
        page.screenshot(path=str(tmp_path / "label.png"))
    assert hits == [], hits
