"""Entity spans end to end in core: every import format and its errors, exports that load back, edits, windows
stitched on long texts, entity-level metrics against hand counts, and a tiny model that learns."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core import exporting, importing, storage
from core.tasks import ner, ner_io
from tests.conftest import train_and_get

NER = ner.TASK
TOY = [  # (text, [(entity, type)]) — words the tiny test model knows
    ("alice founded acme in paris .", [("alice", "PER"), ("acme", "ORG"), ("paris", "LOC")]),
    ("bob founded globex in london .", [("bob", "PER"), ("globex", "ORG"), ("london", "LOC")]),
    ("carol founded initech in berlin .", [("carol", "PER"), ("initech", "ORG"), ("berlin", "LOC")]),
    ("in 2010 bob visited rome .", [("bob", "PER"), ("rome", "LOC")]),
    ("the company acme is in madrid .", [("acme", "ORG"), ("madrid", "LOC")]),
    ("alice loved the film .", [("alice", "PER")]),
    ("the food was good .", []),
    ("carol and bob founded globex .", [("carol", "PER"), ("bob", "PER"), ("globex", "ORG")]),
]


def toy_rows() -> list[dict]:
    rows = []
    for text, entities in TOY:
        spans, at = [], 0
        for word, label in entities:
            start = text.index(word, at)
            spans.append({"start": start, "end": start + len(word), "label": label})
            at = start + len(word)
        rows.append({"text": text, "spans": spans})
    return rows


def load(data: str | bytes, filename: str):
    return importing.load_file(data.encode("utf-8") if isinstance(data, str) else data, "ner", filename=filename)


def entities(row: dict) -> list[tuple[str, str]]:
    return [(row["text"][s["start"]:s["end"]], s["label"]) for s in row["spans"]]


# ------------------------------------------------------------------------------------------ import formats

CONLL_2003 = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

Only RB I-NP O
France NNP I-NP I-LOC
and CC I-NP O
Britain NNP I-NP B-LOC
backed VBD I-VP O
"""


def test_conll_2003_four_columns_iob1_with_docstart():
    result = load(CONLL_2003, "eng.train")
    assert result.ok and result.labels == ["LOC", "MISC", "ORG", "PER"]
    assert [row["text"] for row in result.rows] == ["EU rejects German call .", "Peter Blackburn",
                                                    "Only France and Britain backed"]
    assert [entities(row) for row in result.rows] == [
        [("EU", "ORG"), ("German", "MISC")], [("Peter Blackburn", "PER")], [("France", "LOC"), ("Britain", "LOC")]]
    assert result.rows[1]["tokens"] == [[0, 5], [6, 15]]  # a token file keeps its tokens
    assert importing.guess_task(CONLL_2003.encode(), "eng.train") == "ner"


@pytest.mark.parametrize("tags, expected", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("Ada Lovelace", "PER"), ("London", "LOC")]),      # IOB2
    (["B-PER", "E-PER", "O", "S-LOC"], [("Ada Lovelace", "PER"), ("London", "LOC")]),      # BIOES
    (["B-PER", "L-PER", "O", "U-LOC"], [("Ada Lovelace", "PER"), ("London", "LOC")]),      # BILOU
    (["I-PER", "I-PER", "O", "I-LOC"], [("Ada Lovelace", "PER"), ("London", "LOC")]),      # IOB1
])
def test_two_column_token_files_in_every_tag_scheme(tags, expected):
    words = ["Ada", "Lovelace", "visited", "London"]
    data = "\n".join(f"{word}\t{tag}" for word, tag in zip(words, tags)) + "\n"
    result = load(data, "people.tsv")
    assert result.ok and entities(result.rows[0]) == expected


