"""Extractive question answering: tokenised features, answer post-processing and SQuAD metrics.

Follows the Hugging Face ``examples/pytorch/question-answering`` recipe (``run_qa.py``
``prepare_train_features`` / ``prepare_validation_features`` and ``utils_qa.postprocess_qa_predictions``):

* A (question, context) pair is tokenised with ``truncation="only_second"``, ``return_overflowing_tokens``
  and ``stride``, so a long context becomes several overlapping windows ("features"). Tokenizers that pad on
  the left get (context, question) instead, exactly as ``run_qa`` does.
* Training features carry ``start_positions`` / ``end_positions``: the tokens covering the answer characters,
  or the CLS token (index 0) when the example is unanswerable or the answer is not fully inside the window.
* Evaluation features keep ``example_index`` and an ``offset_mapping`` in which non-context tokens are None,
  so :func:`postprocess_predictions` can map token spans back to character spans of the original context.

No padding happens here (``padding=False``); a collator pads each batch on the right. Logits handed to
:func:`postprocess_predictions` must be aligned with the feature tokens (index 0 = first token), which holds
for right padding; left-padded logits must have their padding stripped first.

Small, documented departures from ``run_qa``/``utils_qa`` (they only make results more correct):
the answer-token search is bounded to the context tokens (``run_qa`` can land on the final [SEP] when the
answer ends the window), the n-best start/end search ranks context tokens only, and candidates that map to
the same character span from overlapping windows are merged (keeping the higher score) so ``top_k``
never repeats an answer.

Answers are chosen as the (transformers 4) ``question-answering`` pipeline chooses them by default, which SpanLab's
predictor replaces (``style="pipeline"``, used everywhere: demo, CLI, evaluation during training): probabilities
per window (raw logits of different windows are not on one scale), spans widened to whole words (no "Pari" from
"Paris"), and one entry per answer text with the probabilities of its occurrences added up. ``style="utils_qa"``
keeps ``run_qa``'s own rule (raw logits, token spans, n-best softmax) for comparisons with that script.
"""
from __future__ import annotations

import ast
import json
import math
import random
import re
import string
from collections import Counter
from typing import Any, Sequence

import numpy as np

from core.tasks.base import (SPLIT_FIELD, ExportFormat, Rows, Task, TaskDataError, clean_split, is_missing,
                             optional_str, quoted, required_text, short)

CLS_INDEX = 0  # CLS position in an unpadded BERT-style feature: the null-answer score (utils_qa) and fallback label


# --------------------------------------------------------------------------------------------- features
def _check_same_length(**columns: Sequence[Any]) -> int:
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"QA columns must have one entry per example; got {detail}.")
    return next(iter(lengths.values()), 0)


