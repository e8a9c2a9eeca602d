"""The few-shot recipe: how SpanLab trains a text classifier from a handful of labeled examples per label.

It is the default for classification datasets with at most ``MAX_EXAMPLES_PER_LABEL`` training examples per label
(``TrainConfig.few_shot = "auto"``); ``training._train`` calls the pieces below in this order:

1. **No held-out split.** With 8 examples per label, holding out 20% costs a fifth of the signal and the held-out
   pair measures nothing, so every labeled example trains (``prepare_data``). A validation split or an evaluation
   dataset the user gives is still used for the curves and the final metrics.
   **Examples from the label names** (``label_examples``): for a sentence encoder whose labels all read as words,
   "This sentence is <label>." (SetFit's template) joins the training data twice per label. A sentence encoder
   already puts such a sentence near the texts of that label (zero-shot, MiniLM sorts 68 % of an SST-2 training
   sample right with them alone), so with 8 examples per label the names are worth two more.
   ``TrainConfig.label_examples`` "on" adds them for any model, "off" never.
2. **Sentence-embedding head** (``add_mean_pooling_head``). Sentence encoders such as all-MiniLM-L6-v2 are trained
   to be read out by mean pooling, while ``BertForSequenceClassification`` reads the [CLS] position through a
   pooler it never trained. One more standard encoder layer is appended whose attention is uniform over the real
   (unpadded) tokens, so its [CLS] output is LayerNorm(mean of the last hidden states); the pooler becomes a
   scaled identity, so the classifier sees a centred, unit-length sentence embedding. The saved model is still a
   plain ``BertForSequenceClassification`` (``num_hidden_layers`` one higher) that ``transformers`` loads as is.
3. **Contrastive stage** (``contrastive_stage``): a few epochs of contrastive learning on the pooled embeddings
   pull examples of one label together and push the others apart: SetFit's cosine-similarity loss, but over every
   pair within a batch, so it costs one forward pass per example instead of two per pair. (Supervised contrastive
   loss, SupCon, is the alternative ``CONTRASTIVE_LOSS`` offers; on the AG News training pool it scored 1.8 points
   lower.)
4. **Linear probe** (``init_head_with_linear_probe``): logistic regression on the embeddings sets the classifier,
   so the model starts from the best linear read-out instead of a random head.
5. **Short fine-tuning** of the whole model with cross-entropy at a small learning rate (LP-FT), through the
   ordinary training loop.

Throughout, the input word embeddings stay frozen (``freeze_word_embeddings``): with a few dozen sentences only
their words would move, and leaving the largest matrix out of the optimizer makes each small step markedly cheaper.

The hyperparameters were chosen with ``bench/fewshot_tune.py`` on samples of the SST-2 and AG News training pools,
scored on other rows of those pools (never on their evaluation splits); see BENCHMARKS.md, section 1. Halving the
first choice (20 contrastive + 10 fine-tuning epochs) to 10 + 4 kept accuracy equal and cut training time 2-2.5x;
the pairwise cosine loss then beat SupCon on both pools at the same cost, and on the 4-label pool 20 contrastive
epochs beat 10 (hence epochs per label).
"""
from __future__ import annotations

import copy
import math
import random
import re

from core import models

MAX_EXAMPLES_PER_LABEL = 64   # average training examples per label up to which the recipe applies
MEAN_POOL_GAIN = 1000.0       # attention-output gain that makes the residual [CLS] term negligible (fp16-safe)
PROBE_C = 1.0                 # inverse L2 strength of the linear probe (scikit-learn's default)
# The automatic schedule (TrainConfig fields left at None take these; chosen on the training pools, see above).
CONTRASTIVE_TEMPERATURE = 0.1  # SupCon only
CONTRASTIVE_LR = 2e-5
CONTRASTIVE_EPOCHS_PER_LABEL = 5  # -> TrainConfig.contrastive_epochs (see contrastive_epochs)
MAX_CONTRASTIVE_EPOCHS = 40
CONTRASTIVE_LOSS = "cosine"   # SetFit's (cos - same label)^2 over every pair of a batch; or "supcon"
FINE_TUNE_LR = 2e-5           # -> TrainConfig.learning_rate
FINE_TUNE_EPOCHS = 4.0        # -> TrainConfig.epochs
LABEL_TEMPLATE = "This sentence is {}."  # SetFit's template for examples made from label names
LABEL_EXAMPLE_COPIES = 2      # SetFit's default sample_size for them


