"""A corpus of hostile and broken input files for ``python -m core import`` (issue 12): bad encodings, BOMs, binary
junk, archives, huge fields, broken quoting, mixed line endings, wrong JSON types, deep nesting, NUL bytes, duplicate
columns, control characters in labels, broken CoNLL tags, Label Studio and span JSONL junk, SQuAD in odd shapes.

``CASES`` maps a file name to a function returning its bytes; ``build(folder)`` writes them all. Every one must
import (exit 0) or be refused with ``error: ...`` (exit 2) for every task: never a traceback, a hang or a partial
dataset. The names carry the extension that decides how a file is read.
"""
from __future__ import annotations

import codecs
import gzip
import io
import json
import random
import zipfile
from pathlib import Path
from typing import Callable

CLASSIFICATION = "text,label\ngood film,positive\nbad film,negative\n"
QA = ("context,question,answer_text,answer_start\n"
      "acme was founded in 1999 by alice .,who founded acme ?,alice,28\n"
      "globex was founded in 2005 by bob .,when ?,2005,22\n")
CONLL = "bob B-PER\nfounded O\nacme B-ORG\n\nalice B-PER\nlives O\nin O\nparis B-LOC\n"


def _text(text: str, encoding: str = "utf-8") -> Callable[[], bytes]:
    return lambda: text.encode(encoding)


def _json(document) -> Callable[[], bytes]:
    return lambda: json.dumps(document, ensure_ascii=False).encode("utf-8")


def _jsonl(*records) -> Callable[[], bytes]:
    return lambda: "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def _squad(answers) -> Callable[[], bytes]:
    return _json({"data": [{"title": "t", "paragraphs": [{"context": "paris is in france .", "qas": [
        {"id": "1", "question": "where is paris ?", "answers": answers}]}]}]})


def _random(size: int, seed: int = 0) -> Callable[[], bytes]:
    return lambda: random.Random(seed).randbytes(size)


def _gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * 20_000_000, compresslevel=9)  # ~20 KB that would inflate to 20 MB


def _zip_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _late_nul() -> bytes:
    rows = "".join(f"row number {i} with some padding text,positive\n" for i in range(2_000))  # ~90K characters
    return ("text,label\n" + rows + "bad\x00row,negative\n").encode()


def _many_columns() -> bytes:
    header = ",".join(["text", "label"] + [f"c{i}" for i in range(10_000)])
    return (header + "\n" + ",".join(["hi", "a"] + ["x"] * 10_000) + "\n").encode()


def _huge_field() -> bytes:
    return ('text,label\n"' + "word " * 1_000_000 + '",positive\ngood,negative\n').encode()


def _long_line() -> bytes:
    return ("text,label\n" + "x" * 3_000_000).encode()


def _big_int() -> bytes:
    return ('{"text": "hi", "label": ' + "9" * 5000 + "}\n").encode()


def _deep(open_: str, close: str, depth: int = 100_000) -> Callable[[], bytes]:
    return lambda: (open_ * depth + close * depth).encode()