def _tokenize_windows(questions: Sequence[str], contexts: Sequence[str], tokenizer, max_length: int,
                      doc_stride: int):
    """Tokenise (question, context) pairs into overlapping windows; returns (encoding, context_sequence_id)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"QA needs a fast (Rust-backed) tokenizer for offset mappings; {type(tokenizer).__name__} is not. "
            "Load it with AutoTokenizer.from_pretrained(..., use_fast=True).")
    if doc_stride < 0:
        raise ValueError(f"doc_stride must be >= 0, got {doc_stride}.")
    if len(questions) == 0:
        raise ValueError("No QA examples were given; pass at least one (question, context) pair.")
    questions = [str(q).lstrip() for q in questions]  # run_qa: leading whitespace wastes window space
    contexts = [str(c) for c in contexts]

    n_special = tokenizer.num_special_tokens_to_add(pair=True)
    question_lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    for row, q_len in enumerate(question_lengths):
        room = max_length - n_special - q_len
        if room <= doc_stride:
            raise ValueError(
                f"Row {row}: the question is {q_len} tokens, which leaves {room} tokens for the context with "
                f"max_length={max_length}; that must be more than doc_stride={doc_stride}. Shorten the question, "
                "raise max_length or lower doc_stride.")

    pad_on_right = getattr(tokenizer, "padding_side", "right") == "right"
    encoding = tokenizer(
        questions if pad_on_right else contexts,
        contexts if pad_on_right else questions,
        truncation="only_second" if pad_on_right else "only_first",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    return encoding, (1 if pad_on_right else 0)


def _model_inputs(encoding) -> dict[str, list]:
    """The per-feature model inputs (input_ids, attention_mask, token_type_ids when produced) as plain lists."""
    skip = {"offset_mapping", "overflow_to_sample_mapping"}
    return {key: [list(row) for row in values] for key, values in encoding.items() if key not in skip}


def _context_token_range(sequence_ids: list[int | None], context_id: int) -> tuple[int, int] | None:
    indices = [k for k, sid in enumerate(sequence_ids) if sid == context_id]
    return (indices[0], indices[-1]) if indices else None


def _cls_index(input_ids: list[int], tokenizer) -> int:
    """Where the "no answer" label points: the CLS (else BOS) token, as run_qa; 0 for BERT-style models."""
    for special_id in (tokenizer.cls_token_id, tokenizer.bos_token_id):
        if special_id is not None and special_id in input_ids:
            return input_ids.index(special_id)
    return CLS_INDEX


def _resolve_answer(row: int, context: str, text: str, start: int | None) -> tuple[int, int] | None:
    """Character span [start, end) of the answer in ``context``, or None when unanswerable."""
    text = "" if text is None else str(text)
    if text.strip() == "":
        return None
    if start is not None and start != start:  # NaN from a pandas column
        start = None
    if start is None:
        start = context.find(text)
        if start < 0:
            raise ValueError(f"Row {row}: answer text {text!r} does not occur in the context and no answer_start "
                             "was given. Fix the answer text or give its character offset.")
    start = int(start)
    if context[start:start + len(text)] != text:
        found = context.find(text)
        hint = (f" The text first occurs at character {found}." if found >= 0
                else " The text does not occur in the context at all.")
        raise ValueError(f"Row {row}: answer_start={start} points at {context[start:start + len(text)]!r}, "
                         f"not at the answer text {text!r}.{hint} Fix answer_start or the answer text.")
    # Surrounding whitespace is not part of any token; trim it so the token span is tight.
    stripped = text.strip()
    start += len(text) - len(text.lstrip())
    return start, start + len(stripped)


def prepare_train_features(questions: list[str], contexts: list[str], answer_texts: list[str],
                           answer_starts: list[int | None], tokenizer, max_length: int = 384,
                           doc_stride: int = 128) -> dict[str, list]:
    """Tokenise QA training examples into windows labelled with answer token positions.

    ``answer_starts[i]`` is the character offset of ``answer_texts[i]`` in ``contexts[i]`` (None: search for
    the first occurrence). An empty answer text marks an unanswerable (SQuAD v2) example. A window that does
    not contain the whole answer is labelled with the CLS index, as in ``run_qa``.
    Returns model inputs plus ``start_positions`` and ``end_positions``, one entry per window, unpadded.
    """
    _check_same_length(questions=questions, contexts=contexts, answer_texts=answer_texts,
                       answer_starts=answer_starts)
    spans = [_resolve_answer(row, str(contexts[row]), answer_texts[row], answer_starts[row])
             for row in range(len(questions))]
    encoding, context_id = _tokenize_windows(questions, contexts, tokenizer, max_length, doc_stride)

    features = _model_inputs(encoding)
    start_positions, end_positions = [], []
    for i, offsets in enumerate(encoding["offset_mapping"]):
        span = spans[encoding["overflow_to_sample_mapping"][i]]
        context_range = _context_token_range(encoding.sequence_ids(i), context_id)
        input_ids = encoding["input_ids"][i]
        start_token = end_token = _cls_index(input_ids, tokenizer)
        if span is not None and context_range is not None:
            start_char, end_char = span
            first, last = context_range
            if offsets[first][0] <= start_char and offsets[last][1] >= end_char:
                # last context token starting at/before the answer; first one ending at/after it
                start_token = max(k for k in range(first, last + 1) if offsets[k][0] <= start_char)
                end_token = max(start_token,
                                min(k for k in range(first, last + 1) if offsets[k][1] >= end_char))
        start_positions.append(start_token)
        end_positions.append(end_token)
    features["start_positions"] = start_positions
    features["end_positions"] = end_positions
    return features


def prepare_eval_features(questions: list[str], contexts: list[str], tokenizer, max_length: int = 384,
                          doc_stride: int = 128) -> dict[str, list]:
    """Tokenise QA examples for inference/evaluation.

    Returns model inputs plus ``example_index`` (the example each window came from) and ``offset_mapping``
    (character offsets into the original context; None for question and special tokens).
    """
    _check_same_length(questions=questions, contexts=contexts)
    encoding, context_id = _tokenize_windows(questions, contexts, tokenizer, max_length, doc_stride)
    features = _model_inputs(encoding)
    features["example_index"] = list(encoding["overflow_to_sample_mapping"])
    features["offset_mapping"] = [
        [tuple(offset) if sid == context_id else None for offset, sid in zip(offsets, encoding.sequence_ids(i))]
        for i, offsets in enumerate(encoding["offset_mapping"])
    ]
    features["word_offsets"] = [_word_offsets(offsets, encoding.word_ids(i))
                                for i, offsets in enumerate(features["offset_mapping"])]
    return features


def _word_offsets(offsets: list, word_ids: list[int | None]) -> list:
    """For each context token, the character span of the whole word it belongs to (as the tokenizer's
    pre-tokeniser splits words: at spaces and punctuation); None elsewhere, like ``offset_mapping``."""
    spans: dict[int, tuple[int, int]] = {}
    for offset, word in zip(offsets, word_ids):
        if offset is not None and word is not None:
            start, end = spans.get(word, offset)
            spans[word] = (min(start, offset[0]), max(end, offset[1]))
    return [spans[word] if offset is not None and word is not None else offset
            for offset, word in zip(offsets, word_ids)]


# ------------------------------------------------------------------------------------- post-processing
def _as_vector(logits) -> np.ndarray:
    if hasattr(logits, "detach"):  # torch tensor
        logits = logits.detach().float().cpu().numpy()
    return np.asarray(logits, dtype=np.float64).reshape(-1)


def _window_log_probs(start_logits: np.ndarray, end_logits: np.ndarray, offsets: list) -> tuple[np.ndarray, np.ndarray]:
    """Log-softmax of one window's start and end logits over its context tokens and CLS (as the pipeline's
    softmax); -inf elsewhere, so question, special and padding tokens never score."""
    width = max(len(start_logits), len(end_logits))
    n_tokens = min(len(offsets), width)
    allowed = np.zeros(width, dtype=bool)
    allowed[:n_tokens] = np.fromiter((o is not None for o in offsets[:n_tokens]), dtype=bool, count=n_tokens)
    allowed[CLS_INDEX] = True

    def normalise(logits: np.ndarray) -> np.ndarray:
        mask = allowed[:len(logits)]
        kept = logits[mask]
        top = kept.max()
        out = np.full(len(logits), -np.inf)
        if np.isfinite(top):
            out[mask] = kept - (top + np.log(np.exp(kept - top).sum()))
        return out

    return normalise(start_logits), normalise(end_logits)


def _window_top_spans(start_scores: np.ndarray, end_scores: np.ndarray, spans: list, k: int,
                      max_answer_length: int) -> list[tuple[float, int, int]]:
    """(score, start char, end char) of the ``k`` best valid spans of one window over *every* (start, end) pair
    within ``max_answer_length`` tokens, as the pipeline's ``decode_spans``; context tokens only."""
    n = min(len(spans), len(start_scores), len(end_scores))
    is_context = np.fromiter((spans[t] is not None for t in range(n)), dtype=bool, count=n)
    if not is_context.any():
        return []
    starts = np.where(is_context, start_scores[:n], -np.inf)
    ends = np.append(np.where(is_context, end_scores[:n], -np.inf), -np.inf)  # index n: "past the end"
    width = min(max_answer_length, n)
    end_index = np.minimum(np.arange(n)[:, None] + np.arange(width)[None, :], n)  # [start, offset] -> end token
    scores = starts[:, None] + ends[end_index]
    flat = scores.ravel()
    finite = int(np.isfinite(flat).sum())
    k = min(k, finite)
    if k == 0:
        return []
    best = np.argpartition(-flat, k - 1)[:k]
    best = best[np.argsort(-flat[best], kind="stable")]
    rows, cols = np.unravel_index(best, scores.shape)
    return [(float(flat[i]), int(spans[r][0]), int(spans[end_index[r, c]][1])) for i, r, c in zip(best, rows, cols)]


