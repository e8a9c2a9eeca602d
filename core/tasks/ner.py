"""Entity spans (named-entity recognition): typed character spans in a text.

Rows ``{text, spans, tokens, split}`` (spans None = not annotated yet, [] = no entities; tokens = a token file's
token offsets, core/tasks/ner_io.py). Training is token classification in the Hugging Face ``run_ner`` way: IOB2
tags, the label on each word's first sub-token (-100 on the others), long texts read in overlapping windows.
Predictions are entities ``{text, label, start, end, score}`` with ``text[start:end] == entity text``; each word
is read in the window where it sits most centrally. Metrics are entity-level micro precision/recall/F1 and a
per-type report counted as seqeval/conlleval count entities.
"""
from __future__ import annotations

import json
import random
import re

import numpy as np
import pandas as pd

from core.tasks import ner_io
from core.tasks.base import (SPLIT_FIELD, TEXT_SYNONYMS, ExportFormat, Problem, Rows, Task, TaskDataError,
                             clean_split, is_missing, quoted, warn_duplicates)

CONLL_SUFFIXES = (".conll", ".conllu", ".iob", ".iob1", ".iob2", ".bio", ".bioes", ".bilou", ".ner")
TABLE_SUFFIXES = (".csv", ".json", ".jsonl", ".ndjson")  # never token files, whatever their lines look like
_TAG = re.compile(r"O|[BIESLU]-\S+|-X-")


def tag_names(types: list[str]) -> list[str]:
    """The model's labels: O, then B- and I- of every entity type (IOB2)."""
    return ["O"] + [f"{prefix}-{name}" for name in types for prefix in ("B", "I")]


def looks_like_conll(text: str) -> bool:
    """A token file: no header, most lines "token ... TAG" (or -DOCSTART-), sentences between blank lines."""
    lines = [line for line in text[:65536].splitlines() if line.strip()][:200]
    if len(lines) < 2:
        return False
    tagged = sum(1 for line in lines if line.startswith("-DOCSTART-")
                 or (len(line.split()) >= 2 and _TAG.fullmatch(line.split()[-1])))
    return tagged >= 0.9 * len(lines)


class Entities(list):
    """A text's predicted entities (a list of dicts), and how sure the model was of its least certain word."""

    certainty: float = 1.0


# ------------------------------------------------------------------------------------------ features

def words_of(example: dict, spans: list[dict] | None = None) -> list[tuple[int, int]]:
    """The words a text is read in: a token file's tokens, else SpanLab's words (split at ``spans`` boundaries)."""
    return ner_io.tokens_for(example["text"], spans, example.get("tokens"))


