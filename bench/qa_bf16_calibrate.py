"""How far bf16 moves QA answer scores: the data behind ``QAPredictor.recheck_margin`` (core/inference.py).

For SQuAD v1.1 dev questions of articles a QA model was not trained on — and NOT the questions bench/qa_latency.py
times (same split and sample rules, those ids left out) — each question is answered twice with the same
``QAPredictor``, in fp32 and in bf16 (top answer plus the runner-up). Printed: how often the top answer differs, the
error bf16 makes on the log-probability gap between the two answers fp32 ranks first and second, and how many
questions a given re-check margin would send back to fp32.

    python bench/qa_bf16_calibrate.py --model-dir FOLDER --train-questions 3000 [--questions 400]
"""
from __future__ import annotations

import argparse
import math
import sys

import bench_common as bc
import qa_latency


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="a saved QA model folder")
    parser.add_argument("--train-questions", type=int, default=600, help="as given to qa_latency.py")
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--seed", type=int, default=42, help="as given to qa_latency.py")
    parser.add_argument("--questions-timed", type=int, default=205,
                        help="qa_latency.py's --questions + --warmup (default 200 + 5): those are left out")
    args = parser.parse_args(argv)
    bc.require_data("squad_v1.1/dev-v1.1.json")
    bc.require_module("transformers", "pip install -r requirements.txt")
    bc.use_private_home()
    info = bc.machine_info()
    bc.print_machine(info)
    _, other, timed_pairs = qa_latency.split_and_sample(args.train_questions, args.questions_timed, args.seed)
    timed = {q["id"] for q in timed_pairs}
    pool = [q for q in bc.squad_questions(other) if q["id"] not in timed]
    sample = bc.sample_rows(pool, args.questions, args.seed + 100)

    from core import inference
    predictor = inference.load_predictor(args.model_dir, device="cpu", precision="bf16")
    errors, flips, margins16 = [], 0, []
    for q in sample:
        exact = predictor._answers([q["question"]], [q["context"]], 1, None, 32, bf16=False, runners_up=1)[0]
        fast = predictor._answers([q["question"]], [q["context"]], 1, None, 32, bf16=True, runners_up=1)[0]
        flips += (exact[0]["start"], exact[0]["end"]) != (fast[0]["start"], fast[0]["end"])
        margins16.append(_gap(fast[0], fast[1]) if len(fast) > 1 else math.inf)
        if len(exact) > 1:  # the error on the gap between fp32's first two answers, as bf16 sees them
            a, b = (next((f for f in fast if (f["start"], f["end"]) == (e["start"], e["end"])), None)
                    for e in exact[:2])
            if a and b:
                errors.append(abs(_gap(a, b) - _gap(exact[0], exact[1])))
    n = len(sample)
    errors.sort()
    print(f"{n} questions: bf16's top answer differs from fp32's on {flips} ({flips / n:.1%})")
    print(f"error on the fp32 top-2 gap ({len(errors)} questions with both answers in bf16's top 2): median "
          f"{bc.percentile(errors, 50):.3f}, p99 {bc.percentile(errors, 99):.3f}, max {errors[-1]:.3f}")
    rows = [{"re-check margin": m, "questions re-checked": f"{sum(g < m for g in margins16) / n:.1%}"}
            for m in (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)]
    table = bc.print_table(rows, ["re-check margin", "questions re-checked"])
    bc.write_results("qa_bf16_calibrate", {"machine": info, "args": vars(args), "questions": n, "flips": flips,
                                           "gap_error_median": bc.percentile(errors, 50),
                                           "gap_error_p99": bc.percentile(errors, 99), "gap_error_max": errors[-1],
                                           "markdown": table})
    return 0


def _gap(a: dict, b: dict) -> float:
    """log(score a) - log(score b)."""
    return math.log(max(a["score"], 1e-300)) - math.log(max(b["score"], 1e-300))


if __name__ == "__main__":
    sys.exit(main())
