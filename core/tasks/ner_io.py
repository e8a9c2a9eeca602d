"""Named-entity (span labeling) data: word tokenisation, IOB tags, and CoNLL / span JSON / Label Studio files.

A row is ``{"text", "spans", "tokens", "split"}``: ``spans`` are sorted, non-overlapping
``{"start", "end", "label"}`` character offsets (Python string indices) or None when not annotated;
``tokens`` are the ``[start, end]`` offsets of a token-based source (CoNLL), else None. Readers add ``"line"``
(line or record number in the file read). Problems are ``(line, field, message)`` tuples; readers never raise
on bad content.
"""
from __future__ import annotations

import bisect
import functools
import json
import math
import numbers
import re
import unicodedata
from typing import Any, Iterable, Sequence

import regex

__all__ = [
    "TagError", "SpanFormatError", "SCHEMES",
    "word_spans", "align_words", "tokens_for", "spans_to_tags", "tags_to_spans",
    "normalise_tags", "detect_scheme", "read_conll", "parse_span_list", "span_problems", "clean_spans",
    "is_label_studio", "read_label_studio", "to_conll", "to_span_jsonl",
]

Problem = tuple  # (line: int | None, field: str, message: str)

SCHEMES = ("IOB1", "IOB2", "BIOES")
_SCHEME_ALIASES = {"IOB1": "IOB1", "IOB": "IOB1", "IOB2": "IOB2", "BIO": "IOB2",
                   "BIOES": "BIOES", "IOBES": "BIOES", "BILOU": "BIOES", "BIOLU": "BIOES"}

# ------------------------------------------------------------------------------------------------ words
# Han ideographs, hiragana and katakana are one word per character (with their marks), as BERT splits CJK text.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\u30FC\uFF70"
# Never start a word: whitespace, separators, control and format characters, default-ignorable code points
# (zero-width space, BOM, bidi marks, variation selectors, a stray ZWJ...). Inside a grapheme cluster
# (an emoji ZWJ sequence, a tag-sequence flag, a letter + ZWNJ) they stay with it.
_SEP = r"\s\p{Z}\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}"
_WORD_START = rf"(?![{_SEP}{_CJK}])[\p{{L}}\p{{N}}_]"
_WORD_MORE = rf"(?![{_CJK}])[\p{{L}}\p{{M}}\p{{N}}_]"
_WORD_RE = regex.compile(
    rf"(?=[{_CJK}])\X"                                          # one CJK character
    rf"|(?={_WORD_START})\X(?:[\u00AD\u2060]*(?={_WORD_MORE})\X)*"  # letters/digits/marks/_ (soft hyphen, WJ inside)
    rf"|(?![{_SEP}])\X")                                         # any other visible grapheme cluster


def word_spans(text: str) -> list[tuple[int, int]]:
    """SpanLab's words as (start, end) offsets.

    A word is a run of letters, digits, marks and underscores (whole grapheme clusters, so a letter with a
    combining accent or a ZWNJ stays in its word; a soft hyphen or word joiner between letters is kept inside),
    or one CJK ideograph / kana, or any other visible grapheme cluster ("U.S." is U . S . ; a ZWJ emoji family or a
    flag is one word). Whitespace, control and format characters (zero-width space, BOM, bidi marks) and other
    default-ignorable code points separate words and are never part of one, except inside a grapheme cluster.
    """
    return [match.span() for match in _WORD_RE.finditer(text)]


def align_words(words: Iterable[Sequence[int]], spans: Iterable[dict] | None) -> list[tuple[int, int]]:
    """Words split further at every span start/end that falls strictly inside a word."""
    cuts = sorted({int(span[key]) for span in (spans or []) for key in ("start", "end")
                   if isinstance(span, dict) and _is_int(span.get(key))})
    result: list[tuple[int, int]] = []
    for start, end in words:
        start, end = int(start), int(end)
        at = bisect.bisect_right(cuts, start)
        while at < len(cuts) and cuts[at] < end:
            result.append((start, cuts[at]))
            start = cuts[at]
            at += 1
        result.append((start, end))
    return result