def encode(examples: list[dict], tokenizer, settings: dict, for_eval: bool) -> list[dict]:
    """Token features in overlapping windows. Training features carry ``labels`` (a tag id on each word's first
    sub-token, -100 elsewhere); all features carry ``example_index``, ``word_ids`` and ``first`` (whether a token
    is its word's first sub-token) for decoding."""
    if not getattr(tokenizer, "is_fast", False):
        raise TaskDataError(f"entity spans need a fast (Rust-backed) tokenizer for word offsets; "
                            f"{type(tokenizer).__name__} is not")
    tag_ids = {tag: i for i, tag in enumerate(tag_names(settings["labels"]))}
    max_length = int(settings["max_length"])
    room = max_length - tokenizer.num_special_tokens_to_add()
    if room < 2:
        raise TaskDataError(f"max_length {max_length} leaves no room for the text; use at least 16")
    stride = max(0, min(int(settings.get("doc_stride") or 0), room // 2))
    all_words, all_tags = [], []
    for example in examples:
        spans = None if for_eval else (example.get("spans") or [])
        words = words_of(example, spans)
        all_words.append(words)
        all_tags.append(None if for_eval else ner_io.spans_to_tags(spans, words))
    features = []
    non_empty = [i for i, words in enumerate(all_words) if words]
    if not non_empty:
        return features
    encoding = tokenizer([[examples[i]["text"][s:e] for s, e in all_words[i]] for i in non_empty],
                         is_split_into_words=True, truncation=True, max_length=max_length, stride=stride,
                         return_overflowing_tokens=True, return_offsets_mapping=True)
    inputs = [key for key in ("input_ids", "attention_mask", "token_type_ids") if key in encoding]
    for f, sample in enumerate(encoding["overflow_to_sample_mapping"]):
        example_index = non_empty[sample]
        word_ids = encoding.word_ids(f)
        offsets = encoding["offset_mapping"][f]
        first = [w is not None and offsets[k][0] == 0 for k, w in enumerate(word_ids)]
        feature = {key: list(encoding[key][f]) for key in inputs}
        feature.update(example_index=example_index, word_ids=word_ids, first=first)
        tags = all_tags[example_index]
        if tags is not None:
            feature["labels"] = [tag_ids.get(tags[w], 0) if is_first else -100
                                 for w, is_first in zip(word_ids, first)]
        features.append(feature)
    return features


# ------------------------------------------------------------------------------------------ decoding

def _log_softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


def decode(examples: list[dict], features: list[dict], outputs: list, tags: list[str]) -> list[Entities]:
    """Entities per example. A word is read in the window where its first sub-token sits most centrally; an I- tag
    that does not continue an entity of its type starts one (as conlleval reads it)."""
    best: list[dict[int, tuple[int, np.ndarray]]] = [{} for _ in examples]  # word -> (centrality, log-probs)
    for feature, logits in zip(features, outputs):
        log_probs = _log_softmax(np.asarray(logits, dtype=np.float64))
        positions = [k for k, w in enumerate(feature["word_ids"]) if w is not None]
        if not positions:
            continue
        low, high = positions[0], positions[-1]
        chosen = best[feature["example_index"]]
        for k, (word, is_first) in enumerate(zip(feature["word_ids"], feature["first"])):
            if not is_first:
                continue
            centrality = min(k - low, high - k)
            if word not in chosen or centrality > chosen[word][0]:
                chosen[word] = (centrality, log_probs[k])
    results = []
    for example, chosen in zip(examples, best):
        words = words_of(example)
        entities, certainty, current = Entities(), 1.0, None
        for word in sorted(chosen):
            probs = np.exp(chosen[word][1])
            tag_id = int(probs.argmax())
            certainty = min(certainty, float(probs[tag_id]))
            prefix, _, kind = tags[tag_id].partition("-")
            if prefix == "O":
                current = None
                continue
            if prefix == "B" or current is None or current["label"] != kind:
                current = {"label": kind, "start": words[word][0], "end": words[word][1], "scores": []}
                entities.append(current)
            current["end"] = words[word][1]
            current["scores"].append(float(probs[tag_id]))
        for entity in entities:
            scores = entity.pop("scores")
            entity.update(text=example["text"][entity["start"]:entity["end"]], score=float(np.mean(scores)))
        entities[:] = [{key: e[key] for key in ("text", "label", "start", "end", "score")} for e in entities]
        entities.certainty = certainty
        results.append(entities)
    return results


# ------------------------------------------------------------------------------------------ metrics

def entity_metrics(gold: list[list[str]], predicted: list[list[str]], types: list[str]) -> dict:
    """Entity-level micro precision/recall/F1 (0-1) and a per-type report, counted by seqeval (conlleval's way)."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    report = classification_report(gold, predicted, output_dict=True, zero_division=0) if gold else {}
    found = [name for name in report if name not in ("micro avg", "macro avg", "weighted avg")]
    names = list(dict.fromkeys([*types, *sorted(found)]))
    per_type = {name: {key: float(value) for key, value in report.get(name, {"precision": 0.0, "recall": 0.0,
                                                                             "f1-score": 0.0, "support": 0}).items()}
                for name in names}
    return {"precision": float(precision_score(gold, predicted, zero_division=0)) if gold else 0.0,
            "recall": float(recall_score(gold, predicted, zero_division=0)) if gold else 0.0,
            "f1": float(f1_score(gold, predicted, zero_division=0)) if gold else 0.0,
            "per_class": per_type, "labels": names}


# ------------------------------------------------------------------------------------------ the task

def _problem_frame(rows: list[dict], problems: list[tuple], unit: str) -> pd.DataFrame:
    """Rows read from a CoNLL or Label Studio file as the table the importer checks: text, spans and tokens as
    cells, then each row's metadata fields (Label Studio's other data fields) as further columns, kept as metadata
    (or a split column, when one is named so)."""
    extra = list(dict.fromkeys(name for row in rows for name in row.get("meta") or {}))
    frame = pd.DataFrame([{"text": row["text"], "spans": json.dumps(row["spans"], ensure_ascii=False),
                           "tokens": "" if row.get("tokens") is None else json.dumps(row["tokens"]),
                           **{name: (row.get("meta") or {}).get(name, "") for name in extra}}
                          for row in rows], columns=["text", "spans", "tokens", *extra], dtype=object)
    frame.index = pd.Index([row["line"] for row in rows], name=unit)
    frame.attrs["problems"] = list(problems)
    return frame


def _parse_tokens(value, text: str) -> list[list[int]] | None:
    """A tokens cell ([[start, end], ...] in text order, inside the text) or None; ValueError when unreadable."""
    if is_missing(value) or value == "":
        return None
    tokens = json.loads(value) if isinstance(value, str) else value
    if not isinstance(tokens, list) or not all(
            isinstance(t, (list, tuple)) and len(t) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                                 for x in t) for t in tokens):
        raise ValueError("tokens must be a list of [start, end] pairs of whole numbers")
    previous_end = 0
    for start, end in tokens:
        if not (previous_end <= start <= end <= len(text)):
            raise ValueError(f"token [{start}, {end}] is outside the text or out of order")
        previous_end = end
    return [[start, end] for start, end in tokens]


def _clean_spans(text: str, value, where: str) -> list[dict] | None:
    """The spans of ``text`` from a stored value (list or JSON text), checked; TaskDataError names ``where``."""
    try:
        spans = ner_io.parse_span_list(value)
    except ner_io.SpanFormatError as error:
        raise TaskDataError(f"{where}: {error}") from None
    if spans is None:
        return None
    problems = ner_io.span_problems(text, spans)
    if problems:
        raise TaskDataError(f"{where}: {problems[0]}")
    return ner_io.clean_spans(spans)


class EntitySpans(Task):
    name = "ner"
    title = "Entity spans (NER)"
    fields = {
        "text": ["text", *TEXT_SYNONYMS],
        "spans": ["spans", "entities", "label", "labels", "ner", "entity_spans"],
        "tokens": ["tokens", "token_offsets"],
        "split": SPLIT_FIELD,
    }
    required = ("text",)
    stored = ("text", "spans", "tokens")
    input_fields = ("text",)
    predict_reads = ("text", "tokens")  # a token file's words are the words predicted
    done_field = "spans"
    edit_field = "spans"
    has_labels = True
    labeled_word = "labeled"
    default_lr = 5e-5
    default_max_length = 128
    default_epochs = 3.0
    default_min_steps = 400   # chosen on the training pool: bench/ner_tune.py, BENCHMARKS.md section 7
    hold_out_from = 2000      # fewer labeled texts: every one trains (a 20% hold-out cost 1.5-3 F1 points, 50-1,000)
    # fixed word embeddings, measured on the pool: as good or better at 50-500 texts, steps ~10% faster; on 13,041
    # texts training them scored higher (BENCHMARKS.md, section 7)
    freezes_word_embeddings_below = 2000
    metric_for_best = "f1"
    reads_in_windows = True
    auto_model = "AutoModelForTokenClassification"
    label_widget = "spans"
    demo_widget = "entities"
    prediction_key = "entities"
    eval_metrics = [("eval/f1", "F1"), ("eval/precision", "precision"), ("eval/recall", "recall")]
    headline = ("precision", "recall", "f1")

    # --- data -----------------------------------------------------------------------------------------
    def _is_token_file(self, text: str, suffix: str) -> bool:
        return suffix in CONLL_SUFFIXES or (suffix not in TABLE_SUFFIXES and looks_like_conll(text))

    def claims(self, text: str, suffix: str) -> bool:
        if self._is_token_file(text, suffix):
            return True
        if suffix == ".json":
            try:
                return ner_io.is_label_studio(json.loads(text))
            except (ValueError, RecursionError):
                return False
        return False

    def read(self, text: str, suffix: str, label: str) -> pd.DataFrame | None:
        if self._is_token_file(text, suffix):
            rows, problems = ner_io.read_conll(text)
            return _problem_frame(rows, problems, "line")
        if suffix == ".json" or (not suffix and text.lstrip()[:1] == "["):
            try:
                document = json.loads(text)
            except (ValueError, RecursionError):
                return None
            if ner_io.is_label_studio(document):
                rows, problems = ner_io.read_label_studio(document)
                return _problem_frame(rows, problems, "record")
        return None

    def affinity(self, frame: pd.DataFrame, mapping: dict[str, str]) -> int:
        column = mapping.get("spans")
        if column is None:
            return -1  # a text-only table is classification's until someone says otherwise
        for value in frame[column].head(20):
            try:
                if ner_io.parse_span_list(value) is not None:
                    return 1
            except ner_io.SpanFormatError:
                return -1
        return -1

    def validate(self, rows: Rows) -> None:
        result = rows.result
        for line, field_name, message in rows.frame.attrs.get("problems", []):
            result.problems.append(Problem(line, field_name, message, rows.unit))
        result.total_rows += sum(1 for line, _, _ in rows.frame.attrs.get("problems", []) if line is not None)
        texts = rows.column("text")
        span_cells = rows.column("spans")
        token_cells = rows.column("tokens") or [""] * len(texts)
        splits, bad = rows.splits()
        if span_cells is None:
            rows.warn(None, "spans", f"no spans column found (accepted names: {quoted(self.fields['spans'])}) — "
                                     "all texts are imported unlabeled, ready to mark entities in the app")
        bad = bad.copy()
        kept: list[dict] = []
        for pos, text in enumerate(texts):
            if not text.strip():
                rows.problem(pos, "text", "the text is empty — write the text or delete the row")
                bad[pos] = True
                continue
            spans = None
            if span_cells is not None:
                try:
                    spans = ner_io.parse_span_list(span_cells[pos])
                except ner_io.SpanFormatError as error:
                    rows.problem(pos, "spans", str(error))
                    bad[pos] = True
                    continue
                problems = ner_io.span_problems(text, spans or [])
                for message in problems:
                    rows.problem(pos, "spans", message)
                if problems:
                    bad[pos] = True
                    continue
            try:
                tokens = _parse_tokens(token_cells[pos], text)
            except (ValueError, RecursionError) as error:
                rows.problem(pos, "tokens", f"{error} — fix the token offsets or leave the column empty")
                bad[pos] = True
                continue
            if bad[pos]:
                continue
            row = {"text": text, "spans": None if spans is None else ner_io.clean_spans(spans)}
            if tokens is not None:
                row["tokens"] = tokens
            if splits[pos]:
                row["split"] = splits[pos]
            kept.append(rows.with_meta(pos, row))
        keys = pd.DataFrame({"text": texts, "spans": span_cells or [""] * len(texts),
                             "split": pd.Series(splits, dtype=object).fillna("").tolist()})
        warn_duplicates(rows, keys, bad, "text")
        unlabeled = sum(row["spans"] is None for row in kept)
        if span_cells is not None and unlabeled:
            rows.warn(None, "spans", f"{unlabeled} text(s) have no spans value and are imported unlabeled — "
                                     "write [] for a text with no entities")
        result.rows = kept
        result.labels = sorted({span["label"] for row in kept for span in row["spans"] or []})

    def clean_row(self, row: dict, number: int) -> dict:
        text = row.get("text")
        if is_missing(text) or not str(text).strip():
            raise TaskDataError(f"row {number}: 'text' is empty: every row needs a text")
        text = str(text)
        try:
            tokens = _parse_tokens(row.get("tokens"), text)
        except (ValueError, RecursionError) as error:
            raise TaskDataError(f"row {number}: {error}") from None
        return {"split": clean_split(row.get("split"), number), "text": text,
                "spans": _clean_spans(text, row.get("spans"), f"row {number}"), "tokens": tokens}

    def row_labels(self, row: dict) -> set[str]:
        return {span["label"] for span in row.get("spans") or []}

    def edit_value(self, example):
        spans = example.get("spans") if isinstance(example, dict) else example.spans
        return None if spans is None else list(spans)

    def check_edit(self, example, value, labels):
        spans = _clean_spans(example.text or "", value, f"example {example.id}")
        unknown = sorted({span["label"] for span in spans or []} - set(labels))
        if unknown:
            raise TaskDataError(f"unknown entity type {unknown[0]!r} (types: {quoted(labels) or 'none yet'}): "
                                "add the type first")
        return spans

    def relabel(self, value, old, new):
        if value is None:
            return None
        return [{**span, "label": new if span["label"] == old else span["label"]} for span in value]

    def label_uses(self, value) -> set[str]:
        return {span["label"] for span in value or []}

    @property
    def exports(self) -> dict[str, ExportFormat]:
        from core import exporting
        return {
            "csv": ExportFormat("csv", "CSV", ".csv", "text/csv",
                                lambda rows, title: exporting.csv_bytes(rows, ["text", "spans", "split"]),
                                "text, spans as JSON, split; opens in Excel"),
            "jsonl": ExportFormat("jsonl", "span JSONL", ".jsonl", "application/jsonl",
                                  lambda rows, title: ner_io.to_span_jsonl(rows),
                                  'Prodigy-style {"text", "spans": [{"start", "end", "label"}]} per line'),
            "conll": ExportFormat("conll", "CoNLL (IOB2)", ".conll", "text/plain",
                                  lambda rows, title: ner_io.to_conll(rows).encode("utf-8"),
                                  "token<TAB>tag lines, IOB2; texts not labeled yet are left out"),
        }

    def hf_dataset(self, rows):
        from datasets import Dataset, Features, List, Value
        records = [row for row in rows if row.get("spans") is not None]
        features = Features({"text": Value("string"), "tokens": List(Value("string")),
                             "ner_tags": List(Value("string")), "split": Value("string")})
        columns = {"text": [], "tokens": [], "ner_tags": [], "split": []}
        for row in records:
            words = ner_io.tokens_for(row["text"], row["spans"], row.get("tokens"))
            columns["text"].append(row["text"])
            columns["tokens"].append([row["text"][s:e] for s, e in words])
            columns["ner_tags"].append(ner_io.spans_to_tags(row["spans"], words))
            columns["split"].append(row.get("split"))
        return Dataset.from_dict(columns, features=features)

    # --- training -------------------------------------------------------------------------------------
    def split(self, pool, fraction, seed):
        if len(pool) < 2:
            return pool, []
        order = list(range(len(pool)))
        random.Random(seed).shuffle(order)
        n_val = min(len(pool) - 1, max(1, round(len(pool) * fraction)))
        held = set(order[:n_val])
        return [e for i, e in enumerate(pool) if i not in held], [e for i, e in enumerate(pool) if i in held]

    def validation_fraction(self, n_pool: int) -> float:
        return 0.0 if n_pool < self.hold_out_from else 0.2

    def training_labels(self, dataset_labels, train, validation):
        found = {span["label"] for e in train for span in e["spans"] or []}
        if not found:
            raise TaskDataError("the dataset has no entity marked in its training texts: mark some entities first "
                                "(texts labeled as having none count, but the model needs examples of each type)")
        seen = found | {span["label"] for e in validation for span in e["spans"] or []}
        return [name for name in dataset_labels if name in seen] + sorted(seen - set(dataset_labels))

    def encode(self, examples, tokenizer, settings, for_eval):
        return encode(examples, tokenizer, settings, for_eval)

    def head_config(self, labels):
        tags = tag_names(list(labels or []))
        return {"num_labels": len(tags), "id2label": dict(enumerate(tags)),
                "label2id": {tag: i for i, tag in enumerate(tags)}, "ignore_mismatched_sizes": True}

    def outputs(self, model_output, lengths):
        logits = model_output.logits.float().cpu().numpy()
        return [logits[i, :n] for i, n in enumerate(lengths)]

    def decode(self, examples, features, outputs, settings, top_k, runners_up=0):
        return decode(examples, features, outputs, tag_names(settings["labels"]))

    def score(self, examples, predictions, labels):
        gold, predicted = [], []
        for example, entities in zip(examples, predictions):
            words = words_of(example, example.get("spans") or [])
            gold.append(ner_io.spans_to_tags(example.get("spans") or [], words))
            predicted.append(ner_io.spans_to_tags(entities, words))
        return entity_metrics(gold, predicted, list(labels))

    def certainty(self, prediction) -> float:
        return float(getattr(prediction, "certainty", 1.0))

    def suggestion(self, prediction) -> dict:
        spans = [{"start": e["start"], "end": e["end"], "label": e["label"], "score": e["score"]} for e in prediction]
        return {"value": spans, "label": f"{len(spans)} entities", "score": self.certainty(prediction)}

    def prediction_record(self, example, prediction) -> dict:
        return {"text": example["text"], "entities": list(prediction)}


TASK = EntitySpans()
