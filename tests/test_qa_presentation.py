"""QA answers as a person is shown them (core.tasks.qa.presented_answers): overlapping alternatives merged into the
better answer, a relative confidence that means something after a short run, the raw score kept for the tooltip;
and bidi isolation of answer text (core.highlight.isolate)."""
from __future__ import annotations

import math

import pytest

from core.highlight import isolate
from core.tasks.qa import answer_tooltip, presented_answers

CONTEXT = "the capital of france is paris , on the seine ."


def answer(text: str, score: float, occurrence: int = 0) -> dict:
    start = -1 if not text else [i for i in range(len(CONTEXT)) if CONTEXT.startswith(text, i)][occurrence]
    return {"answer": text, "start": start, "end": -1 if not text else start + len(text), "score": score}


def test_tiny_raw_scores_become_shares_that_add_up_to_one():
    shown = presented_answers([answer("paris", 0.0012), answer("seine", 0.0006), answer("france", 0.0002)], 5)
    assert [a["answer"] for a in shown] == ["paris", "seine", "france"]
    assert [round(a["relative"], 3) for a in shown] == [0.6, 0.3, 0.1]
    assert math.isclose(sum(a["relative"] for a in shown), 1.0)
    assert [a["score"] for a in shown] == [0.0012, 0.0006, 0.0002]  # the raw value is kept, unchanged


def test_the_share_is_the_softmax_of_the_log_scores():
    raw = [0.004, 0.001, 0.0005]
    shown = presented_answers([answer("paris", raw[0]), answer("seine", raw[1]), answer("france", raw[2])], 5)
    logs = [math.log(s) for s in raw]
    softmax = [math.exp(v) / sum(math.exp(w) for w in logs) for v in logs]
    assert [a["relative"] for a in shown] == pytest.approx(softmax)


def test_an_alternative_overlapping_a_better_answer_is_merged_into_it():
    ranked = [answer("paris", 0.3), answer("is paris", 0.2), answer("paris ,", 0.1), answer("seine", 0.1),
              answer("the seine", 0.05), answer("france", 0.05)]
    shown = presented_answers(ranked, 5)
    assert [a["answer"] for a in shown] == ["paris", "seine", "france"]
    assert shown[0]["merged"] == ["is paris", "paris ,"] and shown[1]["merged"] == ["the seine"]
    assert shown[2]["merged"] == []
    for first in shown:  # no two shown answers share a character
        for second in shown:
            if first is not second:
                assert first["end"] <= second["start"] or second["end"] <= first["start"]
    assert [round(a["relative"], 3) for a in shown] == [0.667, 0.222, 0.111]  # among the answers shown


def test_the_limit_applies_after_merging():
    ranked = [answer("paris", 0.3), answer("is paris", 0.2), answer("seine", 0.1), answer("france", 0.05)]
    assert [a["answer"] for a in presented_answers(ranked, 2)] == ["paris", "seine"]


def test_no_answer_takes_part_and_overlaps_nothing():
    ranked = [answer("", 0.5), answer("paris", 0.3), answer("is paris", 0.2)]
    shown = presented_answers(ranked, 5)
    assert [a["answer"] for a in shown] == ["", "paris"]
    assert [round(a["relative"], 3) for a in shown] == [0.625, 0.375]


def test_all_zero_scores_give_no_share_rather_than_a_made_up_one():
    shown = presented_answers([answer("", 0.0)], 5)
    assert shown[0]["relative"] is None
    assert presented_answers([], 5) == []


def test_input_is_not_changed():
    ranked = [answer("paris", 0.3), answer("is paris", 0.2)]
    before = [dict(a) for a in ranked]
    presented_answers(ranked, 5)
    assert ranked == before


def test_the_tooltip_gives_the_raw_score_and_what_was_merged():
    [paris] = presented_answers([answer("paris", 0.0012), answer("is paris", 0.0001)], 5)
    tip = answer_tooltip(paris)
    assert "raw model score 0.0012" in tip and "'is paris'" in tip and "100%" in tip


def test_isolate_wraps_text_in_unicode_first_strong_isolates():
    arabic = "عاصمة فرنسا هي باريس"
    assert isolate(arabic) == "\u2068" + arabic + "\u2069"
    # isolate marks inside the text could close ours early or leave one open: they are dropped
    assert isolate("a\u2069b\u2067c") == "\u2068abc\u2069"


def test_presenting_twice_changes_nothing():
    once = presented_answers([answer("paris", 0.3), answer("is paris", 0.2), answer("seine", 0.1)], 5)
    assert presented_answers(once, 5) == once