def _feature_candidates(start_logits: np.ndarray, end_logits: np.ndarray, offsets: list, n_best: int,
                        max_answer_length: int) -> list[tuple[float, int, int]]:
    """(logit score, start char, end char) for the best valid spans of one window, vectorised over n_best^2."""
    n_tokens = min(len(offsets), len(start_logits), len(end_logits))
    is_context = np.fromiter((offsets[k] is not None for k in range(n_tokens)), dtype=bool, count=n_tokens)
    if not is_context.any():
        return []
    starts = np.where(is_context, start_logits[:n_tokens], -np.inf)
    ends = np.where(is_context, end_logits[:n_tokens], -np.inf)
    k = min(n_best, int(is_context.sum()))
    top_starts = np.argpartition(-starts, k - 1)[:k]
    top_ends = np.argpartition(-ends, k - 1)[:k]

    s_idx = top_starts[:, None]
    e_idx = top_ends[None, :]
    valid = (e_idx >= s_idx) & (e_idx - s_idx + 1 <= max_answer_length)
    scores = starts[s_idx] + ends[e_idx]
    valid &= np.isfinite(scores)
    rows, cols = np.nonzero(valid)
    return [(float(scores[r, c]), int(offsets[top_starts[r]][0]), int(offsets[top_ends[c]][1]))
            for r, c in zip(rows, cols)]