def tokens_for(text: str, spans: list[dict] | None, tokens: Iterable[Sequence[int]] | None = None
               ) -> list[tuple[int, int]]:
    """The row's tokens as tuples when it has some, else its words split at span boundaries."""
    if tokens is not None:
        return [(int(start), int(end)) for start, end in tokens]
    return align_words(word_spans(text), spans or [])


# ------------------------------------------------------------------------------------------------ tags
class TagError(ValueError):
    """A tag that cannot be read; ``position`` is its index in the sentence."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.message = message
        self.position = position


def spans_to_tags(spans: Iterable[dict], tokens: Sequence[Sequence[int]]) -> list[str]:
    """IOB2 tag per token: a token overlapping a span is inside it, the span's first such token gets B-.

    Tokens must be in text order without overlaps. A token overlapping two spans goes to the earlier one.
    """
    tags = ["O"] * len(tokens)
    ends = [int(end) for _, end in tokens]
    for span in sorted(spans, key=lambda s: (s["start"], s["end"])):
        start, end, label = span["start"], span["end"], span["label"]
        first = True
        at = bisect.bisect_right(ends, start)
        if at > 0 and tokens[at - 1][0] == tokens[at - 1][1] == start:  # an empty token at the span start
            at -= 1
        while at < len(tokens) and tokens[at][0] < end:
            token_start, token_end = tokens[at]
            inside = max(token_start, start) < min(token_end, end) or (token_start == token_end and
                                                                       start <= token_start < end)
            if inside and tags[at] == "O":
                tags[at] = f"{'B' if first else 'I'}-{label}"
                first = False
            at += 1
    return tags


_TAG_RE = re.compile(r"([A-Z])-(.*)", re.DOTALL)


def _parse_tag(tag: Any, position: int, prefixes: str) -> tuple[str, str | None]:
    """("O", None) or (prefix, type) with the prefix in ``prefixes``; raises TagError otherwise."""
    if tag == "O":
        return "O", None
    match = _TAG_RE.fullmatch(tag) if isinstance(tag, str) else None
    if match is None or match.group(1) not in "BIESLU":
        raise TagError(f"tag {tag!r} is not O or B-/I-/E-/S- followed by a type (like B-PER) — fix the tag",
                       position)
    prefix, kind = match.groups()
    if not kind or kind != kind.strip():
        raise TagError(f"tag {tag!r} has no entity type after '{prefix}-' (or spaces around it) — "
                       f"write it like {prefix}-PER", position)
    prefix = {"L": "E", "U": "S"}.get(prefix, prefix)
    if prefix not in prefixes:
        raise TagError(f"tag {tag!r} is an {prefix}- tag of the BIOES/BILOU scheme, but these tags are read as "
                       f"IOB (only O, B- and I-) — use B-/I- tags or write the whole file in BIOES", position)
    return prefix, kind


def tags_to_spans(tags: Sequence[str], tokens: Sequence[Sequence[int]]) -> list[dict]:
    """IOB2 tags to spans, read leniently as conlleval/seqeval do: an I-X after O or after another type starts
    a new entity. Raises TagError for a tag that is not O, B-X or I-X, ValueError when the lengths differ."""
    if len(tags) != len(tokens):
        raise ValueError(f"{len(tags)} tags for {len(tokens)} tokens — give one tag per token")
    spans: list[dict] = []
    current: dict | None = None
    for position, (tag, (start, end)) in enumerate(zip(tags, tokens)):
        prefix, kind = _parse_tag(tag, position, "BI")
        if prefix == "O":
            current = None
        elif prefix == "I" and current is not None and current["label"] == kind:
            current["end"] = int(end)
        else:
            current = {"start": int(start), "end": int(end), "label": kind}
            spans.append(current)
    return spans


def normalise_tags(tags: Sequence[str], scheme: str) -> list[str]:
    """One sentence's tags in ``scheme`` ("IOB1", "IOB2", "BIOES"; "BILOU" too) as IOB2.

    IOB1 and IOB2 are read alike and leniently (an I-X after O, at the start or after another type starts an
    entity, as conlleval does). BIOES is strict: I-X/E-X must continue a B-X or I-X; an entity left open
    (B-X then O) is accepted. Raises TagError for unreadable tags, ValueError for an unknown scheme.
    """
    name = _SCHEME_ALIASES.get(str(scheme).upper())
    if name is None:
        raise ValueError(f"unknown tag scheme {scheme!r} — use one of {', '.join(SCHEMES)} or BILOU")
    result: list[str] = []
    previous: tuple[str, str | None] = ("O", None)
    if name in ("IOB1", "IOB2"):
        for position, tag in enumerate(tags):
            prefix, kind = _parse_tag(tag, position, "BI")
            if prefix == "O":
                result.append("O")
            elif prefix == "I" and previous[0] in "BI" and previous[1] == kind:
                result.append(f"I-{kind}")
            else:
                result.append(f"B-{kind}")
            previous = (prefix, kind)
        return result
    for position, tag in enumerate(tags):
        prefix, kind = _parse_tag(tag, position, "BIES")
        if prefix in "IE" and not (previous[0] in "BI" and previous[1] == kind):
            before = tags[position - 1] if position else None
            where = f"the tag before it is {before!r}" if position else "it starts the sentence"
            raise TagError(
                f"tag {tag!r} does not continue a B-{kind} or I-{kind} ({where}); in BIOES/BILOU an entity starts "
                f"with B-{kind} (S-{kind} for a one-token entity) — fix the tag", position)
        result.append("O" if prefix == "O" else f"{'B' if prefix in 'BS' else 'I'}-{kind}")
        previous = (prefix, kind)
    return result


def detect_scheme(sentences_of_tags: Iterable[Sequence[str]]) -> str:
    """The tag scheme of a whole file: "BIOES" when any E-/S- tag appears ("BILOU" when only L-/U-), "IOB1"
    when any entity starts with I- (at sentence start, after O or after another type), else "IOB2".
    Unreadable tags are ignored here (normalise_tags reports them)."""
    seen_es = seen_lu = starts_with_i = False
    for tags in sentences_of_tags:
        previous: tuple[str, str | None] = ("O", None)
        for tag in tags:
            if tag == "O":
                previous = ("O", None)
                continue
            match = _TAG_RE.fullmatch(tag) if isinstance(tag, str) else None
            if match is None or match.group(1) not in "BIESLU" or not match.group(2).strip():
                previous = ("?", None)
                continue
            prefix, kind = match.groups()
            seen_es |= prefix in "ES"
            seen_lu |= prefix in "LU"
            if prefix == "I" and not (previous[0] in "BIEL" and previous[1] == kind):
                starts_with_i = True
            previous = (prefix, kind)
    if seen_es:
        return "BIOES"
    if seen_lu:
        return "BILOU"
    return "IOB1" if starts_with_i else "IOB2"


# ------------------------------------------------------------------------------------------------ CoNLL
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_COLUMN_SEP = re.compile(r"[ \t\v\f]+")
_LOOKS_LIKE_TAG = re.compile(r"O|[BIESLU]-\S+")
_FORMAT_HELP = ("a CoNLL file has one token per line with its tag in the last column (like 'Paris<TAB>B-LOC'), "
                "and a blank line after each sentence")


def read_conll(text: str | bytes) -> tuple[list[dict], list[Problem]]:
    """Rows and problems from a CoNLL column file (token first, tag last; tabs or spaces between columns).

    ``-DOCSTART-`` lines and blank lines end sentences. A line starting with ``#`` between sentences is a
    comment unless it reads as a token and a tag (``#<TAB>O`` is the token "#"); inside a sentence it is always a
    token line. The tag scheme (IOB1, IOB2, BIOES/BILOU) is detected over the whole file. Each row's text is its
    tokens joined by single spaces, ``tokens`` their offsets and ``line`` the line of its first token. Sentences
    with a missing or unreadable tag are left out, with one problem each.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            return [], [(None, "file", f"the file is not UTF-8 text ({error.reason} at byte {error.start}) — "
                                       "save it as UTF-8 and upload it again")]
    if not isinstance(text, str):
        return [], [(None, "file", f"expected the text of a CoNLL file, got {type(text).__name__}")]
    text = text.removeprefix("\ufeff")
    sentences: list[list[tuple[int, str, str | None]]] = []
    current: list[tuple[int, str, str | None]] = []
    for number, line in enumerate(_LINE_BREAK.split(text), 1):
        if not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        columns = _COLUMN_SEP.split(line.strip(" \t\v\f"))
        if columns[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
                current = []
            continue
        if (columns[0].startswith("#") and not current
                and not (len(columns) >= 2 and _LOOKS_LIKE_TAG.fullmatch(columns[-1]))):
            continue  # a comment between sentences
        current.append((number, columns[0], columns[-1] if len(columns) >= 2 else None))
    if current:
        sentences.append(current)

    if not sentences:
        return [], [(None, "file", f"no sentences found — {_FORMAT_HELP}")]
    if all(tag is None for sentence in sentences for _, _, tag in sentence):
        return [], [(None, "file", f"no line has a tag column — {_FORMAT_HELP}")]

    problems: list[Problem] = []
    complete = []
    for sentence in sentences:
        missing = [(number, token) for number, token, tag in sentence if tag is None]
        if not missing:
            complete.append(sentence)
            continue
        number, token = missing[0]
        more = [str(n) for n, _ in missing[1:]]
        also = f" (line{'s' if len(more) > 1 else ''} {', '.join(more[:10])}{' ...' if len(more) > 10 else ''} " \
               f"in this sentence also lack{'' if len(more) > 1 else 's'} a tag)" if more else ""
        problems.append((number, "tag", f"the token {token!r} has no tag{also} — add its tag after a tab "
                                        "(O when it is not part of an entity); this sentence is left out"))

    scheme = detect_scheme([tag for _, _, tag in sentence] for sentence in complete)
    rows: list[dict] = []
    for sentence in complete:
        tags = [tag for _, _, tag in sentence]
        try:
            iob2 = normalise_tags(tags, scheme)
        except TagError as error:
            problems.append((sentence[error.position][0], "tag", f"{error.message}; this sentence is left out"))
            continue
        offsets, at = [], 0
        for _, token, _ in sentence:
            offsets.append([at, at + len(token)])
            at += len(token) + 1
        rows.append({"text": " ".join(token for _, token, _ in sentence),
                     "spans": tags_to_spans(iob2, offsets), "tokens": offsets, "split": None,
                     "line": sentence[0][0]})
    problems.sort(key=lambda problem: problem[0])
    return rows, problems


# ------------------------------------------------------------------------------------------------ span lists
class SpanFormatError(ValueError):
    """Spans written in a form SpanLab cannot read; the message says what to write instead."""


_SPAN_HELP = 'write spans like [{"start": 0, "end": 5, "label": "ORG"}] or [[0, 5, "ORG"]]'


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _offset(value: Any, which: str, number: int) -> int:
    if _is_int(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise SpanFormatError(f"span {number} has {which} {_short(value)}, which is not a whole number of characters — "
                          f"{_SPAN_HELP}")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def parse_span_list(value: Any) -> list[dict] | None:
    """Spans from a Prodigy-style list of dicts, a doccano-style list of [start, end, label], or the JSON text
    of either; None, "", NaN and JSON null mean "not annotated" (None).

    Returns ``{"start", "end", "label"}`` dicts in the given order, plus ``"text"`` when the span stated its text
    (check it with span_problems). Dicts may say ``start_offset``/``end_offset`` (doccano) instead of start/end.
    Raises SpanFormatError for anything else.
    """
    if _is_missing(value):
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as error:
            raise SpanFormatError(f"the spans are not valid JSON ({error}) — {_SPAN_HELP}") from None
        if value is None:
            return None
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()  # numpy arrays (pandas / parquet list columns)
    if not isinstance(value, (list, tuple)):
        raise SpanFormatError(f"the spans are {type(value).__name__}, not a list — {_SPAN_HELP}")
    spans = []
    for number, item in enumerate(value, 1):
        if hasattr(item, "tolist") and not isinstance(item, (list, tuple, dict)):
            item = item.tolist()
        if isinstance(item, dict):
            start = item.get("start", item.get("start_offset"))
            end = item.get("end", item.get("end_offset"))
            if start is None or end is None or "label" not in item:
                keys = ", ".join(repr(str(key)) for key in item) or "none"
                raise SpanFormatError(f"span {number} needs start, end and label (its keys: {keys}) — {_SPAN_HELP}")
            label, stated = item["label"], item.get("text")
        elif isinstance(item, (list, tuple)):
            if len(item) != 3:
                raise SpanFormatError(f"span {number} is a list of {len(item)} item{'s' * (len(item) != 1)} — "
                                      f"a span list needs exactly [start, end, label]; {_SPAN_HELP}")
            start, end, label = item
            stated = None
        else:
            raise SpanFormatError(f"span {number} is {_short(item)!s}, not a span — {_SPAN_HELP}")
        span = {"start": _offset(start, "start", number), "end": _offset(end, "end", number)}
        if not isinstance(label, str):
            raise SpanFormatError(f"span {number} has label {_short(label)}, which is not text — "
                                  f"write the entity type as a string like \"ORG\"")
        span["label"] = label
        if stated is not None:
            if not isinstance(stated, str):
                raise SpanFormatError(f"span {number} states its text as {_short(stated)}, which is not text — "
                                      "write the text as a string or leave the \"text\" key out")
            span["text"] = stated
        spans.append(span)
    return spans


def _short(value: Any, limit: int = 40) -> str:
    """repr of a value, cut to about ``limit`` characters."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit - 1] + "…")
    shown = repr(value)
    return shown if len(shown) <= limit + 2 else shown[:limit] + "…"


def _where(start: Any, end: Any) -> str:
    if _is_int(start) and _is_int(end) and start >= 0 and end >= 0:
        return f"{start}-{end}"
    return f"start {start!r}, end {end!r}"


def _occurrences(text: str, needle: str, limit: int = 3) -> tuple[list[str], int]:
    found, at, count = [], text.find(needle), 0
    while at != -1 and needle:
        count += 1
        if len(found) < limit:
            found.append(f"{at}-{at + len(needle)}")
        at = text.find(needle, at + 1)
    return found, count


@functools.lru_cache(maxsize=4)
def _encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, "surrogatepass")


def _other_units(text: str, start: int, end: int, stated: str) -> str | None:
    """Which unit the offsets seem to count when not characters ("UTF-16 code units", "UTF-8 bytes")."""
    if text.isascii() or start < 0 or end <= start:
        return None
    for encoding, width, name in (("utf-16-le", 2, "UTF-16 code units (as JavaScript counts)"),
                                  ("utf-8", 1, "UTF-8 bytes")):
        try:
            if _encoded(text, encoding)[start * width:end * width].decode(encoding) == stated:
                return name
        except UnicodeError:
            continue
    return None


def span_problems(text: str, spans: Iterable[Any] | None) -> list[str]:
    """One message per problem, in span order: offsets outside the text, start >= end, an empty label, a stated
    "text" that differs from text[start:end], and overlapping spans (naming both)."""
    messages: list[tuple[int, int, str]] = []
    valid: list[tuple[int, int, int]] = []  # (start, end, number) of spans with usable offsets
    for number, span in enumerate(spans or [], 1):
        if not isinstance(span, dict) or not all(key in span for key in ("start", "end", "label")):
            messages.append((number, 0, f"span {number} ({_short(span)}) is not a span — give it start, end and "
                                        "label"))
            continue
        start, end, label = span["start"], span["end"], span["label"]
        if not (_is_int(start) and _is_int(end)):
            messages.append((number, 0, f"span {number} ({_where(start, end)}) has offsets that are not whole "
                                        "numbers — fix the offsets (they count characters from 0)"))
        elif start < 0:
            messages.append((number, 0, f"span {number} ({_where(start, end)}) starts before the text (offsets "
                                        "count characters from 0) — fix the offsets"))
        elif end > len(text):
            units = _other_units(text, start, end, span.get("text")) if isinstance(span.get("text"), str) else None
            hint = (f"; with its stated text {_short(span['text'])} the offsets look like {units} — convert them to "
                    "characters (code points)" if units else
                    " — fix the offsets (they count characters from 0; the end is exclusive)")
            messages.append((number, 0, f"span {number} ({start}-{end}) goes past the end of the text, which has "
                                        f"{len(text)} characters{hint}"))
        elif start == end:
            messages.append((number, 0, f"span {number} ({start}-{end}) is empty: its end must be greater than its "
                                        "start (the end is exclusive) — fix the offsets or remove the span"))
        elif start > end:
            messages.append((number, 0, f"span {number} ({start}-{end}) ends before it starts — swap or fix the "
                                        "offsets"))
        else:
            valid.append((start, end, number))
        usable = bool(valid) and valid[-1][2] == number
        shown = (f"span {number} ({start}-{end} {_short(text[start:end])})" if usable
                 else f"span {number} ({_where(start, end)})")
        if not isinstance(label, str):
            messages.append((number, 1, f"{shown} has label {_short(label)}, which is not text — write the entity "
                                        "type, like ORG"))
        elif not label.strip():
            messages.append((number, 1, f"{shown} has an empty label — give it an entity type such as PER or ORG, "
                                        "or remove the span"))
        stated = span.get("text")
        if stated is not None and usable:
            actual = text[start:end]
            if not isinstance(stated, str):
                messages.append((number, 2, f"{shown} states its text as {_short(stated)}, which is not text — "
                                            "write the text or leave it out"))
            elif stated != actual:
                messages.append((number, 2, _mismatch(text, f"span {number} ({start}-{end})", start, end, stated,
                                                      actual)))
    by_start = sorted(valid)
    reach: tuple[int, int, int] | None = None  # the earlier span that reaches furthest right
    for start, end, number in by_start:
        if reach is not None and start < reach[1]:
            other_start, other_end, other = reach
            messages.append((number, 3, (
                f"span {number} ({start}-{end} {_short(text[start:end])}) overlaps span {other} "
                f"({other_start}-{other_end} {_short(text[other_start:other_end])}) — remove one of them or fix "
                "the offsets")))
        if reach is None or end > reach[1]:
            reach = (start, end, number)
    messages.sort(key=lambda item: (item[0], item[1]))
    return [message for _, _, message in messages]


def _mismatch(text: str, shown: str, start: int, end: int, stated: str, actual: str) -> str:
    message = f"{shown} states its text as {_short(stated)}, but the text there is {_short(actual)}"
    if unicodedata.normalize("NFC", stated) == unicodedata.normalize("NFC", actual):
        return (f"{message}; they differ only in how accents are encoded (Unicode normalisation) — write the stated "
                "text exactly as in the text, or leave it out")
    units = _other_units(text, start, end, stated)
    if units:
        return f"{message}; the offsets look like {units} — convert them to characters (code points)"
    places, count = _occurrences(text, stated)
    if count:
        where = ", ".join(places) + (f" and {count - len(places)} more places" if count > len(places) else "")
        return f"{message}; {_short(stated)} occurs at {where} — fix the offsets"
    return f"{message}; {_short(stated)} does not occur in the text — fix the span's text or its offsets"


def clean_spans(spans: Iterable[dict] | None) -> list[dict]:
    """Sorted ``{start, end, label}`` with stripped labels and no "text" key (after span_problems found nothing)."""
    cleaned = [{"start": int(span["start"]), "end": int(span["end"]), "label": span["label"].strip()}
               for span in (spans or [])]
    return sorted(cleaned, key=lambda span: (span["start"], span["end"]))


# ------------------------------------------------------------------------------------------------ Label Studio
def is_label_studio(document: Any) -> bool:
    """True for a Label Studio JSON export: a non-empty list of tasks with "data" and "annotations"/"predictions"."""
    return (isinstance(document, list) and bool(document)
            and all(isinstance(task, dict) and "data" in task and ("annotations" in task or "predictions" in task)
                    for task in document))


def read_label_studio(document: Any, text_key: str | None = None) -> tuple[list[dict], list[Problem]]:
    """Rows and problems from a Label Studio JSON export (line = record number, 1-based).

    The text is ``data[text_key]``, else ``data["text"]``, else the first string in ``data``. Spans come from the
    first annotation that is not cancelled: its results of type "labels" (first of ``value.labels``;
    ``value.text`` is checked against the text). A task with no usable annotation gets spans None; predictions
    are ignored. Records with problems are left out.
    """
    if not isinstance(document, list):
        return [], [(None, "file", "a Label Studio export is a JSON list of tasks — export the project as JSON "
                                   "(not JSON-MIN or CSV) and upload that file")]
    rows: list[dict] = []
    problems: list[Problem] = []
    for number, task in enumerate(document, 1):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict):
            problems.append((number, "data", "this record is not a Label Studio task (it has no \"data\" object) — "
                                             "export the project as JSON"))
            continue
        key = text_key
        if text_key is not None:
            text = data.get(text_key)
            if not isinstance(text, str):
                found = ", ".join(repr(str(key)) for key, value in data.items() if isinstance(value, str)) or "none"
                problems.append((number, "text", f"data has no text under {text_key!r} (text keys found: {found}) — "
                                                 "choose the key that holds the text"))
                continue
        else:
            key = "text" if isinstance(data.get("text"), str) else next(
                (name for name, value in data.items() if isinstance(value, str)), None)
            text = None if key is None else data[key]
            if text is None:
                problems.append((number, "text", "data holds no text — each task needs its text in data, like "
                                                 "{\"data\": {\"text\": \"...\"}}"))
                continue
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            problems.append((number, "annotations", "\"annotations\" is not a list — export the project as JSON"))
            continue
        meta = _label_studio_meta(task, data, key)
        chosen = next((item for item in annotations
                       if isinstance(item, dict) and not item.get("was_cancelled")), None)
        if chosen is None:
            rows.append({"text": text, "spans": None, "tokens": None, "split": None, "line": number, **meta})
            continue
        found, bad = _label_studio_spans(chosen.get("result") or [])
        if bad:
            problems.append((number, "spans", bad))
            continue
        try:
            spans = parse_span_list(found)
        except SpanFormatError as error:
            problems.append((number, "spans", str(error)))
            continue
        messages = span_problems(text, spans)
        if messages:
            problems.extend((number, "spans", message) for message in messages)
            continue
        rows.append({"text": text, "spans": clean_spans(spans), "tokens": None, "split": None, "line": number,
                     **meta})
    return rows, problems


LABEL_STUDIO_OWN_FIELDS = ("text", "spans", "tokens", "line", "meta")


def _label_studio_meta(task: dict, data: dict, text_key: str) -> dict:
    """{"meta": {name: text}} of a task's other data fields (ticket ids, channels...) and its task id, so exports and
    predictions join back to the source; {} when there are none. Lists and objects are kept as JSON text; a field
    named like one of SpanLab's own columns gets a "data." prefix."""
    meta = {}
    if "id" in task and "id" not in data:
        meta["id"] = _meta_text(task["id"])
    for name, value in data.items():
        if name != text_key:
            name = str(name)
            meta[f"data.{name}" if name in LABEL_STUDIO_OWN_FIELDS else name] = _meta_text(value)
    return {"meta": meta} if meta else {}


def _meta_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _label_studio_spans(results: Any) -> tuple[list[dict], str | None]:
    """Span dicts from an annotation's results, or an error message."""
    if not isinstance(results, list):
        return [], "the annotation's \"result\" is not a list — export the project as JSON"
    spans = []
    for number, result in enumerate(results, 1):
        if not isinstance(result, dict) or result.get("type") != "labels":
            continue
        value = result.get("value")
        labels = value.get("labels") if isinstance(value, dict) else None
        if not isinstance(labels, list) or not labels:
            return [], (f"result {number} of the annotation has no labels (value.labels) — give the region a label "
                        "or delete it")
        if "start" not in value or "end" not in value:
            return [], (f"result {number} of the annotation has no character offsets (value.start/value.end); "
                        "only plain-text regions (the Labels tag on a Text object) can be imported")
        span = {"start": value["start"], "end": value["end"], "label": labels[0]}
        if "text" in value:
            span["text"] = value["text"]
        spans.append(span)
    return spans, None


# ------------------------------------------------------------------------------------------------ writing
_UNWRITABLE = re.compile(r"[ \t\v\f\r\n]")  # what read_conll splits lines and columns on
_ONE_COLUMN = re.compile(r"[ \t\v\f\r\n]+")


def _writable_tokens(text: str, tokens: list[tuple[int, int]]) -> bool:
    previous_end = 0
    for start, end in tokens:
        if not (previous_end <= start < end <= len(text)):
            return False
        piece = text[start:end]
        if _UNWRITABLE.search(piece) or piece == "-DOCSTART-" or piece.startswith("\ufeff"):
            return False
        previous_end = end
    return True


def to_conll(rows: Iterable[dict]) -> str:
    """IOB2 CoNLL text: ``token<TAB>tag`` lines, a blank line after each sentence.

    Rows that are not annotated (spans None) and rows without any token are left out. Tokens are
    ``tokens_for(text, spans, tokens)``, split where a span boundary falls inside one; stored tokens that could
    not be read back (empty, overlapping, outside the text, containing a space, tab or line break, starting with a
    BOM, or "-DOCSTART-") are replaced by SpanLab's words. Whitespace at the edges of a span is not kept (tokens
    never contain whitespace) and spaces, tabs or line breaks inside a label become "_" (a tag is one column).
    """
    out: list[str] = []
    for row in rows:
        spans = row.get("spans")
        if spans is None:
            continue
        text = row.get("text") or ""
        tokens = None
        if row.get("tokens") is not None:
            try:
                tokens = align_words(tokens_for(text, spans, row["tokens"]), spans)
            except (TypeError, ValueError):
                tokens = None
            if tokens is not None and not _writable_tokens(text, tokens):
                tokens = None
        if tokens is None:
            tokens = tokens_for(text, spans)
        if not tokens:
            continue
        tags = spans_to_tags([{**span, "label": _ONE_COLUMN.sub("_", span["label"].strip())} for span in spans], tokens)
        out.extend(f"{text[start:end]}\t{tag}\n" for (start, end), tag in zip(tokens, tags))
        out.append("\n")
    return "".join(out)


def _json_line(record: dict) -> bytes:
    line = json.dumps(record, ensure_ascii=False)
    # Line separators are legal inside JSON strings but split lines for many readers.
    line = line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")
    try:
        return line.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate: escape it rather than write invalid UTF-8
        return json.dumps(record, ensure_ascii=True).encode("ascii") + b"\n"


def to_span_jsonl(rows: Iterable[dict]) -> bytes:
    """Span JSON Lines (Prodigy-style), UTF-8: ``{"text", "spans": [{"start", "end", "label", "text"}] | null}``
    plus ``"tokens"`` and ``"split"`` when the row has them, then the row's metadata columns (see
    core.exporting.meta_names). Spans are written sorted."""
    from core.exporting import meta_names
    rows = list(rows)
    names = meta_names(rows, ("text", "spans", "tokens", "split"))
    out = []
    for row in rows:
        text = row["text"]
        spans = row.get("spans")
        record: dict[str, Any] = {"text": text, "spans": None if spans is None else [
            {"start": int(span["start"]), "end": int(span["end"]), "label": span["label"],
             "text": text[int(span["start"]):int(span["end"])]}
            for span in sorted(spans, key=lambda s: (s["start"], s["end"]))]}
        if row.get("tokens") is not None:
            record["tokens"] = [[int(start), int(end)] for start, end in row["tokens"]]
        if row.get("split") is not None:
            record["split"] = row["split"]
        for key, value in (row.get("meta") or {}).items():
            record[names[key]] = value
        out.append(_json_line(record))
    return b"".join(out)
