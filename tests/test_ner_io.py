"""core.tasks.ner_io: word tokenisation, IOB schemes, CoNLL / span JSON / Label Studio reading and writing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.tasks.ner_io import (SpanFormatError, TagError, align_words, clean_spans, detect_scheme, is_label_studio,
                               normalise_tags, parse_span_list, read_conll, read_label_studio, span_problems,
                               spans_to_tags, tags_to_spans, to_conll, to_span_jsonl, tokens_for, word_spans)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "samples" / "company_news_ner.jsonl"


def words(text):
    return [text[start:end] for start, end in word_spans(text)]


def entities(row):
    return [(row["text"][s["start"]:s["end"]], s["label"]) for s in row["spans"]]


def span(start, end, label, **extra):
    return {"start": start, "end": end, "label": label, **extra}


def read_jsonl(data: bytes) -> list[dict]:
    """What an importer does with to_span_jsonl output: json.loads + parse_span_list + span_problems."""
    rows = []
    for line in data.decode("utf-8").split("\n"):
        if not line:
            continue
        record = json.loads(line)
        spans = parse_span_list(record["spans"])
        assert span_problems(record["text"], spans) == []
        rows.append({"text": record["text"], "spans": None if spans is None else clean_spans(spans),
                     "tokens": record.get("tokens"), "split": record.get("split")})
    return rows


def without_line(rows):
    return [{key: value for key, value in row.items() if key != "line"} for row in rows]


# ------------------------------------------------------------------------------------------------ words
def test_word_spans_ascii_punctuation():
    assert words("Hello, world! (It's 9:30.)") == ["Hello", ",", "world", "!", "(", "It", "'", "s", "9", ":", "30",
                                                   ".", ")"]
    assert words("U.S. snake_case 3.14") == ["U", ".", "S", ".", "snake_case", "3", ".", "14"]
    assert words("  \t\n ") == [] and words("") == []
    assert word_spans("ab  cd") == [(0, 2), (4, 6)]


def test_word_spans_emoji_are_single_words():
    family = "\U0001F469\u200d\U0001F469\u200d\U0001F467"
    flag = "\U0001F1EB\U0001F1F7"  # FR
    scotland = "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"
    thumbs = "\U0001F44D\U0001F3FD"  # with a skin tone
    text = f"Hi {family}{flag} {scotland}!{thumbs} 1\ufe0f\u20e3"
    assert words(text) == ["Hi", family, flag, scotland, "!", thumbs, "1\ufe0f\u20e3"]


def test_word_spans_cjk_one_word_per_character():
    assert words("東京は日本の首都") == list("東京は日本の首都")
    assert words("カタカナー and ひらがな") == ["カ", "タ", "カ", "ナ", "ー", "and", "ひ", "ら", "が", "な"]
    assert words("Tokyo東京") == ["Tokyo", "東", "京"]


def test_word_spans_combining_and_arabic():
    assert words("cafe\u0301 nai\u0308ve") == ["cafe\u0301", "nai\u0308ve"]
    assert words("مرحبا بالعالم، شكرا") == ["مرحبا", "بالعالم", "،", "شكرا"]
    assert words("\u0928\u092e\u0938\u094d\u0924\u0947") == ["\u0928\u092e\u0938\u094d\u0924\u0947"]  # Devanagari
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # a ZWNJ inside the word
    assert words(persian) == [persian]


def test_word_spans_invisible_characters_separate_words():
    assert words("a\u200bb") == ["a", "b"]  # zero-width space
    assert words("\ufeffStart \u200e\u200fend\u00a0x\u3000y") == ["Start", "end", "x", "y"]
    assert words("co\u00adoperate") == ["co\u00adoperate"]  # a soft hyphen stays inside its word
    assert words("\u200b\u200d\ufe0f") == []


# ------------------------------------------------------------------------------------------------ alignment
def test_align_words_splits_at_span_boundaries():
    text = "ACMEcorp's CEO"
    spans = [span(0, 4, "ORG")]
    assert align_words(word_spans(text), spans) == [(0, 4), (4, 8), (8, 9), (9, 10), (11, 14)]
    assert align_words([(0, 10)], [span(2, 4, "X"), span(4, 7, "Y")]) == [(0, 2), (2, 4), (4, 7), (7, 10)]
    assert align_words([(0, 5)], [span(0, 5, "X")]) == [(0, 5)]  # boundaries at word edges change nothing
    assert tokens_for("New York", [span(0, 3, "X")]) == [(0, 3), (4, 8)]
    assert tokens_for("ignored", None, [[0, 3], [4, 7]]) == [(0, 3), (4, 7)]


def test_spans_tags_round_trip():
    text = "Dana Smith met Acme Corp in Paris today"
    spans = [span(0, 10, "PER"), span(15, 24, "ORG"), span(28, 33, "LOC")]
    tokens = tokens_for(text, spans)
    tags = spans_to_tags(spans, tokens)
    assert tags == ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O"]
    assert tags_to_spans(tags, tokens) == spans
    # adjacent entities of one type stay two entities
    adjacent = [span(0, 4, "LOC"), span(5, 10, "LOC")]
    tags = spans_to_tags(adjacent, [(0, 4), (5, 10)])
    assert tags == ["B-LOC", "B-LOC"] and tags_to_spans(tags, [(0, 4), (5, 10)]) == adjacent


def test_spans_to_tags_partial_overlap_and_unsorted_spans():
    tokens = [(0, 5), (6, 11), (12, 17)]
    assert spans_to_tags([span(8, 14, "X")], tokens) == ["O", "B-X", "I-X"]
    assert spans_to_tags([span(12, 17, "B"), span(0, 5, "A")], tokens) == ["B-A", "O", "B-B"]


def test_tags_to_spans_is_lenient_and_checks_input():
    tokens = [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert tags_to_spans(["I-PER", "I-PER", "I-LOC", "O"], tokens) == [span(0, 3, "PER"), span(4, 5, "LOC")]
    assert tags_to_spans(["O", "I-PER", "B-PER", "I-PER"], tokens) == [span(2, 3, "PER"), span(4, 7, "PER")]
    with pytest.raises(ValueError, match="2 tags for 4 tokens"):
        tags_to_spans(["O", "O"], tokens)
    with pytest.raises(TagError) as caught:
        tags_to_spans(["O", "S-PER", "O", "O"], tokens)
    assert caught.value.position == 1


# ------------------------------------------------------------------------------------------------ schemes
def test_iob1_to_iob2():
    # CoNLL-2003 style: I- everywhere, B- only between two adjacent entities of one type
    tags = ["I-ORG", "I-ORG", "O", "I-LOC", "B-LOC", "O", "I-PER", "I-MISC"]
    assert detect_scheme([tags]) == "IOB1"
    iob2 = normalise_tags(tags, "IOB1")
    assert iob2 == ["B-ORG", "I-ORG", "O", "B-LOC", "B-LOC", "O", "B-PER", "B-MISC"]
    tokens = [(i * 2, i * 2 + 1) for i in range(len(tags))]
    assert [(s["start"], s["label"]) for s in tags_to_spans(iob2, tokens)] == [
        (0, "ORG"), (6, "LOC"), (8, "LOC"), (12, "PER"), (14, "MISC")]


def test_iob2_and_lenient_i_after_o():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]
    assert detect_scheme([tags, ["O"]]) == "IOB2"
    assert normalise_tags(tags, "IOB2") == tags
    assert normalise_tags(["O", "I-ORG", "I-ORG"], "IOB2") == ["O", "B-ORG", "I-ORG"]  # as conlleval reads it
    assert normalise_tags(["B-PER", "I-LOC"], "bio") == ["B-PER", "B-LOC"]


def test_bioes_and_bilou_to_iob2():
    tags = ["S-PER", "O", "B-ORG", "I-ORG", "E-ORG", "B-LOC", "E-LOC", "S-LOC"]
    assert detect_scheme([["O"], tags]) == "BIOES"
    assert normalise_tags(tags, "BIOES") == ["B-PER", "O", "B-ORG", "I-ORG", "I-ORG", "B-LOC", "I-LOC", "B-LOC"]
    bilou = ["U-PER", "O", "B-ORG", "I-ORG", "L-ORG"]
    assert detect_scheme([bilou]) == "BILOU"
    assert normalise_tags(bilou, "BILOU") == ["B-PER", "O", "B-ORG", "I-ORG", "I-ORG"]
    assert normalise_tags(["B-PER", "O"], "BIOES") == ["B-PER", "O"]  # an entity left open is accepted


def test_detect_scheme_edge_cases():
    assert detect_scheme([]) == "IOB2"
    assert detect_scheme([["B-PER", "I-PER"], ["I-LOC"]]) == "IOB1"  # I- at sentence start
    assert detect_scheme([["B-PER", "I-LOC"]]) == "IOB1"  # I- after another type
    assert detect_scheme([["X-PER", "E-"], ["B-A"]]) == "IOB2"  # unreadable tags do not count


@pytest.mark.parametrize("tags, scheme, position, fragment", [
    (["O", "X-PER"], "IOB2", 1, "tag 'X-PER' is not O or B-/I-/E-/S- followed by a type"),
    (["PER"], "IOB1", 0, "tag 'PER' is not O"),
    (["o"], "IOB2", 0, "tag 'o' is not O"),
    (["O", None], "IOB2", 1, "tag None is not O"),
    (["B-"], "IOB2", 0, "tag 'B-' has no entity type after 'B-'"),
    (["O", "O", "I- "], "BIOES", 2, "has no entity type"),
    (["B-PER", "E-PER"], "IOB2", 1, "E- tag of the BIOES/BILOU scheme"),
    (["O", "I-PER"], "BIOES", 1, "tag 'I-PER' does not continue a B-PER or I-PER (the tag before it is 'O')"),
    (["E-LOC"], "BIOES", 0, "(it starts the sentence)"),
    (["B-PER", "E-LOC"], "BIOES", 1, "does not continue a B-LOC or I-LOC"),
    (["S-PER", "I-PER"], "BILOU", 1, "does not continue"),
    (["B-PER", "L-ORG"], "BILOU", 1, "'L-ORG' does not continue a B-ORG"),
])
def test_tag_errors(tags, scheme, position, fragment):
    with pytest.raises(TagError) as caught:
        normalise_tags(tags, scheme)
    assert caught.value.position == position
    assert fragment in str(caught.value)
    assert "—" in str(caught.value)  # says what to do


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown tag scheme"):
        normalise_tags(["O"], "XML")


# ------------------------------------------------------------------------------------------------ CoNLL
CONLL_2003 = """-DOCSTART- -X- -X- O

