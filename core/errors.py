"""Which failures are the user's to fix (bad input, settings, a broken database or a full disk) and which are bugs.

Every error SpanLab raises on purpose for the user derives from :class:`UserError`; its message says what to do.
``explain`` turns the failures that come from the environment rather than from SpanLab's code (an unusable
DATABASE_URL, a database file that is read-only, corrupt or newer than this code, a full disk, memory running out)
into such a message too. Anything else is a bug: the CLI shows its traceback and exits 1.
"""
from __future__ import annotations

import errno
import traceback
from typing import Callable

# OSError numbers that describe the machine, not SpanLab's code: a full disk, no permission, read-only storage...
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.EISDIR,
                      errno.ENOTDIR, errno.ENAMETOOLONG, errno.EFBIG, errno.EIO, errno.ELOOP}


class UserError(Exception):
    """A mistake the user can fix (input, settings, configuration); shown as ``error: message``, no traceback."""


class SettingsError(UserError, ValueError):
    """A setting outside what it allows (a precision this device cannot run, ...)."""


def explain(exc: BaseException) -> str | None:
    """A message for a failure caused by the environment, or None when ``exc`` looks like a bug."""
    for check in _EXPLAINERS:
        message = check(exc)
        if message:
            return message
    return None


def _database_url_shown() -> str:
    """DATABASE_URL (password hidden) or the SQLite file, for messages; never raises."""
    try:
        from sqlalchemy.engine import make_url

        from core.config import database_url
        return make_url(database_url()).render_as_string(hide_password=True)
    except Exception:
        import os
        return "DATABASE_URL" if os.environ.get("DATABASE_URL") else "the SQLite database in SPANLAB_HOME"


def _from_sqlalchemy(exc: BaseException) -> bool:
    return any("sqlalchemy" in frame.filename or "alembic" in frame.filename
               for frame in traceback.extract_tb(exc.__traceback__))


def _database(exc: BaseException) -> str | None:
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - sqlalchemy is a requirement
        return None
    fix = ("set DATABASE_URL to a URL such as sqlite:////path/to/spanlab.db or "
           "postgresql+psycopg://user:password@host/dbname (or unset it to use SPANLAB_HOME)")
    if isinstance(exc, sa_exc.NoSuchModuleError):
        return f"DATABASE_URL names a database kind SQLAlchemy does not know ({exc}): {fix}"
    if isinstance(exc, sa_exc.ArgumentError):
        return f"DATABASE_URL is not a usable database URL ({exc}): {fix}"
    if isinstance(exc, ImportError) and _from_sqlalchemy(exc):
        return (f"the database driver for {_database_url_shown()} is not installed ({exc}): install it "
                "(PostgreSQL: pip install 'psycopg[binary]' and use postgresql+psycopg://...) or " + fix)
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.DatabaseError)) and not isinstance(
            exc, (sa_exc.IntegrityError, sa_exc.ProgrammingError, sa_exc.DataError)):
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        lowered = detail.lower()
        if "no such table" in lowered or "no such column" in lowered or "syntax error" in lowered:
            return None  # the schema SpanLab expects is missing: a bug (or a hand-edited database), not a setting
        where = _database_url_shown()
        if "readonly" in lowered or "read-only" in lowered:
            return (f"the database {where} is read-only ({detail}): give SpanLab write permission on the file "
                    "and its folder, or point SPANLAB_HOME / DATABASE_URL at a writable place")
        if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
            return (f"the database {where} is damaged or not a SpanLab database ({detail}): restore it from a "
                    "backup, or point SPANLAB_HOME / DATABASE_URL at another database")
        if "locked" in lowered or "busy" in lowered:
            return (f"the database {where} stayed locked by another SpanLab process ({detail}): try again when "
                    "that import or run has finished")
        if "disk" in lowered or "full" in lowered:
            return f"the database {where} cannot grow ({detail}): free disk space and try again"
        return f"cannot use the database {where} ({detail}): check that it is reachable and that SpanLab may write it"
    return None


def _schema(exc: BaseException) -> str | None:
    try:
        from alembic.util.exc import CommandError
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, CommandError) and "locate revision" in str(exc):
        from core.storage import HEAD_REVISION
        return (f"the database {_database_url_shown()} was written by a newer SpanLab ({exc}; this version knows "
                f"schema revisions up to {HEAD_REVISION}): upgrade SpanLab, or point SPANLAB_HOME / DATABASE_URL "
                "at another database")
    return None


def _os(exc: BaseException) -> str | None:
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where} — check the path, its permissions and the free disk space"
    return None


def _memory(exc: BaseException) -> str | None:
    if isinstance(exc, MemoryError):
        return "out of memory: use a smaller file (or split it), a smaller batch size or max length"
    return None


_EXPLAINERS: list[Callable[[BaseException], str | None]] = [_database, _schema, _os, _memory]