def test_unreadable_tags_are_named_by_line_and_the_good_sentences_kept():
    data = "Ada\tB-PER\nvisited\tO\n\nParis\tX-LOC\nis\tO\n\nRome\tS-LOC\nwaits\tO\n\nBob\tB-\n"
    result = load(data, "bad.conll")
    assert not result.ok and result.total_rows == 4 and len(result.rows) == 2
    where = {(problem.line, problem.field) for problem in result.problems}
    assert where == {(4, "tag"), (10, "tag")}
    assert "X-LOC" in str(result.problems[0]) and "left out" in str(result.problems[0])
    with pytest.raises(importing.ImportFailed, match="line 2 of short.conll: the token 'visited' has no tag"):
        load("Ada\tB-PER\nvisited\n", "short.conll")  # nothing left to import: the file is refused, saying why


def test_prodigy_and_doccano_jsonl():
    prodigy = json.dumps({"text": "Apple hired Tim Cook.", "spans": [
        {"start": 0, "end": 5, "label": "ORG", "text": "Apple"}, {"start": 12, "end": 20, "label": "PER"}]})
    doccano = json.dumps({"text": "Apple hired Tim Cook.", "label": [[12, 20, "PER"], [0, 5, "ORG"]]})
    for data in (prodigy, doccano):
        result = load(data + "\n", "tasks.jsonl")
        assert result.ok, result.summary()
        assert entities(result.rows[0]) == [("Apple", "ORG"), ("Tim Cook", "PER")]
        assert importing.guess_task(data.encode(), "tasks.jsonl") == "ner"


def test_every_span_error_is_named_with_its_line_and_field():
    text = "Apple hired Tim Cook."
    lines = [
        {"text": text, "spans": [{"start": 12, "end": 40, "label": "PER"}]},                       # outside
        {"text": text, "spans": [{"start": 0, "end": 5, "label": "ORG"}, {"start": 3, "end": 9, "label": "X"}]},
        {"text": text, "spans": [{"start": 0, "end": 5, "label": "ORG", "text": "Apply"}]},        # stated text
        {"text": text, "spans": [{"start": 0, "end": 5, "label": " "}]},                           # empty type
        {"text": text, "spans": "not a list"},
        {"text": text, "spans": [{"start": 0, "end": 5, "label": "ORG"}]},                         # good
    ]
    result = load("\n".join(json.dumps(line) for line in lines) + "\n", "bad.jsonl")
    assert len(result.rows) == 1 and [p.line for p in result.problems] == [1, 2, 3, 4, 5]
    assert all(p.field == "spans" for p in result.problems)
    messages = [p.message for p in result.problems]
    assert "past the end" in messages[0] and "overlaps" in messages[1] and "'Apply'" in messages[2]
    assert "empty label" in messages[3] and "write spans like" in messages[4]


def test_label_studio_export():
    document = [
        {"id": 1, "data": {"text": "Ada Lovelace met Babbage in London."},
         "annotations": [{"was_cancelled": True, "result": []},
                         {"result": [{"type": "labels", "value": {"start": 0, "end": 12, "text": "Ada Lovelace",
                                                                  "labels": ["PER"]}},
                                     {"type": "labels", "value": {"start": 28, "end": 34, "labels": ["LOC"]}}]}]},
        {"id": 2, "data": {"text": "Nothing marked yet."}, "annotations": []},
    ]
    result = load(json.dumps(document), "export.json")
    assert result.ok, result.summary()
    assert entities(result.rows[0]) == [("Ada Lovelace", "PER"), ("London", "LOC")]
    assert result.rows[1]["spans"] is None  # not annotated: to label in the app
    assert importing.guess_task(json.dumps(document).encode(), "export.json") == "ner"


def test_text_only_csv_is_imported_to_label_in_the_app():
    result = load("text\nApple hired Tim Cook.\nNothing here.\n", "texts.csv")
    assert result.ok and [row["spans"] for row in result.rows] == [None, None]
    assert any("no spans column" in str(warning) for warning in result.warnings)
    assert importing.guess_task(b"text\nApple hired Tim Cook.\n", "texts.csv") == "classification"  # ambiguous


# ------------------------------------------------------------------------------------------ storage and export

