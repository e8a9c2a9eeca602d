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

import re
import string
from collections import Counter
from typing import Any, Sequence

import numpy as np

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