def postprocess_predictions(contexts: list[str], features: dict, all_start_logits, all_end_logits,
                            n_best: int = 20, max_answer_length: int = 30, version_2: bool = False,
                            null_score_diff_threshold: float = 0.0, top_k: int = 1,
                            style: str = "pipeline", runners_up: int = 0) -> list[list[dict]]:
    """Turn per-window start/end logits into ranked answer spans of each original context.

    Returns, per example, up to ``top_k`` answers, best first: ``{"answer", "start", "end", "score",
    "span_score"}`` with ``contexts[i][start:end] == answer``. Two rule sets, each that of a Hugging Face tool:

    * ``style="pipeline"`` (default; the transformers 4 ``question-answering`` pipeline's defaults): each window's
      logits become probabilities over its context tokens and CLS; a window's best ``2 * top_k + 10`` spans are
      widened to whole words (needs the ``word_offsets`` of :func:`prepare_eval_features`); answers with the same
      text (ignoring case) merge, wherever they occur, adding up their probabilities. ``score`` is that
      probability, ``span_score`` its log; an answer's position is its first occurrence.
    * ``style="utils_qa"`` (``run_qa``'s evaluation): raw start + end logits (``span_score``) compared across
      windows, token spans, the same character span merged keeping the higher score, ``score`` the softmax over
      the example's n-best candidates.

    With ``version_2`` the null answer (``""``, start=end=-1, scored at CLS, minimum over windows) competes and is
    ranked first when its ``span_score`` exceeds the best span's by more than ``null_score_diff_threshold``.
    Without ``version_2``, an example with no valid span at all gets a single null answer with score 0.0.
    ``runners_up`` answers more are returned after the ``top_k`` (to see how close a call was) without widening
    the candidates that ``top_k`` sets, so the first ``top_k`` stay exactly those of a plain call.
    """
    if n_best < 1 or max_answer_length < 1 or top_k < 1 or runners_up < 0:
        raise ValueError(f"n_best, max_answer_length and top_k must be >= 1 and runners_up >= 0 "
                         f"(got {n_best}, {max_answer_length}, {top_k}, {runners_up}).")
    if style not in ("pipeline", "utils_qa"):
        raise ValueError(f"style must be 'pipeline' or 'utils_qa', got {style!r}.")
    pipeline = style == "pipeline"
    example_index = list(features["example_index"])
    offset_mapping = features["offset_mapping"]
    char_spans = features["word_offsets"] if pipeline and "word_offsets" in features else offset_mapping
    if not (len(example_index) == len(offset_mapping) == len(all_start_logits) == len(all_end_logits)):
        raise ValueError(f"Got {len(example_index)} features ({len(offset_mapping)} offset mappings) but "
                         f"{len(all_start_logits)} start and {len(all_end_logits)} end logit rows; "
                         "pass the logits of every feature, in feature order.")
    features_of: list[list[int]] = [[] for _ in contexts]
    for feature, example in enumerate(example_index):
        if not 0 <= example < len(contexts):
            raise ValueError(f"Feature {feature} refers to example {example}, but only {len(contexts)} "
                             "contexts were given.")
        features_of[example].append(feature)

    results = []
    for example, context in enumerate(contexts):
        if not features_of[example]:
            raise ValueError(f"Example {example} has no features; were the features built from these contexts?")
        best_by_span: dict[tuple[int, int], float] = {}  # utils_qa: best logit score per character span
        by_text: dict[str, list] = {}  # pipeline: lowercased text -> [start, end, log of summed probability]
        null_score = np.inf
        for feature in features_of[example]:
            start_logits, end_logits = _as_vector(all_start_logits[feature]), _as_vector(all_end_logits[feature])
            if pipeline:
                start_logits, end_logits = _window_log_probs(start_logits, end_logits, offset_mapping[feature])
            null_score = min(null_score, float(start_logits[CLS_INDEX] + end_logits[CLS_INDEX]))
            if not pipeline:
                for score, start, end in _feature_candidates(start_logits, end_logits, char_spans[feature], n_best,
                                                             max_answer_length):
                    if score > best_by_span.get((start, end), -np.inf):
                        best_by_span[(start, end)] = score
                continue
            for score, start, end in _window_top_spans(start_logits, end_logits, char_spans[feature], 2 * top_k + 10,
                                                       max_answer_length):
                entry = by_text.setdefault(context[start:end].lower(), [start, end, -np.inf])
                entry[2] = float(np.logaddexp(entry[2], score))  # adds probabilities, in log space
        if pipeline:
            best_by_span = {(start, end): log_total for start, end, log_total in by_text.values()}
        results.append(_rank_answers(context, best_by_span, null_score, n_best, version_2,
                                     null_score_diff_threshold, top_k + runners_up, probabilities=pipeline))
    return results


def _rank_answers(context: str, best_by_span: dict[tuple[int, int], float], null_score: float, n_best: int,
                  version_2: bool, threshold: float, top_k: int, probabilities: bool) -> list[dict]:
    """Best first; ``score`` is exp(span_score) when span scores are log-probabilities already, else the softmax
    over the candidates."""
    null = {"answer": "", "start": -1, "end": -1}
    spans = sorted(best_by_span.items(), key=lambda item: item[1], reverse=True)[:n_best]
    candidates = [({"answer": context[s:e], "start": s, "end": e}, score) for (s, e), score in spans]
    if not candidates and not version_2:
        return [{**null, "score": 0.0, "span_score": null_score}]
    if version_2:
        candidates.append((null, null_score))

    logits = np.array([score for _, score in candidates])
    if probabilities:
        probs = np.exp(logits)
    else:
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
    answers = [{**answer, "score": float(p), "span_score": float(score)}
               for (answer, score), p in zip(candidates, probs)]
    answers.sort(key=lambda a: a["span_score"], reverse=True)

    if version_2:
        null_answer = next(a for a in answers if a["start"] == -1)
        non_null = [a for a in answers if a["start"] != -1]
        if not non_null or null_score - non_null[0]["span_score"] > threshold:
            answers = [null_answer] + non_null
        else:
            answers = [non_null[0]] + [a for a in answers if a is not non_null[0]]
    return answers[:top_k]


# ------------------------------------------------------------------------------------ answers shown to people
def _overlaps(first: dict, second: dict) -> bool:
    """Whether two answers share a character of the context (the null answer, start -1, shares none)."""
    if first["start"] < 0 or second["start"] < 0:
        return False
    return first["start"] < second["end"] and second["start"] < first["end"]