def contrastive_epochs(n_labels: int) -> int:
    """The contrastive stage's length: ``CONTRASTIVE_EPOCHS_PER_LABEL`` epochs per label (10 for two labels, 20
    for four), capped. A batch of B examples over L labels holds about B^2 / 2L same-label pairs, so with more
    labels each epoch carries fewer positive pairs; more epochs keep their number per example about the same."""
    return max(1, min(MAX_CONTRASTIVE_EPOCHS, CONTRASTIVE_EPOCHS_PER_LABEL * max(2, n_labels)))


def applies(task, n_train: int, n_labels: int, mode: str = "auto") -> bool:
    """Whether a run uses the few-shot recipe: only for a task it suits (``task``: a name or a core.tasks Task with
    ``few_shot``, i.e. classification); ``mode`` "on"/"off" force it; "auto" = small data."""
    from core import tasks
    if not tasks.get(task).few_shot or mode == "off":
        return False
    if mode == "on":
        return True
    if mode != "auto":
        raise ValueError(f"few_shot must be auto, on or off, not {mode!r}")
    return n_train <= MAX_EXAMPLES_PER_LABEL * max(1, n_labels)


# ---------------------------------------------------------------- examples from label names

_CODE_LIKE = re.compile(r"^(label|class|category|cat|lbl|c|l)?[\W_]*\d+$", re.IGNORECASE)


def label_is_word(label: str) -> bool:
    """Whether a label reads as words ("positive", "Sci/Tech", "billing issue") rather than a code ("0",
    "LABEL_1", "c7"): only then does a sentence about it tell the model something."""
    return bool(re.search(r"[^\W\d_]{2,}", label)) and not _CODE_LIKE.match(label.strip())


def is_sentence_encoder(folder) -> bool:
    """Whether a model folder is a sentence-transformers model (the built-in MiniLM is): trained so that similar
    sentences get similar mean-pooled embeddings, which is what makes examples from label names useful."""
    from pathlib import Path
    return any((Path(folder) / name).exists() for name in ("config_sentence_transformers.json", "modules.json"))