CASES: dict[str, Callable[[], bytes]] = {
    # --- encodings and byte-order marks
    "utf8.csv": _text(CLASSIFICATION),
    "utf8-bom.csv": lambda: codecs.BOM_UTF8 + CLASSIFICATION.encode(),
    "utf16-le-bom.csv": lambda: CLASSIFICATION.encode("utf-16"),
    "utf16-be-bom.csv": lambda: codecs.BOM_UTF16_BE + CLASSIFICATION.encode("utf-16-be"),
    "utf16-no-bom.csv": lambda: CLASSIFICATION.encode("utf-16-le"),
    "utf32-bom.csv": lambda: CLASSIFICATION.encode("utf-32"),
    "cp1252.csv": _text("text,label\ncafé “quoted” – dash,positive\nbad,negative\n", "cp1252"),
    "latin1-undefined.csv": lambda: b"text,label\n\x81\x8d\x8f caf\xe9,positive\nbad,negative\n",
    "shift-jis.csv": _text("text,label\n東京はいい,positive\n悪い,negative\n", "shift_jis"),
    "invalid-utf8-mix.csv": lambda: "text,label\nnaïve,positive\n".encode() + b"bad \xff\xfe\xc3,negative\n",
    "lone-surrogate.csv": lambda: b"text,label\n\xed\xa0\x80 surrogate,positive\nok,negative\n",
    "only-bom.csv": lambda: codecs.BOM_UTF8,
    "bom-twice.csv": lambda: codecs.BOM_UTF8 * 2 + CLASSIFICATION.encode(),
    # --- empty and near-empty
    "empty.csv": lambda: b"",
    "whitespace.csv": _text(" \n\t\n\r\n  "),
    "only-header-classification.csv": _text("text,label\n"),
    "only-header-qa.csv": _text("context,question,answer_text,answer_start\n"),
    "only-header-ner.csv": _text("text,entities\n"),
    "header-and-blank-lines.csv": _text("text,label\n\n\n,\n"),
    "single-column-no-header.csv": _text("hello\nworld\n"),
    "empty.json": lambda: b"",
    "empty-object.json": _json({}),
    "empty-array.json": _json([]),
    "empty.jsonl": _text("\n\n"),
    "empty.conll": _text("\n\n\n"),
    # --- delimiters, quoting, line endings
    "semicolon.csv": _text("text;label\ngood, really;positive\nbad;negative\n"),
    "mixed-delimiters.csv": _text("text,label\ngood;positive\nbad\tnegative\nok|x\n"),
    "unbalanced-quote.csv": _text('text,label\n"good film,positive\nbad,negative\n'),
    "quote-in-middle.csv": _text('text,label\ngo"od fi"lm,positive\nbad,negative\n'),
    "too-many-fields.csv": _text("text,label\na,b,c,d,e\nf,g\n"),
    "too-few-fields.csv": _text("text,label,split\na\nb,c\n"),
    "crlf.csv": _text(CLASSIFICATION.replace("\n", "\r\n")),
    "cr-only.csv": _text(CLASSIFICATION.replace("\n", "\r")),
    "mixed-line-endings.csv": _text("text,label\r\ngood,positive\rbad,negative\nok,positive\r\n"),
    "trailing-delimiters.csv": _text("text,label,,\ngood,positive,,\nbad,negative,,\n"),
    "wrong-extension.tsv": _text(CLASSIFICATION),
    "csv-named.json": _text(CLASSIFICATION),
    "csv-named.jsonl": _text(CLASSIFICATION),
    "json-named.csv": _json([{"text": "hi", "label": "a"}]),
    "no-extension": _text(CLASSIFICATION),
    "weird.exe": _text(CLASSIFICATION),
    "form-feed-and-eof.csv": _text("text,label\ngood\x0cfilm,positive\nbad\x1a,negative\n"),
    # --- column names
    "duplicate-columns.csv": _text("text,label,label\ngood,positive,negative\n"),
    "duplicate-columns-case.csv": _text("text,Text,label\na,b,c\n"),
    "whitespace-column-names.csv": _text(" , \ngood,positive\n"),
    "nul-in-header.csv": _text("te\x00xt,label\ngood,positive\n"),
    # --- NUL and other control characters
    "nul-early.csv": _text("text,label\nbad\x00row,positive\ngood,negative\n"),
    "nul-late.csv": _late_nul,
    "nul-json-escape.jsonl": _jsonl({"text": "a\u0000b", "label": "x"}),
    "bel-label.csv": _text("text,label\ngood,pos\x07\nbad,negative\n"),
    "rtl-override-label.csv": _text("text,label\ngood,\u202eevitisop\nbad,negative\n"),
    "escape-sequence-label.jsonl": _jsonl({"text": "a", "label": "\x1b[31mred"}, {"text": "b", "label": "x"}),
    "newline-in-label.csv": _text('text,label\ngood,"pos\nitive"\nbad,negative\n'),
    "evil\u202egnp.csv": _text(CLASSIFICATION),
    # --- unicode oddities
    "nfc-nfd-labels.csv": _text("text,label\na,caf\u00e9\nb,cafe\u0301\n"),
    "zero-width-text.csv": _text("text,label\ngo\u200bod,positive\nbad\ufeff,negative\n"),
    "zalgo.csv": _text("text,label\n" + "z" + "\u0336\u0337\u0338" * 2000 + ",positive\nbad,negative\n"),
    "emoji.csv": _text("text,label\n👩\u200d💻 great,😀\nbad,😡\n"),
    "formula-cells.csv": _text("text,label\n=HYPERLINK(\"http://x\"),=1+1\n+cmd|' /C calc'!A0,@SUM(1)\n'=x,'-1\n"),
    # --- size
    "huge-field.csv": _huge_field,
    "very-long-line.csv": _long_line,
    "many-columns.csv": _many_columns,
    "many-short-rows.csv": lambda: ("text,label\n" + "a,b\n" * 200_000).encode(),
    # --- binary and archives
    "random-bytes.csv": _random(100_000),
    "random-bytes.json": _random(50_000, 1),
    "png.csv": lambda: b"\x89PNG\r\n\x1a\n" + bytes(2000),
    "elf.csv": lambda: b"\x7fELF\x02\x01\x01" + bytes(5000),
    "pdf.csv": lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
    "gzip-bomb.csv": _gzip_bomb,
    "gzip-bomb.csv.gz": _gzip_bomb,
    "zip-named.csv": lambda: _zip_of("data.csv", CLASSIFICATION.encode() * 100),
    "xlsx-named.csv": lambda: _zip_of("[Content_Types].xml", b"<Types/>"),
    # --- JSON with wrong shapes and types
    "deep-array.json": _deep("[", "]"),
    "deep-object.json": lambda: ('{"a":' * 100_000 + "1" + "}" * 100_000).encode(),
    "deep-line.jsonl": lambda: ('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n").encode(),
    "deep-cell.csv": lambda: ('text,entities,label\nbob,"' + "[" * 60_000 + "]" * 60_000 + '",x\n').encode(),
    "top-level-number.json": _text("42"),
    "top-level-string.json": _text('"hello"'),
    "array-of-scalars.json": _json([1, 2, 3]),
    "array-mixed.json": _json([{"text": "a", "label": "b"}, 5, None]),
    "wrong-types.jsonl": _jsonl({"text": 5, "label": True}, {"text": None, "label": ["a"]},
                                {"text": {"nested": 1}, "label": {"x": 1}}, {"text": 1.5e308, "label": -0.0}),
    "nan-infinity.jsonl": _text('{"text": NaN, "label": Infinity}\n{"text": "ok", "label": -Infinity}\n'),
    "huge-number.jsonl": _text('{"text": "hi", "label": 1e999}\n'),
    "huge-int.jsonl": _big_int,
    "array-lines.jsonl": _text('["text", "label"]\n["a", "b"]\n'),
    "truncated-last-line.jsonl": _text('{"text": "a", "label": "b"}\n{"text": "c", "lab'),
    "blank-and-bom.jsonl": lambda: codecs.BOM_UTF8 + b'\n{"text": "a", "label": "b"}\n\n\n',
    "duplicate-keys.jsonl": _text('{"text": "a", "text": "b", "label": "c"}\n'),
    "lone-surrogate-escape.jsonl": _text('{"text": "\\ud800 x", "label": "a"}\n'),
    # --- SQuAD in odd shapes
    "squad-answers-object.json": _squad({"text": ["paris"], "answer_start": [0]}),
    "squad-answers-string.json": _squad("paris"),
    "squad-answers-list-of-strings.json": _squad(["paris"]),
    "squad-answers-nested-junk.json": _squad({"text": [["x"]], "answer_start": [{"a": 1}]}),
    "squad-answer-start-junk.json": _squad([{"text": "paris", "answer_start": -5}, {"text": "x", "answer_start": "y"}]),
    "squad-answer-start-float.json": _squad([{"text": "paris", "answer_start": 0.5}]),
    "squad-answer-start-huge.json": _squad([{"text": "paris", "answer_start": 10**30}]),
    "squad-data-string.json": _json({"data": "nope"}),
    "squad-data-numbers.json": _json({"data": [1, 2]}),
    "squad-no-context.json": _json({"data": [{"paragraphs": [{"qas": []}]}]}),
    "squad-qas-junk.json": _json({"data": [{"paragraphs": [{"context": "c", "qas": [1, "x", None]}]}]}),
    "qa-bad-offsets.csv": _text("context,question,answer_text,answer_start\nabc,q,zzz,1\nabc,q,b,99999999999999999999\n"
                                "abc,q,a,-1\nabc,q,a,1.5\nabc,q,a,nan\n"),
    "qa-empty-everything.csv": _text("context,question,answer_text,answer_start\n,,,\n"),
    "qa-hf-answers-cell.csv": _text('context,question,answers\nparis is big,what?,"{\'text\': [\'paris\'], '
                                    '\'answer_start\': [0]}"\nx,y,"{\'text\': ' + "[" * 3000 + "]" * 3000 + '}"\n'),
    # --- entity spans: CoNLL, span JSONL, Label Studio
    "conll-ok.conll": _text(CONLL),
    "conll-broken-tags.conll": _text("bob I-PER\nfounded X-ORG\nacme B-\n\nalice B-PER I-LOC\nparis\n"),
    "conll-bioes-junk.conll": _text("bob S-PER\nfounded E-ORG\nacme L-MISC\nx U-\n"),
    "conll-docstart-only.conll": _text("-DOCSTART- -X- -X- O\n\n"),
    "conll-tabs-and-spaces.conll": _text("bob\tB-PER\nfounded  O\nacme \t B-ORG\n"),
    "conll-huge-sentence.conll": lambda: ("word O\n" * 50_000).encode(),
    "conll-nul.conll": _text("bob B-PER\nfo\x00unded O\n"),
    "spans-junk.jsonl": _jsonl({"text": "bob lives", "spans": [{"start": -1, "end": 99, "label": "PER"}]},
                               {"text": "x", "spans": "garbage"}, {"text": "y", "spans": [[2, 1, "X"]]},
                               {"text": "z", "spans": [{"start": 0, "end": 1, "label": 5}]},
                               {"text": "bob", "spans": [[0, 3, "PER"], [0, 2, "ORG"]]}),
    "spans-deep.jsonl": lambda: ('{"text": "bob", "spans": ' + "[" * 50_000 + "]" * 50_000 + "}\n").encode(),
    "label-studio-junk.json": _json([{"data": 5}, {"annotations": "x"}, {"data": {"text": "bob"},
                                     "annotations": [{"result": [{"value": {"start": "a", "end": None,
                                                                            "labels": "PER"}}]}]}]),
    "label-studio-offsets.json": _json([{"data": {"text": "bob lives"}, "annotations": [{"result": [
        {"type": "labels", "value": {"start": 5, "end": 2, "text": "x", "labels": ["PER"]}},
        {"type": "labels", "value": {"start": 0, "end": 999, "labels": ["\u202eLOC"]}}]}]}]),
    "label-studio-empty.json": _json([{"data": {"text": "bob"}, "annotations": []}]),
    "qa-as-conll.conll": _text(QA),
}


def build(folder: Path) -> list[Path]:
    """Write every case into ``folder``; returns the paths in CASES order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in CASES.items():
        path = folder / name
        path.write_bytes(make())
        paths.append(path)
    return paths
