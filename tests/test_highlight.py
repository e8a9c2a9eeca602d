"""core.highlight: escaping of hostile text, exact offsets with Unicode, overlapping and bad spans."""
from __future__ import annotations

import html
import re

import pytest

from core.highlight import (ACTIVE_CLASS, HIGHLIGHT_CSS, MARK_CLASS, big_text_html, escape_text, highlight_html,
                            layout_spans)


def visible_text(markup: str) -> str:
    """What a browser shows: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def marked(markup: str) -> list[tuple[str, bool]]:
    """(text, is_active) of every <mark> in order."""
    return [(html.unescape(body), ACTIVE_CLASS in classes)
            for classes, body in re.findall(r'<mark class="([^"]*)"[^>]*>(.*?)</mark>', markup)]


@pytest.mark.parametrize("payload", [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "</div><iframe src=javascript:alert(1)>",
    "&lt;b&gt; already-escaped &amp; stays literal",
    "$\\frac{a}{b}$ and $$x$$",
    "**bold** _it_ `code` [link](http://x) ~~gone~~ # head | a | b |",
    "back\\slash & ampersand ' quote \" dq",
])
def test_hostile_text_is_inert(payload):
    markup = highlight_html(payload, [(0, 5)], active=0)
    # nothing but our own tags survives
    tags = re.findall(r"<(/?[a-zA-Z]+)", markup)
    assert set(tags) <= {"div", "/div", "mark", "/mark"}
    inner = markup.split(">", 1)[1].rsplit("</div>", 1)[0]  # drop our wrapper tag
    inner = re.sub(r"</?mark[^>]*>", "", inner)
    inner = re.sub(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", "", inner)  # drop the entities we wrote
    for char in "$*_`[]~#|\\<>&":
        assert char not in inner, f"{char!r} left raw in {inner!r}"
    assert visible_text(markup) == payload


def test_escape_text_matches_html_escape_plus_markdown_specials():
    text = "a<b>&\"'c $x$ *y* _z_"
    escaped = escape_text(text)
    assert html.unescape(escaped) == text
    assert "&lt;b&gt;&amp;&quot;&#x27;" in escaped  # html.escape's own forms
    assert "&#36;x&#36;" in escaped and "&#42;y&#42;" in escaped and "&#95;z&#95;" in escaped


def test_newlines_survive_as_entities_on_one_line():
    markup = highlight_html("line one\nline two\r\nthree", [])
    assert "\n" not in markup and "\r" not in markup
    assert visible_text(markup) == "line one\nline two\nthree"
    assert "white-space: pre-wrap" in HIGHLIGHT_CSS


@pytest.mark.parametrize("text, answer", [
    ("I 🙂 love Zürich and 東京 today", "Zürich"),
    ("🙂🙂 emoji first then café", "café"),
    ("e\u0301te\u0301 combining accents then 日本 end", "日本"),
    ("东京是日本的首都", "日本"),
    ("flag 🇫🇷 before naïve", "naïve"),
])
def test_offsets_are_code_points_of_the_original_string(text, answer):
    start = text.index(answer)
    markup = highlight_html(text, [(start, start + len(answer))], active=0)
    assert marked(markup) == [(answer, True)]
    assert visible_text(markup) == text


def test_span_over_combining_and_emoji_characters():
    text = "ab\u0301c 👩‍👩‍👧 d"
    markup = highlight_html(text, [(1, 3), (5, 10)], active=1)
    assert marked(markup) == [("b\u0301", False), ("👩‍👩‍👧", True)]
    assert visible_text(markup) == text


def test_active_strong_others_light_and_dict_spans():
    text = "alice met bob in paris"
    spans = [{"start": 0, "end": 5, "answer": "alice"}, {"start": 10, "end": 13}, {"start": 17, "end": 22}]
    markup = highlight_html(text, spans, active=1)
    assert marked(markup) == [("alice", False), ("bob", True), ("paris", False)]
    assert f'class="{MARK_CLASS} {ACTIVE_CLASS}"' in markup and 'title="alice"' in markup
    only_active = highlight_html(text, spans, active=1, highlight_others=False)
    assert marked(only_active) == [("bob", True)]
    assert marked(highlight_html(text, spans)) == [("alice", False), ("bob", False), ("paris", False)]


def test_overlapping_spans_are_clipped_and_active_wins():
    text = "founded in 1999 by alice ."
    spans = [(8, 24), (19, 24), (0, 10)]  # "in 1999 by alice", "alice", "founded in"
    markup = highlight_html(text, spans, active=1)
    assert visible_text(markup) == text
    assert marked(markup) == [("founded ", False), ("in 1999 by ", False), ("alice", True)]
    assert "<mark" not in re.sub(r"<mark[^>]*>[^<]*</mark>", "", markup)  # no nesting
    pieces = layout_spans(len(text), spans, active=1)
    covered = [i for start, end, _ in pieces for i in range(start, end)]
    assert len(covered) == len(set(covered))


def test_identical_and_contained_spans():
    text = "abcdef"
    assert marked(highlight_html(text, [(1, 4), (1, 4)], active=1)) == [("bcd", True)]
    assert marked(highlight_html(text, [(0, 6), (2, 3)], active=1)) == [("ab", False), ("c", True), ("def", False)]


@pytest.mark.parametrize("spans", [[(-1, 2)], [(3, 99)], [(4, 4)], [(5, 2)], [("a", "b")], [None], [(1,)],
                                   [{"start": -1, "end": -1}], [{"answer": ""}], [(True, 3)]])
def test_out_of_range_or_malformed_spans_are_ignored(spans):
    markup = highlight_html("hello", spans, active=0)
    assert "<mark" not in markup and visible_text(markup) == "hello"


def test_active_out_of_range_and_empty_text():
    assert marked(highlight_html("hello", [(0, 2)], active=7)) == [("he", False)]
    assert highlight_html("", [(0, 1)]) == '<div class="spanlab-text"></div>'
    assert "spanlab-large" in highlight_html("x", [], large=True)


def test_big_text_is_escaped():
    markup = big_text_html("<b>$positive$</b>")
    assert "<b>" not in markup and "$" not in markup
    assert visible_text(markup) == "<b>$positive$</b>"
