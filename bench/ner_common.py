"""Shared helpers of the NER benchmark (bench/ner_quality.py and its reference sides): a small CoNLL-2003 reader
(IOB1 -> IOB2), seeded training samples, the files each side reads, entity spans <-> token tags, and scoring.

Standard library only at import time: ``bench/ner_ref_spacy.py`` imports it inside spaCy's benchmark venv, which has
no seqeval (scoring happens in the orchestrator, in the main venv).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

CONLL_FILES = ("conll2003/eng.train", "conll2003/eng.testa", "conll2003/eng.testb")
ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")


# ------------------------------------------------------------------------------------------ reading
def iob1_to_iob2(tags: list[str]) -> list[str]:
    """CoNLL-2003's IOB1 (``I-X`` starts an entity unless it continues one of the same type; ``B-X`` only between
    two adjacent entities of one type) to IOB2 (every entity starts with ``B-X``)."""
    out, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-"):
            kind = tag[2:]
            if previous == "O" or previous[2:] != kind:
                tag = "B-" + kind
        elif tag != "O" and not tag.startswith("B-"):
            raise ValueError(f"not an IOB tag: {tag!r}")
        out.append(tag)
        previous = tag
    return out


def read_conll(path: Path) -> list[dict]:
    """Sentences of a CoNLL-2003 file (``token POS chunk NER`` per line, blank line between sentences,
    ``-DOCSTART-`` lines between documents, which are dropped): ``{"tokens": [...], "tags": [...]}`` with IOB2 tags."""
    sentences, tokens, tags = [], [], []

    def flush():
        if tokens:
            sentences.append({"tokens": list(tokens), "tags": iob1_to_iob2(tags)})
        tokens.clear()
        tags.clear()

    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts:
            flush()
        elif parts[0] == "-DOCSTART-":
            flush()
        else:
            tokens.append(parts[0])
            tags.append(parts[-1])
    flush()
    return sentences


def sample_sentences(sentences: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` sentences picked with ``seed`` (all of them, in file order, when ``n`` covers the file)."""
    if n >= len(sentences):
        return list(sentences)
    picked = sorted(random.Random(seed).sample(range(len(sentences)), n))
    return [sentences[i] for i in picked]


# ------------------------------------------------------------------------------------------ files
def write_jsonl(path: Path, sentences: list[dict], with_tags: bool = True) -> Path:
    """One JSON object a line: ``{"tokens": [...], "ner_tags": [...]}`` (the column names run_ner.py looks for)."""
    with open(path, "w", encoding="utf-8") as f:
        for s in sentences:
            row = {"tokens": s["tokens"]}
            if with_tags:
                row["ner_tags"] = s["tags"]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return Path(path)


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows.append({"tokens": row["tokens"], "tags": row.get("ner_tags")})
    return rows


def write_two_column(path: Path, sentences: list[dict]) -> Path:
    """``token<TAB>IOB2-tag`` lines, a blank line between sentences (what ``python -m core import --task ner``
    reads)."""
    with open(path, "w", encoding="utf-8") as f:
        for s in sentences:
            for token, tag in zip(s["tokens"], s["tags"]):
                f.write(f"{token}\t{tag}\n")
            f.write("\n")
    return Path(path)


# ------------------------------------------------------------------------------------------ spans <-> tags
def token_offsets(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text of a token list joined by single spaces and each token's (start, end) character span in it."""
    offsets, pos = [], 0
    for token in tokens:
        offsets.append((pos, pos + len(token)))
        pos += len(token) + 1
    return " ".join(tokens), offsets


def entities_to_iob2(tokens: list[str], entities: list[dict]) -> tuple[list[str], dict]:
    """IOB2 tags of ``tokens`` from character-offset entities ``{"label", "start", "end"}`` over the tokens joined
    by single spaces. An entity takes every token its span touches (a span cutting a token takes the whole token);
    an entity overlapping tokens an earlier one (by start, then longer first) took is dropped. Returns (tags,
    counts of what needed that: partial tokens, dropped overlaps, empty spans)."""
    _, offsets = token_offsets(tokens)
    tags = ["O"] * len(tokens)
    stats = {"partial_token": 0, "overlap_dropped": 0, "empty": 0}
    for ent in sorted(entities, key=lambda e: (int(e["start"]), -int(e["end"]))):
        start, end = int(ent["start"]), int(ent["end"])
        covered = [i for i, (a, b) in enumerate(offsets) if a < end and b > start]
        if not covered:
            stats["empty"] += 1
            continue
        if any(tags[i] != "O" for i in covered):
            stats["overlap_dropped"] += 1
            continue
        if offsets[covered[0]][0] < start or offsets[covered[-1]][1] > end:
            stats["partial_token"] += 1
        label = str(ent["label"])
        for j, i in enumerate(covered):
            tags[i] = ("B-" if j == 0 else "I-") + label
    return tags, stats


# ------------------------------------------------------------------------------------------ scoring
def score(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Entity-level micro precision/recall/F1 and per-type F1 with seqeval's default (conlleval-compatible) mode."""
    import warnings

    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("predictions do not line up with the gold tags (sentence or token counts differ)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
        out = {"precision": float(precision_score(gold, predicted, zero_division=0)),
               "recall": float(recall_score(gold, predicted, zero_division=0)),
               "f1": float(f1_score(gold, predicted, zero_division=0))}
    out["per_type_f1"] = {k: float(v["f1-score"]) for k, v in report.items() if not k.endswith(" avg")}
    out["per_type_support"] = {k: int(v["support"]) for k, v in report.items() if not k.endswith(" avg")}
    return out
