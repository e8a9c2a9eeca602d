"""Headless command line: everything the web app does, scriptable.

    python -m core import FILE --task classification|qa|ner [--name N] [--map text=Review ...] [--json]
    python -m core datasets | export NAME --format csv --out F | delete-dataset NAME
    python -m core train --dataset NAME --model builtin-minilm [--epochs ... --device cuda] [--json]
    python -m core evaluate RUN --dataset NAME | predict RUN --text T | predict RUN --question Q --context C
    python -m core runs | runs show RUN | runs cancel RUN | runs delete RUN | models | activity
    python -m core hash-password [--name NAME]     (a line for .streamlit/secrets.toml: README, team sign-in)

With --json the last line of stdout is one JSON object; user mistakes (core.errors.UserError) and trouble with the
machine (an unusable database, a full disk: core.errors.explain) go to stderr as ``error: ...`` with exit code 2 and no
traceback. Anything else is a bug: its traceback is shown and the exit code is 1.
Imports, runs and deletions are recorded as done by $SPANLAB_USER (default: the login name).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
from pathlib import Path


from core.errors import UserError, explain


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as exc:
        _fail(args, str(exc), getattr(exc, "problems", None))
        return 2
    except Exception as exc:
        message = explain(exc)
        if message is None:  # a bug: show where it happened
            raise
        _fail(args, message)
        return 2
    _emit(args, result)
    if isinstance(result, dict) and result.get("status") in ("failed", "interrupted"):
        return 1
    return 0


def _fail(args, message: str, problems=None) -> None:
    print(f"error: {message}", file=sys.stderr)
    for problem in (problems or [])[:50]:
        print(f"  {problem}", file=sys.stderr)
    if problems and len(problems) > 50:
        print(f"  ... and {len(problems) - 50} more", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"error": message, "problems": [str(p) for p in problems or []]}))


def _emit(args, result: dict) -> None:
    text = result.pop("_text", None) if isinstance(result, dict) else None  # the human-readable form only
    if args.json:
        print(json.dumps(result, default=str))
        return
    print(text if text is not None else json.dumps(result, indent=2, default=str))


def _person() -> str:
    """Who runs this command: $SPANLAB_USER, else the login name, else "unknown"."""
    import getpass
    name = os.environ.get("SPANLAB_USER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "unknown"


# ---------------------------------------------------------------- commands

def cmd_import(args) -> dict:
    from core import importing, storage
    from core.import_stream import ImportProblems, open_stream
    path = Path(args.path)
    if not path.exists():
        raise UserError(f"No such file: {path}")
    mapping = _parse_mapping(args.map)
    name = args.name or path.stem
    stream = open_stream(path, args.task, filename=path.name, mapping=mapping or None)
    if stream is not None:  # a delimited file: read, checked and written chunk by chunk
        try:
            info = storage.create_dataset_streamed(name, args.task, stream.batches(), labels=args.labels or None,
                                                   source=path.name, created_by=_person())
        except ImportProblems as problems:
            raise _import_problems(path, problems.result) from None
        result = stream.result
    else:
        result = importing.load_file(path, args.task, filename=path.name, mapping=mapping or None)
        if not result.ok:
            raise _import_problems(path, result)
        info = storage.create_dataset(name, args.task, result.rows, labels=args.labels or None, source=path.name,
                                      created_by=_person())
    return {"dataset": info["name"], "rows": info["rows"], "labels": info["labels"],
            "mapping": result.mapping, "metadata": result.meta_columns,
            "warnings": [str(w) for w in result.warnings]}


def _import_problems(path: Path, result) -> UserError:
    error = UserError(f"{path.name}: {len(result.problems)} problem(s); nothing was imported. Fix the rows "
                      "below (or map columns with --map field=COLUMN) and import again.")
    error.problems = result.problems
    return error


def _parse_mapping(pairs: list[str] | None) -> dict:
    mapping = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UserError(f"--map expects field=COLUMN (e.g. text=Review), got '{pair}'")
        field, column = pair.split("=", 1)
        mapping[field.strip()] = column.strip()
    return mapping


def cmd_datasets(args) -> dict:
    from core import storage
    rows = storage.list_datasets()
    lines = [f"{d['name']:<30} {d['task']:<15} {d['rows']:>7} rows  {d['labeled']:>7} labeled" for d in rows]
    return {"datasets": rows, "_text": "\n".join(lines) or "no datasets yet: python -m core import FILE --task ..."}


def cmd_export(args) -> dict:
    from core import storage, tasks
    info = storage.get_dataset(args.name)
    formats = tasks.get(info["task"]).exports
    if args.format not in formats:
        raise UserError(f"'{info['name']}' is a {info['task']} dataset: export it as {', '.join(formats)}, "
                        f"not {args.format}.")
    rows = storage.load_examples(args.name)
    out = Path(args.out)
    _write_output(out, formats[args.format].write(rows, info["name"]))
    return {"dataset": info["name"], "format": args.format, "out": str(out), "rows": len(rows)}


def _write_output(path: Path, data: bytes) -> None:
    """Write ``data`` to the file ``path`` in full, or raise UserError (a folder, no space, no permission). A regular
    file is written beside its place and then renamed over it, so a failure leaves no partial file and an existing
    file untouched; a device or pipe (/dev/stdout) is written directly."""
    import tempfile
    if path.is_dir():
        raise UserError(f"--out {path} is a folder: give a file name, e.g. {path / 'out.csv'}")
    regular = path.is_file() or not path.exists()
    temporary = None
    try:
        if regular:
            handle_fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            handle = os.fdopen(handle_fd, "wb")
        else:
            handle = open(path, "wb")
        with handle:
            handle.write(data)
            handle.flush()
        if temporary is not None:
            os.replace(temporary, path)
            temporary = None
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc} — pick another place (with free space and "
                        "write permission)") from exc
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def cmd_delete_dataset(args) -> dict:
    from core import storage
    storage.delete_dataset(args.name, by=_person())
    return {"deleted": args.name}


def cmd_models(args) -> dict:
    from core import models
    out = []
    for ref, info in models.KNOWN_MODELS.items():
        ok, how = models.availability(ref)
        out.append({"model": ref, **info, "offline": ok, "availability": how})
    lines = [f"{m['model']:<32} {m['availability']:<40} licence: {m['license']}" for m in out]
    return {"models": out, "_text": "\n".join(lines)}


def cmd_hash_password(args) -> dict:
    """Ask for a password twice (or read one line from a pipe) and print the hash to store in secrets.toml."""
    import getpass
    from core import passwords
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise UserError("the two passwords differ: nothing printed, try again")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    stored = passwords.hash_password(password)
    name = (args.name or "").strip()
    line = f'{json.dumps(name)} = "{stored}"' if name else stored
    return {"name": name or None, "hash": stored, "_text": line}


def cmd_train(args) -> dict:
    from core import storage
    from core.runner import JobRunner
    from core.training import check_for_model, close_distributed, config_from_cli, execute_run, train_other_rank
    cfg = config_from_cli(args, args.dataset)
    check_for_model(cfg)  # before a run row exists
    if os.environ.get("RANK", "0") != "0":  # torchrun / accelerate launch: rank 0 records the run
        try:
            return {"rank": int(os.environ["RANK"]), **train_other_rank(cfg)}
        finally:
            close_distributed()
    JobRunner(recover=True)  # marks runs left "running" by a dead process as interrupted
    info = storage.get_dataset(cfg.dataset)
    if cfg.eval_dataset:
        storage.get_dataset(cfg.eval_dataset)
    run_id = storage.create_run(cfg.dataset, info["task"], cfg.model, cfg.to_params(), eval_dataset=cfg.eval_dataset,
                                created_by=_person())
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # a killed CLI run is recorded as interrupted
    bar = _progress_bar(args)
    try:
        result = execute_run(run_id, progress=bar.update_to if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
        close_distributed()
    run = storage.get_run(run_id)
    out = {"run": run_id, "status": run["status"], "metrics": _scalars(run.get("metrics") or {}),
           "train_samples_per_second": run.get("train_samples_per_second"), "device": run.get("device"),
           "precision": run.get("precision"), "model_dir": run.get("artifact_dir"), "error": run.get("error"),
           "notes": (run.get("params") or {}).get("notes", [])}
    if result.get("status") == "failed":
        print(f"error: run {run_id} failed: {run.get('error')}", file=sys.stderr)
    return out


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def _progress_bar(args):
    if args.no_progress:
        return None
    from tqdm import tqdm

    class Bar(tqdm):
        def update_to(self, step, total):
            self.total = total
            self.update(step - self.n)
    return Bar(desc="training", unit="step", file=sys.stderr, total=None)


def _scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def cmd_evaluate(args) -> dict:
    from core import inference
    metrics = inference.evaluate(args.run, args.dataset)
    return {"run": args.run, "dataset": args.dataset, "metrics": metrics}


def cmd_predict(args) -> dict:
    from core import importing, inference
    args.run = int(args.run) if str(args.run).isdigit() else args.run
    predictor = inference.load_predictor(args.run, precision=args.precision)
    task = predictor.task
    if args.file:
        # every column the model does not read (ids, channels, a label column...) passes through, in file order
        reads = task.predict_reads or task.input_fields
        passing = {field_name: "" for field_name in task.fields if field_name not in reads}
        result = importing.load_file(Path(args.file), task.name, filename=Path(args.file).name, mapping=passing)
        if not result.rows:
            raise UserError(f"{args.file}: no rows to predict. " + result.summary())
        predictions = predictor.predict_examples(result.rows, top_k=args.top_k)
        from core.exporting import csv_bytes, with_meta
        out, columns = with_meta([task.prediction_record(row, prediction)
                                  for row, prediction in zip(result.rows, predictions)], result.rows, "input_")
        if args.out:  # lists (answers, entities) as JSON cells; cells a spreadsheet would run as formulas neutralised
            _write_output(Path(args.out), csv_bytes(out, columns))
        return {"run": args.run, "predictions": out if not args.out else len(out), "out": args.out}
    values = [getattr(args, name, None) for name in task.input_fields]
    if any(value is None for value in values):
        flags = " and ".join(f'--{name} "..."' for name in task.input_fields)
        raise UserError(f"Run {args.run} is a {task.title.lower()} model: give {flags} (or --file F.csv).")
    return {"run": args.run, task.prediction_key: predictor.predict(*values, top_k=args.top_k)}


def cmd_runs(args) -> dict:
    from core import storage
    if args.action == "show":
        run = storage.get_run(_run_id(args.run_id))
        frame = storage.metric_frame(run["id"])
        curves = {name: [[int(r.step), float(r.value)] for r in group.itertuples()]
                  for name, group in frame.groupby("name")} if len(frame) else {}
        return {"run": run, "curves": curves}
    if args.action == "delete":  # a queued or running run is refused: cancel it first
        storage.delete_run(_run_id(args.run_id), by=_person())
        return {"deleted": _run_id(args.run_id)}
    if args.action == "cancel":
        run = storage.get_run(_run_id(args.run_id))
        if not storage.request_cancel(run["id"], by=_person()):
            raise UserError(f"run {run['id']} is {storage.get_run(run['id'])['status']}: only a queued or running "
                            "run can be cancelled")
        return {"cancel_requested": run["id"],
                "_text": f"run {run['id']}: cancel requested; it stops within a few seconds (keeping its best "
                         "checkpoint so far)"}
    runs = storage.list_runs(dataset=args.dataset)
    lines = [f"#{r['id']:<4} {r['status']:<11} {r['dataset_name'] or '-':<24} {r['model']:<32} {_best(r):<22} "
             f"by {r['created_by']}" for r in runs]
    return {"runs": runs, "_text": "\n".join(lines) or "no runs yet: python -m core train --dataset NAME"}


def _best(run: dict) -> str:
    """'eval/accuracy=0.875', or 'no metrics' for a run without any."""
    if run.get("best_metric") is None:
        return "no metrics"
    return f"{run.get('best_metric_name') or 'metric'}={run['best_metric']:.4g}"


def cmd_activity(args) -> dict:
    from core import storage
    lines = storage.activity(limit=args.limit)
    text = [f"{line['created_at']:%Y-%m-%d %H:%M}  {line['person']:<20} {line['action']} {line['subject']}"
            for line in lines]
    return {"activity": lines, "_text": "\n".join(text) or "no activity yet"}


def _run_id(value) -> int:
    if value is None or not str(value).isdigit():
        raise UserError("give a run id, e.g. `runs show 3` (see `python -m core runs`)")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    from core import tasks
    from core.training import add_cli_arguments
    parser = argparse.ArgumentParser(prog="python -m core", description="SpanLab headless command line.")
    sub = parser.add_subparsers(dest="command")

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
        p.set_defaults(func=func)
        return p

    p = add("import", cmd_import, "import a CSV/TSV/JSONL/SQuAD JSON (ner: also CoNLL, Label Studio JSON) file")
    p.add_argument("path")
    p.add_argument("--task", required=True, choices=list(tasks.NAMES))
    p.add_argument("--name")
    p.add_argument("--map", action="append", metavar="FIELD=COLUMN", help="e.g. --map text=Review --map label=Stars")
    p.add_argument("--labels", nargs="*", help="the label set, in order (default: the labels found)")

    add("datasets", cmd_datasets, "list datasets")
    p = add("export", cmd_export, "write a dataset to a file")
    p.add_argument("name")
    p.add_argument("--format", choices=sorted({name for task in tasks.ALL for name in task.exports}), default="csv",
                   help="; ".join(f"{task.name}: {', '.join(task.exports)}" for task in tasks.ALL))
    p.add_argument("--out", required=True)
    p = add("delete-dataset", cmd_delete_dataset, "delete a dataset (its runs stay in the history)")
    p.add_argument("name")
    add("models", cmd_models, "the suggested models and whether they are available offline")
    p = add("hash-password", cmd_hash_password, "print a password hash for the team sign-in (.streamlit/secrets.toml)")
    p.add_argument("--name", help="print a ready line for [spanlab.passwords]: NAME = \"HASH\"")

    p = add("train", cmd_train, "fine-tune a model on a dataset (foreground, recorded like an app run)")
    p.add_argument("--dataset", required=True)
    add_cli_arguments(p)
    p.add_argument("--no-progress", action="store_true")

    p = add("evaluate", cmd_evaluate, "metrics of a trained run on a dataset")
    p.add_argument("run", type=int)
    p.add_argument("--dataset", required=True)

    p = add("predict", cmd_predict, "predict with a trained run (or a model folder)")
    p.add_argument("run")
    p.add_argument("--text", help="classification and ner models: the text")
    p.add_argument("--question", help="QA models: the question")
    p.add_argument("--context", help="QA models: the passage to find the answer in")
    p.add_argument("--file", help="a file of texts (or questions+contexts) to predict in batch")
    p.add_argument("--out", help="with --file: write predictions to this CSV")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto = fp32, except QA models where this machine runs bf16 natively (close calls "
                        "re-checked in fp32)")

    p = add("activity", cmd_activity, "who imported, deleted, started and cancelled what, newest first")
    p.add_argument("--limit", type=int, default=50)

    p = add("runs", cmd_runs, "run history: runs | runs show RUN | runs cancel RUN | runs delete RUN (a finished run)")
    p.add_argument("action", nargs="?", default="list", choices=["list", "show", "delete", "cancel"])
    p.add_argument("run_id", nargs="?")
    p.add_argument("--dataset")
    return parser


if __name__ == "__main__":
    code = main()
    # Interpreter shutdown collects every object torch and transformers created (about 1 s after a training run, of
    # a 12 s command); frozen, they are left to the operating system. atexit handlers and flushes still run.
    gc.freeze()
    sys.exit(code)
