"""Benchmark 4: QA inference latency per question — SpanLab's ``QAPredictor`` vs the ``question-answering`` pipeline
of transformers 4.57.x (removed in transformers 5), on the same saved model folder, device and thread count.

The pipeline runs in the benchmark-only venv ``bench/.venv-ref`` (``bash bench/setup_ref_env.sh``) as a worker
process: this same file started with ``--worker``. The two sides take turns question by question (which side goes
first alternates), so machine noise hits both alike; each side times its own call, from the (question, context)
strings to the answer, after a few warm-up questions.

* SpanLab: ``QAPredictor.predict(question, context, top_k=1)``.
* Pipeline: ``pipeline("question-answering", model=FOLDER)(question=..., context=..., max_answer_len=M)`` with M the
  model's ``max_answer_length`` (SpanLab's 30; the pipeline's default would be 15) and otherwise its defaults
  (doc_stride 128, max_seq_len 384, align_to_words=True).

Agreement: "same span" compares SpanLab's character span with the span of the pipeline's answer; "same text"
compares their normalised texts. The model folder should be a trained QA run
(``--model-dir``, e.g. the one bench/qa_quality.py prints); without one, a small SpanLab QA run is trained first on
articles that the timed questions do not come from.

    python bench/qa_latency.py [--model-dir FOLDER] [--questions 200] [--threads N] [--profile]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import bench_common as bc


# ------------------------------------------------------------------------------------------ worker (ref venv)
def worker(model_dir: str, threads: int, max_answer_len: int) -> int:
    """Answer JSON-line requests on stdin with the transformers 4.57 pipeline; one JSON line per answer on stdout."""
    import torch
    import transformers
    from transformers import pipeline
    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    qa = pipeline("question-answering", model=model_dir, tokenizer=model_dir, device=-1)
    print(json.dumps({"ready": True, "transformers": transformers.__version__, "torch": torch.__version__,
                      "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        started = time.perf_counter()
        answer = qa(question=request["question"], context=request["context"], max_answer_len=max_answer_len)
        seconds = time.perf_counter() - started
        print(json.dumps({"seconds": seconds, "answer": answer["answer"], "start": answer["start"],
                          "end": answer["end"]}), flush=True)
    return 0


class PipelineWorker:
    def __init__(self, model_dir: str, threads: int, max_answer_len: int):
        python = bc.require_ref_python()
        self.proc = subprocess.Popen(
            [str(python), __file__, "--worker", "--model-dir", model_dir, "--threads", str(threads),
             "--max-answer-len", str(max_answer_len)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the pipeline worker stopped (exit {self.proc.poll()}); see its stderr above")
        return json.loads(line)

    def ask(self, question: str, context: str) -> dict:
        self.proc.stdin.write(json.dumps({"question": question, "context": context}) + "\n")
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ------------------------------------------------------------------------------------------ model folder
def train_quick_model(articles: list[dict], steps: int, seed: int) -> str:
    """A small SpanLab QA run (the app's recipe with a step cap) on the given articles; returns its model folder."""
    from core import models, storage
    from core.training import TrainConfig, execute_run
    rows = [{"context": q["context"], "question": q["question"], "answer_text": q["answer_text"],
             "answer_start": q["answer_start"]} for q in bc.squad_questions(articles)]
    storage.create_dataset("latency-train", "qa", rows)
    cfg = TrainConfig(dataset="latency-train", model=models.BUILTIN_ALIAS, seed=seed, max_steps=steps or None)
    run_id = storage.create_run(cfg.dataset, "qa", cfg.model, cfg.to_params())
    print(f"training a SpanLab QA model ({len(rows)} questions, {steps or 'automatic'} steps) for the latency benchmark ...",
          flush=True)
    outcome = execute_run(run_id)
    if outcome.get("status") != "completed":
        raise RuntimeError(f"training the QA model failed: {outcome.get('error')}")
    print(f"QA model folder: {outcome['artifact_dir']} (reuse it with --model-dir)", flush=True)
    return outcome["artifact_dir"]


def split_and_sample(train_questions: int, n: int, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(training articles, other articles, the ``n`` questions of the other articles that are timed, warm-up first)."""
    train_articles, other_articles = bc.split_squad_by_article(bc.load_squad_articles(), train_questions, seed + 1)
    return train_articles, other_articles, bc.sample_rows(bc.squad_questions(other_articles), n, seed)


# ------------------------------------------------------------------------------------------ driver
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--max-answer-len", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help="a saved QA model folder (a SpanLab run folder); default: train one")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads on both sides (default: torch's)")
    parser.add_argument("--train-steps", type=int, default=60,
                        help="step cap of the model trained when no --model-dir (0: the full automatic recipe)")
    parser.add_argument("--train-questions", type=int, default=600,
                        help="about this many questions (whole articles) are set aside for training; the timed "
                             "questions come from the other articles. Pass the same value with --model-dir")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="SpanLab's predictor precision (default: what the app uses on this machine)")
    parser.add_argument("--profile", action="store_true", help="cProfile SpanLab's side and print the top entries")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.model_dir, args.threads, args.max_answer_len)

    bc.require_data("squad_v1.1/dev-v1.1.json")
    bc.require_module("transformers", "pip install -r requirements.txt")
    bc.require_ref_python()
    home = bc.use_private_home()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    info = bc.machine_info()
    bc.print_machine(info)

    train_articles, _, pairs = split_and_sample(args.train_questions, args.questions + args.warmup, args.seed)
    model_dir = args.model_dir or train_quick_model(train_articles, args.train_steps, args.seed)

    from core import inference
    from core.tasks.qa import normalize_answer, squad_metrics
    predictor = inference.load_predictor(model_dir, device="cpu", precision=args.precision)
    max_answer_len = int(predictor.meta.get("max_answer_length") or 30)
    pipe = PipelineWorker(str(model_dir), threads, max_answer_len)
    print(f"pipeline worker: transformers {pipe.info['transformers']}, torch {pipe.info['torch']}, "
          f"{pipe.info['threads']} threads; SpanLab: transformers {info['transformers']}, {threads} threads")

    profiler = None
    if args.profile:
        import cProfile
        profiler = cProfile.Profile()
    seconds = {"spanlab": [], "pipeline": []}
    same_span, same_text, records = [], [], []
    for i, pair in enumerate(pairs):
        q, c = pair["question"], pair["context"]
        for side in (("spanlab", "pipeline") if i % 2 == 0 else ("pipeline", "spanlab")):
            if side == "pipeline":
                theirs = pipe.ask(q, c)
                continue
            if profiler and i >= args.warmup:
                profiler.enable()
            rechecked_before = predictor.rechecked
            started = time.perf_counter()
            ours = predictor.predict(q, c, top_k=1)[0]
            took = time.perf_counter() - started
            rechecked = predictor.rechecked > rechecked_before
            if profiler and i >= args.warmup:
                profiler.disable()
        if i < args.warmup:
            continue
        seconds["spanlab"].append(took)
        seconds["pipeline"].append(theirs["seconds"])
        same_span.append((ours["start"], ours["end"]) == (theirs["start"], theirs["end"]))
        same_text.append(normalize_answer(ours["answer"]) == normalize_answer(theirs["answer"]))
        records.append({"id": pair["id"], "spanlab": ours["answer"], "pipeline": theirs["answer"],
                        "spanlab_ms": took * 1000, "pipeline_ms": theirs["seconds"] * 1000,
                        "gold": pair["answers"], "same_span": same_span[-1], "rechecked_fp32": rechecked})
    pipe.close()

    n = len(records)
    rows = []
    labels = {"spanlab": "SpanLab QAPredictor", "pipeline": "pipeline (transformers 4.57)"}
    for side, values in seconds.items():
        rows.append({"side": labels[side], "questions": n, "p50 ms": bc.percentile(values, 50) * 1000,
                     "p95 ms": bc.percentile(values, 95) * 1000, "mean ms": sum(values) / n * 1000,
                     "same span": f"{sum(same_span) / n:.1%}" if side == "spanlab" else "-"})
    ratio50 = rows[0]["p50 ms"] / rows[1]["p50 ms"]
    ratio95 = rows[0]["p95 ms"] / rows[1]["p95 ms"]
    span_agreement, text_agreement = sum(same_span) / n, sum(same_text) / n
    golds = [r["gold"] for r in records]
    quality = {"spanlab": squad_metrics([r["spanlab"] for r in records], golds),
               "pipeline": squad_metrics([r["pipeline"] for r in records], golds)}
    table = bc.print_table(rows, ["side", "questions", "p50 ms", "p95 ms", "mean ms", "same span"],
                           title=f"QA latency per question ({threads} threads, CPU)")
    print(f"p50 ratio SpanLab/pipeline = {ratio50:.2f} (target <= 0.8: {'meets' if ratio50 <= 0.8 else 'MISSES'}); "
          f"p95 ratio = {ratio95:.2f}")
    print(f"same top answer as the pipeline: span {span_agreement:.1%}, text {text_agreement:.1%} "
          f"(target >= 99%: {'meets' if span_agreement >= 0.99 else 'MISSES'}); "
          f"F1 vs gold: SpanLab {quality['spanlab']['f1']:.1f}, pipeline {quality['pipeline']['f1']:.1f}")
    n_rechecked = sum(r["rechecked_fp32"] for r in records)
    print(f"SpanLab precision: {predictor.precision}" + (
        f"; close calls re-answered in fp32: {n_rechecked} of {n} ({n_rechecked / n:.1%}, margin "
        f"{predictor.recheck_margin})" if predictor.precision == "bf16" else ""))
    if profiler:
        import pstats
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    bc.write_results("qa_latency", {
        "machine": info, "pipeline_env": pipe.info, "args": vars(args), "model_dir": str(model_dir),
        "spanlab_home": str(home), "table": rows, "markdown": table, "p50_ratio": ratio50, "p95_ratio": ratio95,
        "same_span": span_agreement, "same_text": text_agreement, "f1_vs_gold": quality,
        "spanlab_precision": predictor.precision, "rechecked_fp32": n_rechecked,
        "disagreements": [r for r in records if not r["same_span"]][:30]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