def presented_answers(answers: list[dict], limit: int) -> list[dict]:
    """The ranked answers as a person is shown them (the Demo page): best first, at most ``limit``.

    * An alternative whose character span overlaps a better answer's ("is paris" under "paris") is merged into
      that answer: it is not shown, its text is listed in the better answer's ``merged``.
    * ``relative`` is each answer's share of the confidence among the answers shown: its raw ``score`` divided by
      their sum, i.e. the softmax of their log-scores. Raw scores are probabilities of one exact span and are tiny
      after a short run (0.001 shows as "0%"); the shares add up to 1. None when every score is 0 (no span found).
    * ``score`` stays the model's raw probability (for a tooltip); the input is not changed, and presenting
      presented answers again changes nothing.
    """
    kept: list[dict] = []
    for candidate in answers:
        better = next((shown for shown in kept if _overlaps(shown, candidate)), None)
        if better is not None:
            better["merged"].append(candidate["answer"])
        elif len(kept) < limit:
            kept.append({**candidate, "merged": list(candidate.get("merged") or [])})
    total = sum(max(float(a["score"]), 0.0) for a in kept)
    for shown in kept:
        shown["relative"] = max(float(shown["score"]), 0.0) / total if total > 0 else None
    return kept


def answer_tooltip(answer: dict) -> str:
    """Plain text for hovering a presented answer: its share, its raw score and what was merged into it."""
    parts = []
    if answer.get("relative") is not None:
        parts.append(f"{answer['relative']:.0%} of the confidence among the answers shown")
    parts.append(f"raw model score {float(answer['score']):.2g} (the probability of exactly this span)")
    if answer.get("merged"):
        parts.append("overlapping answers merged into it: " + ", ".join(f"'{short(text)}'" for text in
                                                                        answer["merged"]))
    return " · ".join(parts)


# --------------------------------------------------------------------------------------------- metrics
def normalize_answer(text: str) -> str:
    """Official SQuAD normalisation: lowercase, drop punctuation and articles (a/an/the), squash whitespace."""
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = set(string.punctuation)


def _f1(prediction: str, reference: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    if not pred_tokens or not ref_tokens:  # v2: unanswerable is right only if both are empty
        return float(pred_tokens == ref_tokens)
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """SQuAD v1/v2 exact match and token F1 (0-100), maximised over each example's reference answers.

    An empty reference list, or references that normalise to nothing (e.g. ``[""]``), mean unanswerable:
    only an empty prediction is correct there.
    """
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions for {len(references)} reference lists; "
                         "give one prediction per example.")
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    exact, f1 = 0.0, 0.0
    for prediction, refs in zip(predictions, references):
        if isinstance(refs, str):
            refs = [refs]
        golds = [r for r in refs if normalize_answer(r)] or [""]
        prediction = "" if prediction is None else str(prediction)
        exact += max(float(normalize_answer(prediction) == normalize_answer(g)) for g in golds)
        f1 += max(_f1(prediction, g) for g in golds)
    n = len(predictions)
    return {"exact_match": 100.0 * exact / n, "f1": 100.0 * f1 / n}


# ------------------------------------------------------------------------------------------ answer locating
MAX_CANDIDATES_SHOWN = 10


def occurrences(context: str, answer: str) -> list[int]:
    """Every start of ``answer`` in ``context`` (overlapping ones included): the one answer locator."""
    found, position = [], context.find(answer) if answer else -1
    while position >= 0:
        found.append(position)
        position = context.find(answer, position + 1)
    return found


def check_answer(context: str, answer_text: str, answer_start: Any, where: str) -> int:
    """The start of ``answer_text`` in ``context`` for an edit or a stored row: ``answer_start`` must point at it
    (when missing, the first occurrence). Raises TaskDataError otherwise."""
    if is_missing(answer_start):
        found = occurrences(context, answer_text)
        if not found:
            raise TaskDataError(f"{where}: the answer {answer_text!r} does not occur in the context")
        return found[0]
    try:
        start = int(answer_start)
    except (TypeError, ValueError):
        raise TaskDataError(f"{where}: answer_start {answer_start!r} is not a whole number") from None
    found = context[start:start + len(answer_text)] if start >= 0 else ""
    if found != answer_text:
        raise TaskDataError(f"{where}: the answer {answer_text!r} is not at position {start} of the context "
                            f"(found {found!r} there): select the answer in the context again")
    return start


def _unpack_answer(answer: str, start: str) -> tuple[str, str]:
    """Accept Hugging Face style answers cells: {'text': [...], 'answer_start': [...]} or ["..."]."""
    from core.tasks.base import cell
    stripped = answer.strip()
    if stripped[:1] not in ("{", "[") or not stripped.endswith(("}", "]")):
        return answer, start
    value = None
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(stripped)
            break
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    if isinstance(value, dict) and isinstance(value.get("text"), list):
        texts, starts = value["text"], value.get("answer_start") or []
        if texts and isinstance(texts[0], str):
            return texts[0], (cell(starts[0]) if starts and not start.strip() else start)
        if not texts:
            return "", ""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return (value[0] if value else ""), start
    return answer, start


