"""Batches of token features: padding to the batch's own longest row, and shuffled length-grouped batches.

Shared by training and by every prediction path (core.inference), so both pad the same way.
"""
from __future__ import annotations

import math
import random

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TARGETS = ("labels", "start_positions", "end_positions")
IGNORED_TARGET = -100  # a token label the loss skips (token classification: sub-tokens after the first, padding)


def collate(features: list[dict], pad_id: int, multiple_of: int = 1, keys: tuple[str, ...] = MODEL_INPUTS + TARGETS):
    """Pad a batch to its own longest row (rounded up to ``multiple_of`` for tensor cores). A target that is a list
    per token (token classification) is padded with IGNORED_TARGET."""
    import torch
    longest = max(len(f["input_ids"]) for f in features)
    longest = int(math.ceil(longest / multiple_of) * multiple_of)
    batch = {}
    for key in MODEL_INPUTS:
        if key not in features[0] or key not in keys:
            continue
        fill = pad_id if key == "input_ids" else 0
        batch[key] = torch.tensor([list(f[key]) + [fill] * (longest - len(f[key])) for f in features])
    for key in TARGETS:
        if key not in features[0] or key not in keys:
            continue
        if isinstance(features[0][key], (list, tuple)):
            batch[key] = torch.tensor([list(f[key]) + [IGNORED_TARGET] * (longest - len(f[key])) for f in features])
        else:
            batch[key] = torch.tensor([f[key] for f in features])
    return batch


def length_grouped_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar lengths (megabatches of 50 batches sorted by length), so padding is small."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * 50
    batches = []
    for i in range(0, len(order), mega):
        chunk = sorted(order[i:i + mega], key=lambda j: -lengths[j])
        batches.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches
