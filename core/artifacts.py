"""Trained-model folders as downloads: a run's standard Hugging Face folder zipped in memory.

The zip holds one top-level folder ``spanlab-run-<id>/`` with config.json, the weights, the tokenizer files and
spanlab.json, so after unzipping, ``AutoModel....from_pretrained("spanlab-run-<id>")`` loads it.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from core import storage

# Weights barely compress; storing them avoids seconds of CPU for nothing. Text files are deflated.
_STORED_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".model", ".zip", ".gz"}


class ArtifactError(Exception):
    """The run has no model folder to hand out; the message says why."""


def zip_folder(folder: str | Path, root_name: str | None = None) -> bytes:
    """Every file under ``folder`` (recursively, symlinks skipped) in a zip, below ``root_name``/."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"'{folder}' is not a folder: nothing to zip.")
    root = root_name if root_name is not None else folder.name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            name = "/".join(filter(None, [root, path.relative_to(folder).as_posix()]))
            compression = zipfile.ZIP_STORED if path.suffix in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
            archive.write(path, name, compress_type=compression)
    return buffer.getvalue()


def run_zip_name(run_id: int) -> str:
    return f"spanlab-run-{run_id}"


def zip_run_folder(run_id: int) -> bytes:
    """The model folder of run ``run_id`` as zip bytes (folder ``spanlab-run-<id>/`` inside)."""
    run = storage.get_run(run_id)
    folder = run.get("artifact_dir")
    if not folder:
        raise ArtifactError(f"Run {run_id} has no saved model (status: {run['status']}): only completed runs, "
                            "or cancelled runs that had reached an evaluation, keep one.")
    if not (Path(folder) / "config.json").exists():
        raise ArtifactError(f"The model folder of run {run_id} ({folder}) is missing or incomplete: it may have been "
                            "deleted by hand. Train the run again.")
    return zip_folder(folder, run_zip_name(run_id))