Vantor NNP B-NP I-ORG
Mills NNP I-NP I-ORG
buys VBZ B-VP O
Lisbon NNP B-NP I-LOC
Porto NNP I-NP B-LOC
stores NNS I-NP O
. . O O

Ines NNP B-NP I-PER
Carvalho NNP I-NP I-PER

-DOCSTART- -X- -X- O

SHARES NNS B-NP O
IN IN B-PP O
GLOBEX NNP B-NP I-ORG
RISE VBP B-VP O
"""


def test_read_conll_2003_snippet():
    rows, problems = read_conll(CONLL_2003)
    assert problems == []
    assert [row["line"] for row in rows] == [3, 11, 16]
    first = rows[0]
    assert first["text"] == "Vantor Mills buys Lisbon Porto stores ."
    assert entities(first) == [("Vantor Mills", "ORG"), ("Lisbon", "LOC"), ("Porto", "LOC")]
    assert first["tokens"][:3] == [[0, 6], [7, 12], [13, 17]] and first["split"] is None
    assert entities(rows[1]) == [("Ines Carvalho", "PER")]
    assert entities(rows[2]) == [("GLOBEX", "ORG")]


def test_read_conll_two_column_tsv_keeps_tokens_exactly():
    text = "Anna\tB-PER\nvisited\tO\nZürich\tB-LOC\n😀\tO\ncafe\u0301\tB-ORG\n\n#\tO\nrocks\tO\n"
    rows, problems = read_conll(text)
    assert problems == []
    assert rows[0]["text"] == "Anna visited Zürich 😀 cafe\u0301"
    assert entities(rows[0]) == [("Anna", "PER"), ("Zürich", "LOC"), ("cafe\u0301", "ORG")]
    assert rows[1]["text"] == "# rocks" and rows[1]["line"] == 7  # '#' with a tag is a token
    crlf_bom = "\ufeffAnna B-PER\r\nSmith I-PER\r\n\r\nhi O\r\n"
    rows2, problems2 = read_conll(crlf_bom.encode("utf-8"))
    assert problems2 == [] and [r["line"] for r in rows2] == [1, 4] and entities(rows2[0]) == [("Anna Smith", "PER")]


def test_read_conll_comments_and_bioes():
    text = "# sent_id = 1\n# text = Acme Corp\nAcme B-ORG\nCorp E-ORG\n\n# newdoc\nBob S-PER\nruns O\n"
    rows, problems = read_conll(text)
    assert problems == []
    assert [(r["line"], entities(r)) for r in rows] == [(3, [("Acme Corp", "ORG")]), (7, [("Bob", "PER")])]


def test_read_conll_bad_tag_names_line_and_keeps_good_sentences():
    text = "Good O\nsentence O\n\nAcme B-ORG\nhires O\nBob X-PER\n\nAnother B-MISC\n"
    rows, problems = read_conll(text)
    assert [row["text"] for row in rows] == ["Good sentence", "Another"]
    assert len(problems) == 1
    line, field, message = problems[0]
    assert (line, field) == (6, "tag")
    assert "tag 'X-PER' is not O or B-/I-/E-/S- followed by a type" in message and "fix the tag" in message


def test_read_conll_bioes_error_names_line():
    text = "A S-PER\n\nB O\nC I-PER\nD E-PER\n"
    rows, problems = read_conll(text)
    assert [r["text"] for r in rows] == ["A"]
    assert problems[0][0] == 4 and "does not continue" in problems[0][2]


def test_read_conll_missing_tag_column():
    text = "Acme B-ORG\nhires O\n\nBob\nruns O\nfast\n\nAlice B-PER\n"
    rows, problems = read_conll(text)
    assert [row["text"] for row in rows] == ["Acme hires", "Alice"]
    assert len(problems) == 1
    line, field, message = problems[0]
    assert (line, field) == (4, "tag")
    assert "'Bob' has no tag" in message and "line 6" in message and "add its tag" in message


@pytest.mark.parametrize("text, fragment", [
    ("", "no sentences found"),
    ("\n\n  \n-DOCSTART- -X- O\n\n", "no sentences found"),
    ("# only a comment\n", "no sentences found"),
    ("just\nwords\n\nhere\n", "no line has a tag column"),
])
def test_read_conll_empty_or_untagged_files(text, fragment):
    rows, problems = read_conll(text)
    assert rows == [] and len(problems) == 1
    assert problems[0][0] is None and fragment in problems[0][2]


def test_read_conll_bad_input_types():
    assert read_conll(b"\xff\xfe\x00bad")[1][0][2].startswith("the file is not UTF-8")
    assert read_conll(None)[1][0][0] is None  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ span lists
def test_parse_span_list_formats():
    prodigy = [{"start": 0, "end": 4, "label": "ORG", "text": "Acme", "token_start": 0, "token_end": 0}]
    assert parse_span_list(prodigy) == [span(0, 4, "ORG", text="Acme")]
    assert parse_span_list([[0, 4, "ORG"], (5, 9, "LOC")]) == [span(0, 4, "ORG"), span(5, 9, "LOC")]
    assert parse_span_list(json.dumps(prodigy)) == [span(0, 4, "ORG", text="Acme")]
    assert parse_span_list('[[0, 4, "ORG"]]') == [span(0, 4, "ORG")]
    assert parse_span_list([{"start_offset": 1, "end_offset": 3, "label": "X"}]) == [span(1, 3, "X")]
    assert parse_span_list([[0.0, 4.0, "ORG"]]) == [span(0, 4, "ORG")]
    assert parse_span_list([]) == [] and parse_span_list("[]") == []
    for missing in (None, "", "  ", float("nan"), "null"):
        assert parse_span_list(missing) is None


def test_parse_span_list_numpy_values():
    np = pytest.importorskip("numpy")
    assert parse_span_list(np.array([{"start": np.int64(0), "end": np.int64(2), "label": "A"}], dtype=object)) == [
        span(0, 2, "A")]
    assert parse_span_list(np.float64("nan")) is None


@pytest.mark.parametrize("value, fragment", [
    ([{"start": 0, "label": "ORG"}], "span 1 needs start, end and label (its keys: 'start', 'label')"),
    ([[0, 4, "A"], {"end": 3}], "span 2 needs start, end and label"),
    ([[0, 1.5, "ORG"]], "span 1 has end 1.5, which is not a whole number"),
    ([{"start": "a", "end": 4, "label": "ORG"}], "span 1 has start 'a'"),
    ([[True, 4, "ORG"]], "has start True"),
    ([[0, 4]], "span 1 is a list of 2 items"),
    ([[0, 4, "ORG", "extra"]], "a list of 4 items"),
    ([[0, 4, 7]], "has label 7, which is not text"),
    ([{"start": 0, "end": 4, "label": "A", "text": 5}], "states its text as 5"),
    (["ORG"], "span 1 is 'ORG', not a span"),
    ({"start": 0, "end": 4, "label": "ORG"}, "the spans are dict, not a list"),
    ('{"start": 0}', "the spans are dict, not a list"),
    (42, "the spans are int, not a list"),
    ("[[0, 4, 'ORG']]", "the spans are not valid JSON"),
])
def test_parse_span_list_errors(value, fragment):
    with pytest.raises(SpanFormatError) as caught:
        parse_span_list(value)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


# ------------------------------------------------------------------------------------------------ span problems
TEXT = "Hello Paris and Paris again"  # 27 characters


@pytest.mark.parametrize("spans, expected", [
    ([span(0, 40, "LOC")], ["span 1 (0-40) goes past the end of the text, which has 27 characters — fix the offsets"]),
    ([span(-1, 4, "LOC")], ["span 1 (start -1, end 4) starts before the text"]),
    ([span(5, 5, "LOC")], ["span 1 (5-5) is empty: its end must be greater than its start"]),
    ([span(9, 5, "LOC")], ["span 1 (9-5) ends before it starts"]),
    ([span(6, 11, "")], ["span 1 (6-11 'Paris') has an empty label"]),
    ([span(6, 11, "  ")], ["span 1 (6-11 'Paris') has an empty label"]),
    ([span(6, 11, None)], ["span 1 (6-11 'Paris') has label None, which is not text"]),
    ([span(7, 12, "LOC", text="Paris")],
     ["span 1 (7-12) states its text as 'Paris', but the text there is 'aris '; 'Paris' occurs at 6-11, 16-21 — "
      "fix the offsets"]),
    ([span(0, 5, "LOC", text="Berlin")], ["'Berlin' does not occur in the text — fix the span's text or its offsets"]),
    ([span(6, 11, "LOC"), span(10, 15, "LOC")],
     ["span 2 (10-15 's and') overlaps span 1 (6-11 'Paris') — remove one of them or fix the offsets"]),
    ([span(16, 21, "LOC"), span(6, 11, "LOC"), span(6, 11, "ORG")],
     ["span 3 (6-11 'Paris') overlaps span 2 (6-11 'Paris')"]),
    ([span(0, 27, "X"), span(6, 11, "LOC"), span(16, 21, "LOC")],
     ["span 2 (6-11 'Paris') overlaps span 1 (0-27 'Hello Paris and Paris again')",
      "span 3 (16-21 'Paris') overlaps span 1 (0-27 'Hello Paris and Paris again')"]),
    (["oops"], ["span 1 ('oops') is not a span"]),
    ([span("a", 3, "X")], ["span 1 (start 'a', end 3) has offsets that are not whole numbers"]),
])
def test_span_problems_each_case(spans, expected):
    found = span_problems(TEXT, spans)
    assert len(found) == len(expected), found
    for message, fragment in zip(found, expected):
        assert fragment in message


def test_span_problems_several_in_span_order_and_clean_input():
    spans = [span(6, 11, "LOC", text="Paris"), span(0, 99, " "), span(8, 14, "ORG", text="ris a"), span(3, 3, "X")]
    found = span_problems(TEXT, spans)
    assert [message.split(" (")[0] for message in found] == ["span 2", "span 2", "span 3", "span 3", "span 4"]
    assert "goes past the end" in found[0] and "empty label" in found[1]
    assert "'ris a'" in found[2] and "overlaps span 1" in found[3]
    assert span_problems(TEXT, [span(6, 11, "LOC", text="Paris"), span(16, 21, "LOC")]) == []
    assert span_problems(TEXT, None) == [] and span_problems("", []) == []


def test_span_problems_explains_other_offset_units():
    text = "😀 Paris 東京"  # JavaScript counts the emoji as 2 units, UTF-8 as 4 bytes
    utf16 = span_problems(text, [span(3, 8, "LOC", text="Paris")])
    assert len(utf16) == 1 and "look like UTF-16 code units" in utf16[0]
    utf8 = span_problems(text, [span(11, 17, "LOC", text="東京")])
    assert len(utf8) == 1 and "goes past the end" in utf8[0] and "UTF-8 bytes" in utf8[0]
    nfd = span_problems("cafe\u0301 open", [span(0, 5, "ORG", text="caf\u00e9")])
    assert len(nfd) == 1 and "Unicode normalisation" in nfd[0]


def test_clean_spans():
    spans = [span(16, 21, " LOC ", text="Paris"), span(6, 11, "LOC")]
    assert clean_spans(spans) == [span(6, 11, "LOC"), span(16, 21, "LOC")]
    assert clean_spans(None) == []


# ------------------------------------------------------------------------------------------------ Label Studio
LABEL_STUDIO = [
    {"id": 101, "data": {"text": "Odile Ferrant joined Harbin & Vale in Lyon.", "source": "wire"},
     "annotations": [
         {"id": 1, "was_cancelled": True, "result": [
             {"type": "labels", "value": {"start": 0, "end": 5, "text": "Odile", "labels": ["PER"]}}]},
         {"id": 2, "was_cancelled": False, "result": [
             {"id": "r2", "from_name": "label", "to_name": "text", "type": "labels",
              "value": {"start": 21, "end": 34, "text": "Harbin & Vale", "labels": ["ORG"]}},
             {"id": "r1", "from_name": "label", "to_name": "text", "type": "labels",
              "value": {"start": 0, "end": 13, "text": "Odile Ferrant", "labels": ["PER", "ROLE"]}},
             {"id": "c1", "from_name": "topic", "to_name": "text", "type": "choices",
              "value": {"choices": ["people"]}},
             {"id": "r3", "from_name": "label", "to_name": "text", "type": "labels",
              "value": {"start": 38, "end": 42, "text": "Lyon", "labels": ["LOC"]}}]}],
     "predictions": []},
    {"id": 102, "data": {"text": "Shares of Pennick Paper rose."}, "annotations": [],
     "predictions": [{"result": [{"type": "labels", "value": {"start": 10, "end": 23, "labels": ["ORG"]}}]}]},
]


def test_read_label_studio_export():
    assert is_label_studio(LABEL_STUDIO)
    rows, problems = read_label_studio(LABEL_STUDIO)
    assert problems == []
    assert rows[0]["spans"] == [span(0, 13, "PER"), span(21, 34, "ORG"), span(38, 42, "LOC")]
    assert rows[0]["line"] == 1 and rows[0]["tokens"] is None and rows[0]["split"] is None
    assert rows[0]["meta"] == {"id": "101", "source": "wire"}  # the task's other fields and id: metadata
    assert rows[1] == {"text": "Shares of Pennick Paper rose.", "spans": None, "tokens": None, "split": None,
                       "line": 2, "meta": {"id": "102"}}


def test_read_label_studio_text_key_and_bad_records():
    document = [
        {"data": {"id": "x", "body": "Bob works at Acme."}, "annotations": [{"result": [
            {"type": "labels", "value": {"start": 13, "end": 17, "labels": ["ORG"]}}]}]},
        {"data": {"body": "Acme hires Bob."}, "annotations": [{"result": [
            {"type": "labels", "value": {"start": 0, "end": 4, "text": "Acm", "labels": ["ORG"]}}]}]},
        {"data": {"n": 3}, "annotations": []},
        {"data": {"body": "x"}, "annotations": [{"result": [
            {"type": "labels", "value": {"start": "/p[1]", "end": "/p[1]", "labels": ["ORG"]}}]}]},
        "not a task",
        {"data": {"body": "Empty."}, "annotations": [{"result": []}]},
        {"data": {"body": "No label"}, "annotations": [{"result": [
            {"type": "labels", "value": {"start": 0, "end": 2, "labels": []}}]}]},
    ]
    rows, problems = read_label_studio(document[:1])  # without text_key: the first string, "x"
    assert rows == [] and "goes past the end of the text, which has 1 characters" in problems[0][2]
    rows, problems = read_label_studio(document, text_key="body")
    assert [(row["line"], row["spans"]) for row in rows] == [(1, [span(13, 17, "ORG")]), (6, [])]
    assert [(line, field) for line, field, _ in problems] == [(2, "spans"), (3, "text"), (4, "spans"), (5, "data"),
                                                             (7, "spans")]
    assert "states its text as 'Acm'" in problems[0][2]
    assert "no text under 'body'" in problems[1][2]
    assert "not a whole number" in problems[2][2]
    assert "has no labels" in problems[4][2]
    assert read_label_studio({"data": {}})[1][0][0] is None
    assert not is_label_studio([]) and not is_label_studio([{"data": {}}]) and not is_label_studio({"data": {}})


def test_read_label_studio_prefers_text_key_then_first_string():
    document = [{"data": {"title": "T", "text": "Real text"}, "annotations": []},
                {"data": {"n": 1, "title": "Only string"}, "annotations": []}]
    rows, problems = read_label_studio(document)
    assert problems == [] and [row["text"] for row in rows] == ["Real text", "Only string"]


# ------------------------------------------------------------------------------------------------ writing
def marked(text, entities_in_order, split=None):
    """A row whose spans are the given (entity text, label) pairs, found left to right."""
    spans, at = [], 0
    for entity, label in entities_in_order:
        at = text.index(entity, at)
        spans.append(span(at, at + len(entity), label))
        at += len(entity)
    return {"text": text, "spans": spans, "tokens": None, "split": split}


TRICKY = [
    marked("Dana Smith (CEO of ACME-Corp) flew to 東京 👩\u200d👩\u200d👧 with cafe\u0301 owners from São Paulo 🇧🇷.",
           [("Dana Smith", "PER"), ("ACME-Corp", "ORG"), ("東京", "LOC"), ("cafe\u0301", "PRODUCT"),
            ("São Paulo", "LOC")], split="train"),
    {"text": "No entities here.", "spans": [], "tokens": None, "split": None},
    marked("مرحبا Acme\u200bCorp", [("Acme", "ORG")], split="test"),
]


def test_tricky_fixture_spans_are_right():
    row = TRICKY[0]
    assert [(s["start"], s["end"]) for s in row["spans"]] == [(0, 10), (19, 28), (38, 40), (52, 57), (70, 79)]
    assert span_problems(row["text"], row["spans"]) == []


def long_row():
    text, spans = [], []
    at = 0
    while at < 20_000:
        for word, label in (("Kestrel", "ORG"), ("flies", None), ("to", None), ("東京", "LOC"), ("with", None),
                            ("nai\u0308ve", None), ("👍🏽", None), ("Ana Sobral", "PER"), (".", None)):
            if label:
                spans.append(span(at, at + len(word), label))
            text.append(word)
            at += len(word) + 1
    return {"text": " ".join(text), "spans": spans, "tokens": None, "split": None}


def test_conll_round_trip_from_text_rows():
    rows = TRICKY + [long_row()]
    assert len(rows[-1]["text"]) >= 20_000
    back, problems = read_conll(to_conll(rows))
    assert problems == [] and len(back) == len(rows)
    for original, again in zip(rows, back):
        assert again["text"] == " ".join(words(original["text"]))  # same tokens, single spaces
        assert entities(again) == [(" ".join(words(entity)), label) for entity, label in entities(original)]
        assert again["tokens"] is not None
    # a row read from CoNLL comes back identical
    back2, problems2 = read_conll(to_conll(back))
    assert problems2 == [] and without_line(back2) == without_line(back)


def test_conll_round_trip_from_conll_file():
    rows, _ = read_conll(CONLL_2003 + "\n😀 O\n東京 B-LOC\ncafe\u0301 B-ORG\n-- I-ORG\n")
    text = to_conll(rows)
    again, problems = read_conll(text)
    assert problems == [] and without_line(again) == without_line(rows)
    assert again[-1]["text"] == "😀 東京 cafe\u0301 --"
    assert read_conll(to_conll(again))[0] == again  # same file layout: lines too


def test_to_conll_format_and_unannotated_rows():
    rows = [{"text": "Acme hires", "spans": None, "tokens": None, "split": None},
            {"text": "Bob  runs", "spans": [span(0, 3, "PER")], "tokens": None, "split": None},
            {"text": "   ", "spans": [], "tokens": None, "split": None},
            {"text": "ACMEcorp", "spans": [span(0, 4, "ORG")], "tokens": None, "split": None}]
    assert to_conll(rows) == "Bob\tB-PER\nruns\tO\n\nACME\tB-ORG\ncorp\tO\n\n"
    assert to_conll([rows[0]]) == ""


def test_to_conll_label_with_spaces_stays_one_column():
    rows = [{"text": "Mona Lisa hangs", "spans": [span(0, 9, "WORK OF ART")], "tokens": None, "split": None}]
    text = to_conll(rows)
    assert text == "Mona\tB-WORK_OF_ART\nLisa\tI-WORK_OF_ART\nhangs\tO\n\n"
    assert entities(read_conll(text)[0][0]) == [("Mona Lisa", "WORK_OF_ART")]


def test_to_conll_repairs_unusable_stored_tokens():
    rows = [{"text": "New York rocks", "spans": [span(0, 8, "LOC")], "tokens": [[0, 8], [9, 14]], "split": None},
            {"text": "Acme Inc", "spans": [span(0, 4, "ORG")], "tokens": [[0, 8]], "split": None}]
    assert to_conll(rows) == "New\tB-LOC\nYork\tI-LOC\nrocks\tO\n\nAcme\tB-ORG\nInc\tO\n\n"


def test_span_jsonl_round_trip():
    rows = TRICKY + [long_row()] + [
        {"text": "Unlabelled row", "spans": None, "tokens": None, "split": "validation"},
        {"text": "Acme Corp", "spans": [span(0, 9, "ORG")], "tokens": [[0, 4], [5, 9]], "split": None},
        {"text": "line\u2028separator and \x85 NEL", "spans": [span(0, 4, "X")], "tokens": None, "split": None},
    ]
    data = to_span_jsonl(rows)
    assert data.count(b"\n") == len(rows) and "東京".encode() in data  # UTF-8, not \\u escapes
    assert read_jsonl(data) == rows
    first = json.loads(data.split(b"\n")[0])
    assert first["spans"][0] == {"start": 0, "end": 10, "label": "PER", "text": "Dana Smith"}
    assert "tokens" not in first and first["split"] == "train"
    assert "split" not in json.loads(data.split(b"\n")[1]) and json.loads(data.split(b"\n")[4])["spans"] is None


def test_span_jsonl_lone_surrogate_does_not_crash():
    rows = [{"text": "bad \ud800 char", "spans": [], "tokens": None, "split": None}]
    data = to_span_jsonl(rows)
    assert data.isascii() and read_jsonl(data) == rows


def test_conll_rows_survive_jsonl():
    rows, _ = read_conll(CONLL_2003)
    assert read_jsonl(to_span_jsonl(rows)) == without_line(rows)


# ------------------------------------------------------------------------------------------------ sample file
def test_sample_file_reads_back_without_problems():
    lines = SAMPLE.read_bytes().decode("utf-8").splitlines()
    assert len(lines) == 40
    labels, empty = set(), 0
    for line in lines:
        record = json.loads(line)
        spans = parse_span_list(record["spans"])
        assert spans is not None
        assert span_problems(record["text"], spans) == [], record["text"]
        labels |= {s["label"] for s in spans}
        empty += not spans
        # every entity is made of whole words
        assert tokens_for(record["text"], spans) == [tuple(w) for w in word_spans(record["text"])]
    assert labels == {"PER", "ORG", "LOC", "PRODUCT"} and 3 <= empty <= 8
