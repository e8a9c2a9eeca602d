"""The few-shot recipe (core/fewshot.py): the mean-pooling head computes a mean and still loads in plain
transformers, the linear probe is copied exactly into the classifier, the contrastive loss and batches behave,
and small datasets train with it by default, end to end."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core import fewshot, storage
from core.training import TrainConfig, TrainingError, collate, prepare_data
from tests.conftest import sentiment_rows, train_and_get


def _classifier(folder, labels=("negative", "positive")):
    from core.models import load_model
    return load_model(folder, "classification", list(labels)).eval()


def _tokenizer(folder):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(folder)


def test_mean_pooling_head_reads_the_masked_mean_and_loads_in_plain_transformers(tiny_model_dir, tmp_path):
    tokenizer = _tokenizer(tiny_model_dir)
    texts = ["great film", "the food was really very bad and the service was slow"]
    model = _classifier(tiny_model_dir)
    with torch.no_grad():
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        hidden = model.bert(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        mean = (hidden * mask).sum(1) / mask.sum(1)
        expected = torch.nn.functional.layer_norm(mean, (mean.shape[-1],), eps=model.config.layer_norm_eps)
    layers = model.config.num_hidden_layers
    assert fewshot.add_mean_pooling_head(model)
    assert model.config.num_hidden_layers == layers + 1
    with torch.no_grad():
        padded = model.bert(**enc).last_hidden_state[:, 0]
        alone = model.bert(**tokenizer(texts[:1], return_tensors="pt")).last_hidden_state[0, 0]
    scale = expected.abs().max()
    assert torch.allclose(padded, expected, atol=5e-3 * scale)  # padding does not leak into the mean
    assert torch.allclose(alone, expected[0], atol=5e-3 * scale)
    pooled = model.bert(**enc).pooler_output  # scaled identity + tanh: a centred, ~unit-length embedding
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(2), atol=0.05)

    model.save_pretrained(tmp_path / "saved")
    from transformers import AutoModelForSequenceClassification
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved").eval()
    assert type(loaded).__name__ == "BertForSequenceClassification"
    assert loaded.config.num_hidden_layers == layers + 1
    with torch.no_grad():
        assert torch.allclose(loaded(**enc).logits, model(**enc).logits, atol=1e-5)


def test_unknown_architectures_are_left_alone():
    class Plain(torch.nn.Module):
        base_model_prefix = "encoder"

        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(4, 4)
            self.classifier = torch.nn.Linear(4, 2)

    model = Plain()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert fewshot.add_mean_pooling_head(model) is False
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("n_labels", [2, 3])
def test_linear_probe_is_copied_exactly_into_the_classifier(tiny_model_dir, n_labels):
    from sklearn.linear_model import LogisticRegression
    labels = ["a", "b", "c"][:n_labels]
    model = _classifier(tiny_model_dir, labels)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, model.config.hidden_size)).astype(np.float32)
    y = [i % n_labels for i in range(30)]
    fewshot.init_head_with_linear_probe(model, X, y, n_labels)
    probe = LogisticRegression(C=fewshot.PROBE_C, max_iter=2000).fit(X, y)
    with torch.no_grad():
        probs = torch.softmax(model.classifier(torch.from_numpy(X)), -1).numpy()
    np.testing.assert_allclose(probs, probe.predict_proba(X), atol=1e-4)


def test_a_label_without_training_examples_is_never_preferred(tiny_model_dir):
    model = _classifier(tiny_model_dir, ["a", "b", "c"])
    X = np.random.default_rng(1).normal(size=(20, model.config.hidden_size)).astype(np.float32)
    fewshot.init_head_with_linear_probe(model, X, [0, 2] * 10, 3)
    with torch.no_grad():
        logits = model.classifier(torch.from_numpy(X))
    assert (logits.argmax(-1) != 1).all()


def test_contrastive_loss_rewards_label_clusters():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert fewshot.supervised_contrastive_loss(clustered, labels) < fewshot.supervised_contrastive_loss(mixed, labels)
    alone = torch.randn(3, 2, requires_grad=True)
    loss = fewshot.supervised_contrastive_loss(alone, torch.tensor([0, 1, 2]))  # no same-label pair at all
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_pairwise_cosine_loss_is_zero_for_perfect_clusters_and_counts_every_pair():
    labels = torch.tensor([0, 0, 1])
    perfect = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # same label: cos 1; other label: cos 0
    assert float(fewshot.pairwise_cosine_loss(perfect, labels)) == pytest.approx(0.0, abs=1e-7)
    swapped = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # the same-label pair orthogonal, another aligned
    assert float(fewshot.pairwise_cosine_loss(swapped, labels)) == pytest.approx(2 / 3)  # pairs: (1-0)^2, (1-0)^2, 0
    embeddings = torch.randn(6, 4, requires_grad=True)
    fewshot.pairwise_cosine_loss(embeddings, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    assert embeddings.grad.abs().sum() > 0


def test_contrastive_batches_cover_every_example_each_epoch_with_mixed_labels():
    label_ids = [0] * 10 + [1] * 6 + [2] * 4
    plan = fewshot.contrastive_batches(label_ids, epochs=3, batch_size=8, seed=0)
    covered = sorted(i for batch in plan for i in batch)
    assert covered == sorted(list(range(20)) * 3)
    assert all(len({label_ids[i] for i in batch}) >= 2 for batch in plan)
    assert plan == fewshot.contrastive_batches(label_ids, epochs=3, batch_size=8, seed=0)


def test_more_labels_get_a_longer_contrastive_stage_within_a_cap():
    assert [fewshot.contrastive_epochs(n) for n in (1, 2, 4)] == [10, 10, 20]
    assert fewshot.contrastive_epochs(50) == fewshot.MAX_CONTRASTIVE_EPOCHS


def test_recipe_applies_to_small_classification_data_only():
    limit = fewshot.MAX_EXAMPLES_PER_LABEL
    assert fewshot.applies("classification", 16, 2)
    assert fewshot.applies("classification", 2 * limit, 2)
    assert not fewshot.applies("classification", 2 * limit + 1, 2)
    assert not fewshot.applies("qa", 16, 0)
    assert fewshot.applies("classification", 10_000, 2, mode="on")
    assert not fewshot.applies("classification", 16, 2, mode="off")
    with pytest.raises(ValueError):
        fewshot.applies("classification", 16, 2, mode="maybe")


def test_small_dataset_trains_on_every_example_by_default(spanlab_home):
    storage.create_dataset("sentiment", "classification", sentiment_rows(8))
    prepared = prepare_data(TrainConfig(dataset="sentiment"))
    assert prepared.few_shot and len(prepared.train) == 16 and prepared.validation == []
    assert any("few-shot" in note for note in prepared.notes)
    off = prepare_data(TrainConfig(dataset="sentiment", few_shot="off"))
    assert not off.few_shot and len(off.validation) > 0


@pytest.mark.parametrize("label, expected", [
    ("positive", True), ("Sci/Tech", True), ("billing issue", True), ("no", True), ("not_spam", True),
    ("0", False), ("12", False), ("LABEL_1", False), ("label 3", False), ("c7", False), ("A1", False), ("-1", False),
])
def test_labels_that_read_as_words(label, expected):
    assert fewshot.label_is_word(label) is expected


def test_examples_made_from_label_names():
    made = fewshot.label_examples(["negative", "not_spam"])
    assert [m["text"] for m in made] == ["This sentence is negative."] * fewshot.LABEL_EXAMPLE_COPIES + \
        ["This sentence is not spam."] * fewshot.LABEL_EXAMPLE_COPIES
    assert [m["label"] for m in made] == ["negative"] * 2 + ["not_spam"] * 2 and all(m["synthetic"] for m in made)
    assert fewshot.label_examples(["negative", "LABEL_1"]) == []  # auto: one code-like label turns them off
    assert fewshot.label_examples(["negative", "positive"], sentence_encoder=False) == []  # auto: not measured
    assert len(fewshot.label_examples(["0", "1"], mode="on", sentence_encoder=False)) == 4
    assert fewshot.label_examples(["negative", "positive"], mode="off") == []
    with pytest.raises(ValueError, match="label_examples must be auto, on or off"):
        fewshot.label_examples(["a"], mode="yes")


def test_sentence_encoders_are_recognised_by_their_folder(tiny_model_dir, tmp_path):
    from core import models
    assert fewshot.is_sentence_encoder(models.builtin_folder())  # the built-in MiniLM
    assert not fewshot.is_sentence_encoder(tiny_model_dir)


def test_few_shot_runs_of_a_sentence_encoder_train_on_label_name_examples(spanlab_home, tiny_model_dir, tmp_path):
    import shutil
    encoder = tmp_path / "tiny-sentence-encoder"
    shutil.copytree(tiny_model_dir, encoder)
    (encoder / "config_sentence_transformers.json").write_text("{}", encoding="utf-8")
    storage.create_dataset("sentiment", "classification", sentiment_rows(8))
    storage.create_dataset("coded", "classification",
                           [{**r, "label": "1" if r["label"] == "positive" else "0"} for r in sentiment_rows(8)])

    def run(dataset, model, **settings):
        got = train_and_get(TrainConfig(dataset=dataset, model=str(model), batch_size=8, device="cpu", max_steps=2,
                                        **settings))
        assert got["status"] == "completed", got["error"]
        return got["params"]

    params = run("sentiment", encoder)
    assert params["n_train"] == 16 and params["n_label_examples"] == 2 * fewshot.LABEL_EXAMPLE_COPIES
    assert any("examples made from the label names (\"This sentence is negative.\")" in note for note in params["notes"])
    assert run("sentiment", encoder, label_examples="off")["n_label_examples"] == 0
    assert run("coded", encoder)["n_label_examples"] == 0  # codes: nothing to say about them
    assert run("sentiment", tiny_model_dir)["n_label_examples"] == 0  # not a sentence encoder: auto leaves them out
    assert run("sentiment", tiny_model_dir, label_examples="on")["n_label_examples"] == 4
    assert run("sentiment", encoder, few_shot="off")["n_label_examples"] == 0
    neutral = {"text": "an ordinary day", "label": "neutral"}
    storage.create_dataset("three", "classification", sentiment_rows(8) + [{**neutral, "split": "test"}])
    storage.create_dataset("three-eval", "classification", sentiment_rows(2) + [neutral])
    params = run("three", encoder, eval_dataset="three-eval")  # "neutral" is a label, but no training row has it
    assert "neutral" in params["labels"] and params["n_label_examples"] == 4  # so no made-up examples for it
    with pytest.raises(TrainingError, match="label_examples must be auto, on or off"):  # before any run exists
        TrainConfig(dataset="sentiment", model="no/such-model", label_examples="maybe")


def test_few_shot_run_end_to_end(spanlab_home, tiny_model_dir):
    storage.create_dataset("sentiment", "classification", sentiment_rows(8))
    storage.create_dataset("sentiment-eval", "classification", sentiment_rows(8))
    run = train_and_get(TrainConfig(dataset="sentiment", eval_dataset="sentiment-eval", model=str(tiny_model_dir),
                           batch_size=8, device="cpu", seed=3))
    assert run["status"] == "completed", run["error"]
    params = run["params"]
    assert params["n_train"] == 16 and params["contrastive_epochs"] == fewshot.contrastive_epochs(2) == 10
    assert run["metrics"]["accuracy"] >= 0.9
    points = storage.metric_frame(run["id"])
    contrastive = points[points.name == "train/contrastive_loss"].sort_values("step").value.tolist()
    assert len(contrastive) >= 5 and contrastive[-1] < contrastive[0]

    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(run["artifact_dir"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(run["artifact_dir"])
    assert model.config.num_hidden_layers == 3  # the tiny model's 2 + the mean-pooling layer
    texts = [r["text"] for r in sentiment_rows(8)]
    with torch.no_grad():
        predicted = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.argmax(-1).tolist()
    truth = [model.config.label2id[r["label"]] for r in sentiment_rows(8)]
    assert np.mean([p == t for p, t in zip(predicted, truth)]) >= 0.9


def test_cancel_during_the_contrastive_stage(spanlab_home, tiny_model_dir):
    storage.create_dataset("sentiment", "classification", sentiment_rows(8))
    cancel = threading.Event()

    def progress(step, total):
        cancel.set()

    run = train_and_get(TrainConfig(dataset="sentiment", model=str(tiny_model_dir), batch_size=4, device="cpu"),
               cancel=cancel, progress=progress)
    assert run["status"] == "cancelled" and run["artifact_dir"] is None
    points = storage.metric_frame(run["id"])
    assert len(points[points.name == "train/loss"]) == 0


def test_pooled_features_match_the_classifier_input(tiny_model_dir):
    tokenizer = _tokenizer(tiny_model_dir)
    model = _classifier(tiny_model_dir)
    fewshot.add_mean_pooling_head(model)
    enc = tokenizer(["good movie", "bad food and slow service"])
    features = [{k: enc[k][i] for k in enc.keys()} for i in range(2)]
    pooled = fewshot.pooled_features(model, features, collate, tokenizer.pad_token_id, "cpu")
    with torch.no_grad():
        expected = model.bert(**tokenizer(["good movie", "bad food and slow service"], padding=True,
                                          return_tensors="pt")).pooler_output.numpy()
    np.testing.assert_allclose(pooled, expected, atol=1e-5)


def test_other_architectures_train_with_the_rest_of_the_recipe(spanlab_home, tmp_path):
    """A RoBERTa-style model (head: dense -> tanh -> out_proj) keeps its head; the run still completes."""
    from transformers import BertTokenizerFast, RobertaConfig, RobertaModel

    from tests.conftest import write_vocab
    folder = tmp_path / "tiny-roberta"
    vocab = write_vocab(folder)
    size = len(vocab.read_text(encoding="utf-8").splitlines())
    config = RobertaConfig(vocab_size=size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=37, max_position_embeddings=130, pad_token_id=0)
    RobertaModel(config).save_pretrained(folder)
    BertTokenizerFast(vocab=str(vocab), do_lower_case=True, strip_accents=False).save_pretrained(folder)
    storage.create_dataset("sentiment", "classification", sentiment_rows(4))
    run = train_and_get(TrainConfig(dataset="sentiment", model=str(folder), batch_size=4, device="cpu", max_steps=3))
    assert run["status"] == "completed", run["error"]
    notes = " ".join(run["params"]["notes"])
    assert "keeps its own [CLS] head" in notes and "no linear probe" in notes