UNICODE_TEXT = "Zoe\u0301 met 🙂 José in 東京 at Café Ünïcode 👩‍👩‍👧 today."
UNICODE_ROWS = [
    {"text": UNICODE_TEXT, "spans": [{"start": UNICODE_TEXT.index(word), "end": UNICODE_TEXT.index(word) + len(word),
                                      "label": label} for word, label in (("Zoe\u0301", "PER"), ("José", "PER"),
                                                                          ("東京", "LOC"), ("Café Ünïcode", "ORG"))]},
    {"text": "A long one: " + "word " * 4000 + "ends in Paris.", "spans": []},
    {"text": "not labeled yet", "spans": None},
]


def test_unicode_rows_round_trip_through_every_export(spanlab_home):
    info = storage.create_dataset("uni", "ner", UNICODE_ROWS, source="test")
    assert info["labels"] == ["LOC", "ORG", "PER"] and (info["rows"], info["labeled"]) == (3, 2)
    stored = storage.load_examples("uni")
    assert [row["spans"] for row in stored] == [row["spans"] for row in UNICODE_ROWS]
    assert [stored[0]["text"][s["start"]:s["end"]] for s in stored[0]["spans"]] == ["Zoe\u0301", "José", "東京",
                                                                                    "Café Ünïcode"]
    for file_format, name in (("jsonl", "uni.jsonl"), ("csv", "uni.csv")):
        back = load(exporting.export_bytes(stored, "ner", file_format), name)
        assert back.ok, back.summary()
        assert [(row["text"], row["spans"]) for row in back.rows] == [(r["text"], r["spans"]) for r in UNICODE_ROWS]
    conll = load(exporting.export_bytes(stored, "ner", "conll"), "uni.conll")
    assert conll.ok and len(conll.rows) == 2  # the text not labeled yet is left out of a tagged file
    # a token file holds tokens, not the spacing between them: its text is the tokens joined by single spaces
    assert [(text.replace(" ", ""), label) for text, label in entities(conll.rows[0])] == [
        ("Zoe\u0301", "PER"), ("José", "PER"), ("東京", "LOC"), ("CaféÜnïcode", "ORG")]


def test_a_token_file_exports_as_the_same_file(spanlab_home):
    rows = load(CONLL_2003, "eng.train").rows
    storage.create_dataset("conll", "ner", rows)
    exported = exporting.export_bytes(storage.load_examples("conll"), "ner", "conll")
    again = load(exported, "again.conll").rows
    assert [(r["text"], r["spans"], r["tokens"]) for r in again] == [(r["text"], r["spans"], r["tokens"]) for r in rows]
    with pytest.raises(ValueError, match="exports as csv, jsonl, conll, not 'squad'"):
        exporting.export_bytes(storage.load_examples("conll"), "ner", "squad")


def test_spans_are_edited_checked_renamed_and_undone(spanlab_home):
    storage.create_dataset("toy", "ner", toy_rows()[:2] + [{"text": "alice visited rome ."}])
    first, _, third = storage.load_examples("toy")
    version = storage.set_spans(third["id"], [{"start": 0, "end": 5, "label": "PER"}], third["version"])
    with pytest.raises(storage.StaleEditError):
        storage.set_spans(third["id"], [], third["version"])
    with pytest.raises(storage.InvalidEditError, match="unknown entity type 'CITY'"):
        storage.set_spans(third["id"], [{"start": 14, "end": 18, "label": "CITY"}], version)
    with pytest.raises(storage.InvalidEditError, match="past the end of the text"):
        storage.set_spans(third["id"], [{"start": 14, "end": 99, "label": "LOC"}], version)
    with pytest.raises(storage.InvalidEditError, match="is a ner dataset: edit spans, not labels"):
        storage.set_label(third["id"], "PER", version)
    assert storage.rename_label("toy", "PER", "PERSON") == 3  # two imported rows and the edited one
    assert storage.get_dataset("toy")["labels"] == ["LOC", "ORG", "PERSON"]
    assert storage.load_examples("toy")[2]["spans"] == [{"start": 0, "end": 5, "label": "PERSON"}]
    undone = storage.undo_last("toy")
    assert undone["count"] == 3 and storage.load_examples("toy")[2]["spans"][0]["label"] == "PER"
    assert "PER" in storage.get_dataset("toy")["labels"]  # the restored type is back in the set
    storage.undo_last("toy")
    assert storage.load_examples("toy")[2]["spans"] is None and storage.get_dataset("toy")["labeled"] == 2


