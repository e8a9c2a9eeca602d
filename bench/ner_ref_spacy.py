#!/usr/bin/env python
"""The spaCy side of bench/ner_quality.py; runs inside spaCy's benchmark-only venv (bench/setup_spacy_env.sh ->
bench/.venv-spacy/bin/python):

    bench/.venv-spacy/bin/python bench/ner_ref_spacy.py --train train.jsonl --dev dev.jsonl --test test.jsonl \
        --work DIR --out result.json [--max-steps N]

What a spaCy user does, with spaCy 3.8's own recipe and nothing tuned:

1. ``python -m spacy init config config.cfg --lang en --pipeline ner --optimize efficiency`` (CPU: tok2vec with
   hash embeddings + transition-based NER, blank English pipeline, no static vectors, no transformer). Not timed.
2. The CoNLL sentences (IOB2 tags) become DocBin files: one ``Doc(nlp.vocab, words=tokens, ents=tags)`` per
   sentence, so the gold tokens are CoNLL's. Not timed (the counterpart of ``python -m core import``).
3. ``python -m spacy train config.cfg --output DIR/model --paths.train train.spacy --paths.dev dev.spacy``: the
   config's defaults (Adam 1e-3, batches by words compounding 100 -> 1000, dropout 0.1, evaluation on the dev set
   every 200 steps, stop after 1600 steps without a better dev score or at 20,000 steps, ``model-best`` = the best dev
   score). Timed from process start to exit (``model-best`` and ``model-last`` written).
4. ``spacy.load(DIR/model/model-best)``, then (timed: model already loaded) ``nlp.pipe`` over
   ``Doc(nlp.vocab, words=tokens)`` of every test sentence with the pipeline's default batch size, and each token's
   ``ent_iob_``/``ent_type_`` as an IOB2 tag.

``--max-steps`` caps ``training.max_steps`` (development runs only). The result (timings, tags, the dev score of
model-best, versions) is written to ``--out`` as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ner_common as nc  # noqa: E402


def to_docbin(nlp, sentences: list[dict], path: Path) -> Path:
    from spacy.tokens import Doc, DocBin
    db = DocBin(store_user_data=False)
    for s in sentences:
        db.add(Doc(nlp.vocab, words=s["tokens"], ents=s["tags"]))
    db.to_disk(path)
    return path


def _last_log_row(log: str) -> dict:
    """Epoch, step and dev ENTS_F of the last row of spacy train's console table (E, #, LOSS TOK2VEC, LOSS NER,
    ENTS_F, ENTS_P, ENTS_R, SCORE)."""
    rows = [line.split() for line in log.splitlines() if re.match(r"^\s*\d+\s+\d+\s+[\d.]", line)]
    if not rows:
        return {}
    last = rows[-1]
    return {"epochs": int(last[0]), "steps": int(last[1]), "dev_ents_f_last": float(last[4]) / 100}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--dev", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-steps", type=int)
    args = parser.parse_args(argv)

    import spacy
    import thinc
    args.work.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    config = args.work / "config.cfg"
    done = subprocess.run([python, "-m", "spacy", "init", "config", str(config), "--lang", "en", "--pipeline", "ner",
                           "--optimize", "efficiency", "--force"], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"spacy init config failed:\n{done.stdout}\n{done.stderr}")

    convert_started = time.perf_counter()
    blank = spacy.blank("en")
    train = nc.read_jsonl(args.train)
    dev = nc.read_jsonl(args.dev)
    to_docbin(blank, train, args.work / "train.spacy")
    to_docbin(blank, dev, args.work / "dev.spacy")
    convert_seconds = time.perf_counter() - convert_started

    command = [python, "-m", "spacy", "train", str(config), "--output", str(args.work / "model"),
               "--paths.train", str(args.work / "train.spacy"), "--paths.dev", str(args.work / "dev.spacy")]
    if args.max_steps:
        command += ["--training.max_steps", str(args.max_steps)]
    log_path = args.work / "train.log"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    train_seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    if code != 0:
        raise SystemExit(f"spacy train failed (exit {code}):\n{log_text[-3000:]}")

    model_dir = args.work / "model" / "model-best"
    nlp = spacy.load(model_dir)
    test = nc.read_jsonl(args.test)
    from spacy.tokens import Doc
    predict_started = time.perf_counter()
    docs = nlp.pipe(Doc(nlp.vocab, words=s["tokens"]) for s in test)
    tags = [[(f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O") for t in doc] for doc in docs]
    predict_seconds = time.perf_counter() - predict_started

    meta = json.loads((model_dir / "meta.json").read_text(encoding="utf-8"))
    result = {"train_seconds": train_seconds,
              "train_cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
              "convert_seconds": convert_seconds, "predict_seconds": predict_seconds, "test_sentences": len(test),
              "tags": tags, "train_sentences": len(train), "dev_sentences": len(dev),
              "dev_ents_f_best": (meta.get("performance") or {}).get("ents_f"), **_last_log_row(log_text),
              "batch_size": nlp.batch_size, "command": command[2:],
              "versions": {"spacy": spacy.__version__, "thinc": thinc.__version__}}
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