def _parse_start(text: str) -> int | None:
    """A non-negative whole number ("12", also "12.0" as spreadsheets write it), else None."""
    try:
        number = float(text)
    except ValueError:
        return None
    if math.isfinite(number) and number.is_integer() and number >= 0:
        return int(number)
    return None


def _imported_answer(rows: Rows, pos: int, context: str, raw_answer: str, raw_start: str) -> tuple[str | None, int | None]:
    """(answer_text, answer_start) of a file row after checking/fixing the offset; adds problems or warnings."""
    raw_answer, raw_start = _unpack_answer(raw_answer, raw_start)
    answer = raw_answer.strip()
    start = None
    start_text = raw_start.strip()
    if start_text:
        start = _parse_start(start_text)
        if start is None:
            rows.problem(pos, "answer_start", f"answer_start '{start_text}' is not a whole number ≥ 0 — write the "
                                              "character offset of the answer in the context, or leave it empty to "
                                              "have it found")
            return answer, None
        start += len(raw_answer) - len(raw_answer.lstrip())  # trimmed leading spaces move the answer right
    if answer == "":
        return "", None
    if not context.strip():
        return answer, start
    if start is not None and context[start:start + len(answer)] == answer:
        return answer, start
    found = occurrences(context, answer)
    if not found:
        hint = ""
        lowered = context.lower().find(answer.lower())
        if lowered >= 0:
            hint = f" (it does appear as '{context[lowered:lowered + len(answer)]}' — capitalisation differs)"
        rows.problem(pos, "answer_text", f"'{short(answer)}' does not occur in the context{hint} — correct the answer "
                                         "or the context")
        return answer, None
    if len(found) == 1:
        if start is not None:
            rows.warn(pos, "answer_start", f"answer_start {start} does not point at '{short(answer)}'; corrected to "
                                           f"{found[0]}, the only place it occurs")
        return answer, found[0]
    shown = ", ".join(str(position) for position in found[:MAX_CANDIDATES_SHOWN])
    more = f" (and {len(found) - MAX_CANDIDATES_SHOWN} more)" if len(found) > MAX_CANDIDATES_SHOWN else ""
    if start is not None:
        rows.problem(pos, "answer_start", f"answer_start {start} does not point at '{short(answer)}', which occurs "
                                          f"{len(found)} times (at {shown}{more}) — set answer_start to the right one")
        return answer, None
    rows.warn(pos, "answer_start", f"'{short(answer)}' occurs {len(found)} times in the context (at {shown}{more}); "
                                   "the first was used — add answer_start if another one is meant")
    return answer, found[0]