# ------------------------------------------------------------------------------------------ windows and decoding

@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_long_texts_are_read_in_windows_and_each_word_from_its_most_central_window(tokenizer):
    words = ["alice", "founded", "acme", "in", "paris", "."] * 40
    text = " ".join(words)
    truth = ner_io.spans_to_tags(ner_io.tags_to_spans(
        ["B-PER", "O", "B-ORG", "O", "B-LOC", "O"] * 40, ner_io.word_spans(text)), ner_io.word_spans(text))
    example = {"text": text}
    settings = {"labels": ["LOC", "ORG", "PER"], "max_length": 24, "doc_stride": 8}
    features = ner.encode([example], tokenizer, settings, for_eval=True)
    assert len(features) > 10 and all(len(f["input_ids"]) <= 24 for f in features)
    tags = ner.tag_names(settings["labels"])
    outputs = []
    last_word = len(truth) - 1
    for feature in features:  # right in the middle of each window, wrong (ORG) within 2 tokens of an edge that
        positions = [k for k, w in enumerate(feature["word_ids"]) if w is not None]  # another window overlaps
        first, last = feature["word_ids"][positions[0]], feature["word_ids"][positions[-1]]
        logits = np.zeros((len(feature["input_ids"]), len(tags)))
        for k, word in enumerate(feature["word_ids"]):
            if word is not None:
                central = ((k - positions[0] >= 2 or first == 0) and (positions[-1] - k >= 2 or last == last_word))
                logits[k, tags.index(truth[word] if central else "B-ORG")] = 10.0
        outputs.append(logits)
    found = ner.decode([example], features, outputs, tags)[0]
    assert [(e["text"], e["label"]) for e in found] == [("alice", "PER"), ("acme", "ORG"), ("paris", "LOC")] * 40
    assert all(text[e["start"]:e["end"]] == e["text"] for e in found)


def test_training_features_label_the_first_sub_token_of_each_word(tokenizer):
    rows = [{"text": "naïve zürichs café", "spans": [{"start": 6, "end": 13, "label": "LOC"}]}]
    feature = ner.encode(rows, tokenizer, {"labels": ["LOC"], "max_length": 64, "doc_stride": 16}, False)[0]
    labelled = [(w, label) for w, label in zip(feature["word_ids"], feature["labels"]) if label != -100]
    assert labelled == [(0, 0), (1, 1), (2, 0)]  # one label per word: O, B-LOC, O
    assert sum(1 for w in feature["word_ids"] if w == 1) > 1  # "zürichs" has more sub-tokens, labelled -100


# ------------------------------------------------------------------------------------------ metrics

def test_entity_metrics_match_a_hand_count():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "B-LOC", "I-LOC"], ["B-PER", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "B-LOC", "O"], ["B-PER", "B-ORG"]]
    # gold: PER 3, LOC 2; predicted: PER 3 (all right), LOC 2 (1 right: "B-LOC O" has the wrong end), ORG 1 (wrong)
    metrics = ner.entity_metrics(gold, pred, ["PER", "LOC"])
    assert metrics["precision"] == pytest.approx(4 / 6) and metrics["recall"] == pytest.approx(4 / 5)
    assert metrics["f1"] == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))
    per = metrics["per_class"]
    assert (per["PER"]["precision"], per["PER"]["recall"], per["PER"]["support"]) == (1.0, 1.0, 3)
    assert (per["LOC"]["precision"], per["LOC"]["recall"], per["LOC"]["support"]) == (0.5, 0.5, 2)
    assert (per["ORG"]["precision"], per["ORG"]["support"]) == (0.0, 0)
    assert metrics["labels"] == ["PER", "LOC", "ORG"]