def label_examples(labels: list[str], mode: str = "auto", sentence_encoder: bool = True) -> list[dict]:
    """Training examples made from the label names themselves (``LABEL_TEMPLATE``, ``LABEL_EXAMPLE_COPIES`` of
    each), as SetFit's ``get_templated_dataset`` makes them: a sentence encoder already places "This sentence is
    positive." near positive sentences, so with 8 examples per label the names are a useful ninth and tenth. "auto"
    adds them for a sentence encoder when every label reads as words (``label_is_word``): measured there only (on
    the built-in MiniLM); "on" always; "off" never."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"label_examples must be auto, on or off, not {mode!r}")
    if mode == "off" or (mode == "auto" and not (sentence_encoder and all(label_is_word(lab) for lab in labels))):
        return []
    return [{"text": LABEL_TEMPLATE.format(label.replace("_", " ")), "label": label, "synthetic": True}
            for label in labels for _ in range(LABEL_EXAMPLE_COPIES)]


# ---------------------------------------------------------------- model surgery

def _bert_like(model):
    """The encoder of a BERT-style classifier (BERT, SpanBERT, MiniLM) whose head is pooler -> classifier."""
    import torch
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    pooler = getattr(base, "pooler", None)
    if layers is None or len(layers) == 0 or pooler is None or not isinstance(getattr(model, "classifier", None),
                                                                                torch.nn.Linear):
        return None
    last = layers[-1]
    needed = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "attention.output.LayerNorm", "output.dense", "output.LayerNorm")
    names = dict(last.named_modules())
    if not all(n in names for n in needed) or not hasattr(pooler, "dense"):
        return None
    return base


def add_mean_pooling_head(model) -> bool:
    """Append a mean-pooling encoder layer and make the pooler a scaled identity (see the module docstring).

    Returns False, changing nothing, for architectures this does not know (the recipe then reads [CLS] as usual).
    The appended layer: query = key = 0 (uniform attention; the padding mask still applies, and with both at zero
    their gradients stay zero, so it remains a mean), value = identity, attention output = ``MEAN_POOL_GAIN`` x
    identity (LayerNorm is scale-invariant, so the residual [CLS] state weighs 1/gain), feed-forward output = 0.
    """
    import torch
    base = _bert_like(model)
    if base is None:
        return False
    hidden = model.config.hidden_size
    layer = copy.deepcopy(base.encoder.layer[-1])
    eye = torch.eye(hidden)
    with torch.no_grad():
        attention = layer.attention
        for linear in (attention.self.query, attention.self.key, layer.output.dense):
            linear.weight.zero_()
            linear.bias.zero_()
        attention.self.value.weight.copy_(eye)
        attention.self.value.bias.zero_()
        attention.output.dense.weight.copy_(eye * MEAN_POOL_GAIN)
        attention.output.dense.bias.zero_()
        for norm in (attention.output.LayerNorm, layer.output.LayerNorm):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
        base.pooler.dense.weight.copy_(eye / math.sqrt(hidden))  # LayerNorm output has norm sqrt(hidden)
        base.pooler.dense.bias.zero_()
    for module in layer.modules():  # keep per-layer cache indices consistent
        if hasattr(module, "layer_idx"):
            module.layer_idx = len(base.encoder.layer)
    base.encoder.layer.append(layer)
    model.config.num_hidden_layers = len(base.encoder.layer)
    return True


def freeze_word_embeddings(model) -> None:
    """Keep the input word embeddings fixed: with a few dozen sentences only the few words they contain would move,
    and the optimizer would carry the largest matrix of a small encoder at every step for nothing. (Every
    classification run does this by default: core.training.freezes_word_embeddings.)"""
    model.get_input_embeddings().weight.requires_grad_(False)


def has_linear_head(model) -> bool:
    """Whether the classifier is one Linear layer over a pooled vector (BERT, DistilBERT, ...), which the linear
    probe can initialise; RoBERTa-style heads (dense -> tanh -> out_proj over the sequence) are left as they are."""
    import torch
    return isinstance(getattr(model, "classifier", None), torch.nn.Linear)


# ---------------------------------------------------------------- stages

def pooled_features(model, features: list[dict], collate, pad_id: int, device: str, batch_size: int = 64):
    """The classifier's input for every feature (eval mode), as a float32 numpy array [n, hidden]."""
    import numpy as np
    import torch
    captured = []
    hook = model.classifier.register_forward_pre_hook(lambda module, args: captured.append(args[0].float().cpu()))
    model.eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(features), batch_size):
                batch = collate(features[i:i + batch_size], pad_id)
                model(**{k: v.to(device) for k, v in batch.items() if k != "labels"})
    finally:
        hook.remove()
    return torch.cat(captured).numpy() if captured else np.zeros((0, model.config.hidden_size), dtype=np.float32)