def split_by_context(examples: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out whole contexts so validation questions are about passages never seen in training."""
    contexts = sorted({e["context"] for e in examples})
    if len(contexts) < 2:
        return examples, []
    random.Random(seed).shuffle(contexts)
    n_val = min(len(contexts) - 1, max(1, round(len(contexts) * fraction)))
    held = set(contexts[:n_val])
    return [e for e in examples if e["context"] not in held], [e for e in examples if e["context"] in held]


def _question_id(row: dict, number: int) -> str:
    return str(row["qid"]) if row.get("qid") not in (None, "") else f"q{number}"


def to_squad_json(rows, title: str = "spanlab") -> dict:
    """SQuAD v2.0 document: one article per title (a row's "title" metadata, as a SQuAD file's import keeps it; else
    ``title``), one paragraph per distinct context within it (first-seen order).

    Unanswerable questions (answer_text "") get ``is_impossible: true`` and no answers. Questions not yet annotated
    (answer_text None), the split and metadata other than the title are not representable in SQuAD and are left
    out; each question keeps its id (``qid``), which joins it back to the source.
    """
    articles: dict[str, dict[str, dict]] = {}
    for number, row in enumerate(_annotated(rows), start=1):
        article = articles.setdefault((row.get("meta") or {}).get("title") or title, {})
        paragraph = article.setdefault(row["context"], {"context": row["context"], "qas": []})
        answerable = row["answer_text"] != ""
        paragraph["qas"].append({
            "id": _question_id(row, number),
            "question": row["question"],
            "answers": [{"text": row["answer_text"], "answer_start": int(row["answer_start"])}] if answerable else [],
            "is_impossible": not answerable,
        })
    data = [{"title": name, "paragraphs": list(paragraphs.values())} for name, paragraphs in articles.items()]
    return {"version": "v2.0", "data": data or [{"title": title, "paragraphs": []}]}


EXPORT_COLUMNS = ["qid", "context", "question", "answer_text", "answer_start", "split"]


def _annotated(rows) -> list[dict]:
    """QA rows that have an answer decision ("" = unanswerable); rows still to annotate (None) are left out."""
    return [{column: row.get(column) for column in (*EXPORT_COLUMNS, "meta")} for row in rows
            if row.get("answer_text") is not None]


class QuestionAnswering(Task):
    name = "qa"
    title = "Extractive question answering"
    fields = {
        "context": ["context", "passage", "paragraph", "document"],
        "question": ["question", "query"],
        "answer_text": ["answer_text", "answer", "answers", "answer text"],
        "answer_start": ["answer_start", "start", "answer_start_char"],
        "qid": ["id", "qid", "question_id"],
        "split": SPLIT_FIELD,
    }
    required = ("context", "question")
    stored = ("context", "question", "answer_text", "answer_start", "qid")
    input_fields = ("question", "context")
    done_field = "answer_text"
    edit_field = "answer"
    labeled_word = "answered"
    default_lr = 3e-5
    default_max_length = 384
    default_epochs = 2.0
    # fewer labeled questions: every one trains (validation_fraction). A 20% hold-out of a few dozen questions is
    # questions never taught, and early stopping on its handful of questions picked an early, barely trained
    # checkpoint: F1 39 instead of 92 on the questions taught (tests/test_qa_small_data.py, BENCHMARKS.md section 2b)
    hold_out_from = 1000
    metric_for_best = "f1"
    reads_in_windows = True
    auto_model = "AutoModelForQuestionAnswering"
    label_widget = "answer"
    demo_widget = "answer"
    prediction_key = "answers"
    eval_metrics = [("eval/exact_match", "exact match"), ("eval/f1", "F1")]
    headline = ("exact_match", "f1")
    metric_scale = 100.0

    # --- data -----------------------------------------------------------------------------------------
    def validate(self, rows: Rows) -> None:
        result = rows.result
        n = len(rows.frame)
        contexts = rows.column("context")
        questions = rows.column("question", strip=True)
        answers = rows.column("answer_text")
        starts = rows.column("answer_start") or [""] * n
        qids = rows.column("qid", strip=True) or [""] * n
        splits, bad_split = rows.splits()
        if answers is None:
            rows.warn(None, "answer_text", f"no answer column found (accepted names: "
                                           f"{quoted(self.fields['answer_text'])}) — questions are imported without "
                                           "answers, ready to annotate")
        seen_rows: dict[tuple, int] = {}
        seen_qids: dict[str, int] = {}
        unanswerable = 0
        for pos in range(n):
            line = rows.lines[pos]
            before = len(result.problems)
            context, question = contexts[pos], questions[pos]
            if not context.strip():
                rows.problem(pos, "context", "the context is empty — paste the passage or delete the row")
            if not question:
                rows.problem(pos, "question", "the question is empty — write the question or delete the row")
            answer, start = None, None
            if answers is not None:
                answer, start = _imported_answer(rows, pos, context, answers[pos], starts[pos])
                unanswerable += answer == ""
            if len(result.problems) > before or bad_split[pos]:
                continue
            row = {"context": context, "question": question, "answer_text": answer, "answer_start": start}
            if qids[pos]:
                row["qid"] = qids[pos]
                if qids[pos] in seen_qids:
                    rows.warn(pos, "qid", f"id '{qids[pos]}' is also used on {rows.unit} {seen_qids[qids[pos]]} — "
                                          "ids should be unique")
                seen_qids.setdefault(qids[pos], line)
            if splits[pos]:
                row["split"] = splits[pos]
            key = (context, question, answer, start, splits[pos])
            if key in seen_rows:
                rows.warn(pos, "question", f"this row repeats {rows.unit} {seen_rows[key]} exactly — it is kept; "
                                           "delete it if it was not meant")
            seen_rows.setdefault(key, line)
            result.rows.append(rows.with_meta(pos, row))
        if unanswerable:
            rows.warn(None, "answer_text", f"{unanswerable} question(s) have an empty answer and are imported as "
                                           "unanswerable — fill in the answer where that is not intended")

    def clean_row(self, row: dict, number: int) -> dict:
        context = required_text(row, "context", number)
        answer_text = None if is_missing(row.get("answer_text")) else str(row["answer_text"])
        answer_start = None
        if answer_text:
            answer_start = check_answer(context, answer_text, row.get("answer_start"), f"row {number}")
        return {"split": clean_split(row.get("split"), number), "context": context,
                "question": required_text(row, "question", number), "answer_text": answer_text,
                "answer_start": answer_start, "qid": optional_str(row.get("qid"))}

    def edit_value(self, example):
        get = example.get if isinstance(example, dict) else lambda key: getattr(example, key)
        return {"answer_text": get("answer_text"), "answer_start": get("answer_start")}

    def check_edit(self, example, value, labels):
        value = value or {"answer_text": None, "answer_start": None}
        answer_text, answer_start = value.get("answer_text"), value.get("answer_start")
        if answer_text:
            if answer_start is None:
                raise TaskDataError(f"example {example.id}: give answer_start, where the answer begins in the context")
            answer_start = check_answer(example.context or "", answer_text, answer_start, f"example {example.id}")
        else:
            answer_start = None
        return {"answer_text": answer_text, "answer_start": answer_start}

    def edit_columns(self, value):
        return {"answer_text": value["answer_text"], "answer_start": value["answer_start"]}

    @property
    def exports(self) -> dict[str, ExportFormat]:
        from core import exporting
        return {
            "csv": ExportFormat("csv", "CSV", ".csv", "text/csv",
                                lambda rows, title: exporting.csv_bytes(rows, EXPORT_COLUMNS),
                                "Opens in Excel (UTF-8 with BOM)"),
            "jsonl": ExportFormat("jsonl", "JSON Lines", ".jsonl", "application/jsonl",
                                  lambda rows, title: exporting.jsonl_bytes(rows, EXPORT_COLUMNS)),
            "squad": ExportFormat("squad", "SQuAD JSON", ".squad.json", "application/json",
                                  lambda rows, title: json.dumps(to_squad_json(rows, title), ensure_ascii=False,
                                                                 indent=1).encode("utf-8"),
                                  "SQuAD v2 format; questions not yet answered are left out"),
        }

    def hf_dataset(self, rows):
        from datasets import Dataset, Features, List, Value
        records = _annotated(rows)
        features = Features({
            "id": Value("string"), "context": Value("string"), "question": Value("string"),
            "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))},
            "split": Value("string"),
        })
        columns = {
            "id": [_question_id(record, number) for number, record in enumerate(records, start=1)],
            "context": [record["context"] for record in records],
            "question": [record["question"] for record in records],
            "answers": [{"text": [record["answer_text"]], "answer_start": [int(record["answer_start"])]}
                        if record["answer_text"] else {"text": [], "answer_start": []} for record in records],
            "split": [record["split"] for record in records],
        }
        return Dataset.from_dict(columns, features=features)

    # --- training -------------------------------------------------------------------------------------
    def split(self, pool, fraction, seed):
        return split_by_context(pool, fraction, seed)

    def validation_fraction(self, n_pool: int) -> float:
        return 0.0 if n_pool < self.hold_out_from else 0.2

    def run_settings(self, examples):
        return {"version_2": any(e["answer_text"] == "" for e in examples)}

    def encode(self, examples, tokenizer, settings, for_eval):
        questions = [e["question"] for e in examples]
        contexts = [e["context"] for e in examples]
        if for_eval:
            enc = prepare_eval_features(questions, contexts, tokenizer, settings["max_length"], settings["doc_stride"])
        else:
            enc = prepare_train_features(questions, contexts, [e["answer_text"] for e in examples],
                                         [e["answer_start"] for e in examples], tokenizer, settings["max_length"],
                                         settings["doc_stride"])
        keys = list(enc.keys())
        return [{k: enc[k][i] for k in keys} for i in range(len(enc["input_ids"]))]

    def outputs(self, model_output, lengths):
        start = model_output.start_logits.float().cpu().numpy()
        end = model_output.end_logits.float().cpu().numpy()
        return [(start[i, :n], end[i, :n]) for i, n in enumerate(lengths)]

    def decode(self, examples, features, outputs, settings, top_k, runners_up=0):
        columns = {k: [f[k] for f in features] for k in ("example_index", "offset_mapping", "word_offsets")}
        answers = postprocess_predictions(
            [e["context"] for e in examples], columns, [o[0] for o in outputs], [o[1] for o in outputs],
            max_answer_length=int(settings.get("max_answer_length") or 30),
            version_2=bool(settings.get("version_2")),
            null_score_diff_threshold=float(settings.get("null_score_threshold") or 0.0), top_k=top_k or 1,
            runners_up=runners_up)
        return [[{k: a[k] for k in ("answer", "start", "end", "score")} for a in per] for per in answers]

    def score(self, examples, predictions, labels):
        return squad_metrics([p[0]["answer"] if p else "" for p in predictions],
                             [[e["answer_text"]] for e in examples])

    def answers_in_bf16(self, settings) -> bool:
        return not settings.get("version_2")  # the null-answer threshold compares scores exactly

    def trim(self, ranked, top_k):
        return ranked[:top_k or 1]

    def is_close_call(self, ranked, top_k, margin) -> bool:
        scores = [a["score"] for a in ranked[:top_k + 1]]
        if any(score <= 0.0 for score in scores[:top_k]):
            return True  # "no answer found" (score 0): let fp32 decide
        logs = [math.log(score) if score > 0.0 else -math.inf for score in scores]
        return any(a - b < margin for a, b in zip(logs, logs[1:]))

    def certainty(self, prediction) -> float:
        return float(prediction[0]["score"]) if prediction else 0.0

    def suggestion(self, prediction) -> dict:
        best = prediction[0] if prediction else {"answer": "", "start": -1, "end": -1, "score": 0.0}
        value = {"answer_text": best["answer"], "answer_start": best["start"] if best["start"] >= 0 else None}
        return {"label": best["answer"], "value": value, "score": best["score"]}

    def prediction_record(self, example, prediction) -> dict:
        return {"question": example["question"], "answers": prediction}

    # --- showing answers (the Demo page) ----------------------------------------------------------------
    def presented(self, prediction, limit: int) -> list[dict]:
        """See :func:`presented_answers`: overlapping alternatives merged, each with its relative confidence."""
        return presented_answers(prediction, limit)

    def answer_tooltip(self, answer: dict) -> str:
        return answer_tooltip(answer)


TASK = QuestionAnswering()