def test_the_task_scores_character_spans_against_the_examples():
    examples = [{"text": "alice founded acme in paris .", "spans": toy_rows()[0]["spans"]}]
    exact = [[{"start": 0, "end": 5, "label": "PER"}, {"start": 14, "end": 18, "label": "ORG"},
              {"start": 22, "end": 27, "label": "LOC"}]]
    assert NER.score(examples, exact, ["PER", "ORG", "LOC"])["f1"] == 1.0
    wrong_type = [[{**exact[0][0], "label": "ORG"}, *exact[0][1:]]]
    assert NER.score(examples, wrong_type, ["PER", "ORG", "LOC"])["f1"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------ a tiny model learns

def test_a_tiny_model_learns_a_handful_of_sentences(spanlab_home, tiny_model_dir):
    from core.inference import evaluate, load_predictor
    from core.training import TrainConfig
    storage.create_dataset("toy", "ner", toy_rows())
    run = train_and_get(TrainConfig(dataset="toy", eval_dataset="toy", model=str(tiny_model_dir), learning_rate=1e-3,
                                    batch_size=4, device="cpu", freeze_word_embeddings="off"))  # random embeddings
    assert run["status"] == "completed", run["error"]
    assert run["metrics"]["f1"] >= 0.9 and set(run["metrics"]["per_class"]) == {"LOC", "ORG", "PER"}
    assert run["best_metric_name"] == "f1"
    points = storage.metric_frame(run["id"])
    assert {"eval/f1", "eval/precision", "eval/recall", "train/loss"} <= set(points["name"])
    assert evaluate(run["id"], "toy")["f1"] >= 0.9
    predictor = load_predictor(run["id"])
    long_text = " ".join(["alice founded acme in paris ."] * 60)  # hundreds of tokens: many windows
    found = predictor.predict(long_text)
    assert sum(e["label"] == "PER" for e in found) >= 55
    assert all(long_text[e["start"]:e["end"]] == e["text"] for e in found)
    assert all(0 < e["score"] <= 1 for e in found)


def test_small_entity_data_trains_on_every_text_for_enough_steps(spanlab_home):
    from core.training import TrainConfig, freezes_word_embeddings, prepare_data, resolve_defaults
    storage.create_dataset("toy", "ner", toy_rows())
    prepared = prepare_data(TrainConfig(dataset="toy"))
    assert len(prepared.train) == 8 and prepared.validation == []  # a hold-out of 2 texts measures nothing
    assert any("every labeled row trains" in note for note in prepared.notes)
    chosen = prepare_data(TrainConfig(dataset="toy", validation_fraction=0.25))
    assert (len(chosen.train), len(chosen.validation)) == (6, 2)  # the user's choice stands
    assert NER.validation_fraction(NER.hold_out_from) == 0.2 and NER.validation_fraction(50) == 0.0
    cfg = resolve_defaults(TrainConfig(dataset="toy"), "ner", n_train_features=8, hidden_size=384)
    assert cfg.min_steps == 400 and cfg.epochs * 1 >= 400 and cfg.learning_rate == pytest.approx(1e-4)
    assert freezes_word_embeddings("auto", "ner", 1999) and not freezes_word_embeddings("auto", "qa", 8)
    # measured on the training pool: fixed embeddings as good or better at 50-500 texts, trained ones better at 13,041
    assert not freezes_word_embeddings("auto", "ner", NER.hold_out_from)
    assert freezes_word_embeddings("on", "ner", 20_000) and freezes_word_embeddings("auto", "classification", 10**6)
    assert not freezes_word_embeddings("off", "classification", 8)
