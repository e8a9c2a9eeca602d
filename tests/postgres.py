"""A throwaway PostgreSQL server for the tests that must pass on both databases.

``PostgresServer.start()`` finds Debian's ``postgresql`` binaries (/usr/lib/postgresql/<version>/bin, or initdb on
PATH, or SPANLAB_PG_BIN), runs ``initdb`` into a temporary folder and starts the server listening on a Unix socket
only. PostgreSQL refuses to run as root, so under root (CI) the folder is handed to an unprivileged user (``postgres``
when it exists, else ``nobody``) and the server runs as that user. Each test gets a fresh database
(``new_database``), dropped afterwards. When no server can be started, ``unavailable`` says why (shown as the skip
reason); scripts/test.sh installs Debian's package where it is missing.
"""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "spanlab"


def find_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None."""
    given = os.environ.get("SPANLAB_PG_BIN")
    candidates = [given] if given else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                         if Path(p).parent.name.isdigit() else 0, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for folder in candidates:
        if folder and all((Path(folder) / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    return None


class PostgresServer:
    def __init__(self):
        self.folder: Path | None = None
        self.socket_dir: Path | None = None
        self.unavailable: str | None = None
        self._user: pwd.struct_passwd | None = None
        self._names = itertools.count(1)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=self.folder,
                              env={**os.environ, "LC_ALL": "C.UTF-8"}, **kwargs)

    def start(self) -> "PostgresServer":
        bin_dir = find_bin()
        if bin_dir is None:
            self.unavailable = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql "
                                "package (scripts/test.sh does) or set SPANLAB_PG_BIN")
            return self
        try:
            import psycopg  # noqa: F401
        except ImportError:
            self.unavailable = "the psycopg driver is not installed: pip install -r requirements.txt"
            return self
        self.folder = Path(tempfile.mkdtemp(prefix="spanlab-pg-"))
        self.socket_dir = self.folder / "socket"
        self.socket_dir.mkdir()
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            for name in ("postgres", "nobody"):
                try:
                    self._user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self._user is None:
                self.unavailable = "running as root and neither user 'postgres' nor 'nobody' exists to run PostgreSQL"
                return self
            for path in (self.folder, self.socket_dir):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        data = self.folder / "data"
        done = self._run(str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                         "--no-sync", "--locale=C")
        if done.returncode != 0:
            self.unavailable = f"initdb failed: {(done.stderr or done.stdout).strip()[-500:]}"
            return self
        options = (f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        done = self._run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.folder / "log"),
                         "-w", "-t", "60", "start")
        if done.returncode != 0:
            log = (self.folder / "log").read_text(errors="replace")[-500:] if (self.folder / "log").exists() else ""
            self.unavailable = f"pg_ctl start failed: {(done.stderr or done.stdout).strip()[-300:]} {log}"
            return self
        self._bin = bin_dir
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def _admin(self, sql: str) -> None:
        import psycopg
        with psycopg.connect(host=str(self.socket_dir), user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = f"spanlab_test_{os.getpid()}_{next(self._names)}"
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1].split('?')[0]} WITH (FORCE)")

    def stop(self) -> None:
        if self.folder is None:
            return
        if self.unavailable is None:
            self._run(str(self._bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
