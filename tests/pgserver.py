"""A throw-away PostgreSQL server for the tests: Debian's binaries, a data dir and a socket dir of its
own, no TCP port. initdb and pg_ctl refuse to run as root, so as root they run as `postgres` in a
directory that user owns."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

BIN = Path(os.environ.get("BINDISTRO_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (BIN / "initdb").is_file()


class PgServer:
    def __init__(self):
        # not under pytest's basetemp: that is root's, mode 0700, and the server runs as postgres
        self.dir = Path(tempfile.mkdtemp(prefix="bindistro-pg-"))
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self._run(BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.dir / "log", "-w", "-o",
                  f"-k {self.dir} -c listen_addresses='' -c fsync=off -c max_connections=60", "start")

    def _run(self, *args):
        r = subprocess.run([*self.as_user, *map(str, args)], capture_output=True, text=True, cwd=self.dir)
        if r.returncode:
            log = (self.dir / "log").read_text()[-2000:] if (self.dir / "log").exists() else ""
            raise RuntimeError(f"{args[0]} failed: {r.stderr[-2000:]}\n{log}")
        return r

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@/{db}?host={self.dir}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        name = "t" + uuid.uuid4().hex[:12]
        self._run(BIN / "createdb", "-h", self.dir, "-U", "postgres", name)
        return self.url(name)

    def stop(self):
        subprocess.run([*self.as_user, str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, cwd=self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
