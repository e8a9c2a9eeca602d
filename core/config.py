"""Where SpanLab keeps its state: SPANLAB_HOME (default ``data/``) and DATABASE_URL; which local model folders a
shared server may read (SPANLAB_MODEL_ROOTS)."""
from __future__ import annotations

import os
from pathlib import Path

from core.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The folder holding the SQLite database and run artifacts (created on demand)."""
    path = Path(os.environ.get("SPANLAB_HOME") or PROJECT_ROOT / "data").expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "is a file, not a folder" if path.exists() or isinstance(exc, (FileExistsError, NotADirectoryError)) \
            else f"cannot be created ({exc.strerror or exc})"
        raise UserError(f"SPANLAB_HOME {path} {what}: point SPANLAB_HOME at a folder SpanLab may write "
                        "(or unset it to use data/)") from exc
    return path


def database_url() -> str:
    """SQLAlchemy URL: DATABASE_URL if set, else SQLite inside SPANLAB_HOME."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{home() / 'spanlab.db'}"


def runs_dir() -> Path:
    """Folder of trained-model artifacts, one sub-folder per run."""
    path = home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_roots() -> list[Path] | None:
    """Folders that local models may be read from, as real paths: SPANLAB_MODEL_ROOTS (folders separated by
    ``os.pathsep``, ':' on Linux) plus the run folder, so a run's own model stays usable. None when the variable
    is unset or empty: any folder on this machine (local use)."""
    value = os.environ.get("SPANLAB_MODEL_ROOTS", "").strip()
    if not value:
        return None
    roots = [Path(os.path.realpath(Path(part.strip()).expanduser()))
             for part in value.split(os.pathsep) if part.strip()]
    return [*roots, Path(os.path.realpath(runs_dir()))]