def init_head_with_linear_probe(model, embeddings, label_ids: list[int], num_labels: int, seed: int = 0) -> None:
    """Fit logistic regression on ``embeddings`` and copy it into ``model.classifier`` (softmax-equivalent).

    Labels without training examples get zero weights and a bias below every other class."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    probe = LogisticRegression(C=PROBE_C, max_iter=2000, random_state=seed).fit(embeddings, label_ids)
    weight = np.zeros((num_labels, embeddings.shape[1]), dtype=np.float32)
    bias = np.zeros(num_labels, dtype=np.float32)
    classes = [int(c) for c in probe.classes_]
    if len(classes) == 2:  # one logit w.x + b  ==  softmax over (-(w.x + b)/2, (w.x + b)/2)
        weight[classes[0]], weight[classes[1]] = -probe.coef_[0] / 2, probe.coef_[0] / 2
        bias[classes[0]], bias[classes[1]] = -probe.intercept_[0] / 2, probe.intercept_[0] / 2
    else:
        for row, c in enumerate(classes):
            weight[c], bias[c] = probe.coef_[row], probe.intercept_[row]
    missing = [c for c in range(num_labels) if c not in classes]
    if missing:
        bias[missing] = bias[classes].min() - 10.0
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(weight))
        model.classifier.bias.copy_(torch.from_numpy(bias))


def supervised_contrastive_loss(embeddings, label_ids, temperature: float = CONTRASTIVE_TEMPERATURE):
    """SupCon (Khosla et al. 2020) over one batch: for each example, the log-probability of its same-label
    partners among all other examples, from cosine similarities / temperature. Anchors without a partner are
    skipped; a batch with no pair at all gives 0 (and no gradient)."""
    import torch
    z = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    logits = z @ z.T / temperature
    n = len(label_ids)
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits.log_softmax(dim=-1).masked_fill(self_mask, 0.0)
    positives = (label_ids[:, None] == label_ids[None, :]) & ~self_mask
    counts = positives.sum(dim=-1)
    anchors = counts > 0
    if not bool(anchors.any()):
        return z.sum() * 0.0
    per_anchor = -(log_prob * positives).sum(dim=-1)[anchors] / counts[anchors]
    return per_anchor.mean()


def pairwise_cosine_loss(embeddings, label_ids):
    """SetFit's CosineSimilarityLoss over every pair of one batch: mean of (cos(a, b) - [same label])^2."""
    import torch
    z = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    cos = z @ z.T
    target = (label_ids[:, None] == label_ids[None, :]).float()
    upper = torch.triu(torch.ones_like(cos, dtype=torch.bool), diagonal=1)
    return ((cos - target)[upper] ** 2).mean()


def contrastive_batches(label_ids: list[int], epochs: int, batch_size: int, seed: int) -> list[list[int]]:
    """The contrastive stage's plan: ``epochs`` passes of label-interleaved batches (batches of one example,
    which hold no pair, are dropped)."""
    rng = random.Random(seed)
    plan = []
    for _ in range(epochs):
        plan.extend(b for b in balanced_batches(label_ids, batch_size, rng) if len(b) > 1)
    return plan


def contrastive_stage(model, features: list[dict], label_ids: list[int], plan: list[list[int]], *,
                      learning_rate: float, collate, pad_id: int, device: str, amp_dtype=None,
                      should_stop=lambda: False, on_step=None) -> list[float]:
    """Train the encoder (not the pooler or classifier) with the ``CONTRASTIVE_LOSS`` on its pooled [CLS] output,
    one optimizer step per batch of ``plan``; linear warm-up over the first 10% of steps, then linear decay.
    Returns the loss of every step; ``should_stop()`` is checked before each step and
    ``on_step(step, total, loss, learning_rate)`` called after it."""
    import torch
    from transformers import get_linear_schedule_with_warmup
    if not plan:
        return []
    base = getattr(model, model.base_model_prefix)
    params = [p for n, p in base.named_parameters() if p.requires_grad and not n.startswith("pooler.")]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.01,
                                  fused=models.fused_adam_supported(device))
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, int(0.1 * len(plan))), len(plan))
    labels = torch.tensor(label_ids, device=device)
    losses = []
    model.train()
    for step, ids in enumerate(plan, start=1):
        if should_stop():
            break
        batch = {k: v.to(device) for k, v in collate([features[i] for i in ids], pad_id).items() if k != "labels"}
        with torch.autocast(device_type=device.split(":")[0], dtype=amp_dtype or torch.float32,
                            enabled=amp_dtype is not None):
            pooled = base(**batch).last_hidden_state[:, 0]
        if CONTRASTIVE_LOSS == "cosine":
            loss = pairwise_cosine_loss(pooled, labels[ids])
        else:
            loss = supervised_contrastive_loss(pooled, labels[ids])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step, len(plan), losses[-1], lr)
    return losses


def balanced_batches(label_ids: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches in which every label is spread evenly over the epoch (stratified order), so that batches
    hold examples of several labels, and so pairs of both kinds, even when the labels are imbalanced."""
    by_label: dict[int, list[int]] = {}
    for i, label in enumerate(label_ids):
        by_label.setdefault(label, []).append(i)
    keyed = []
    for members in by_label.values():
        rng.shuffle(members)
        keyed.extend(((rank + rng.random()) / len(members), i) for rank, i in enumerate(members))
    order = [i for _, i in sorted(keyed)]
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
