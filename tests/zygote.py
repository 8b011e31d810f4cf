"""Run `bindistro ARGS` as a process of its own without paying Python's start and the command line's
imports each time (~0.3 s of CPU; the hostile corpus runs the command ~100 times, the verify-jobs
test ~40).

A server process imports the command line and the modules its commands load, then forks a child
per run. The child is a process like the console script's: its own pid, cwd, environment, address
space limit, stdin from /dev/null, stdout and stderr to files, its exit status from SystemExit as
the interpreter gives it, an uncaught exception printed as the interpreter prints it (a traceback
the tests look for), atexit handlers and non-daemon threads finished before it exits. The console
script itself (`bindistro.cli:main`) still runs as a real executable in the tests that start it in
a shell (the disk-full and read-only ones) and everywhere else a subprocess is used.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SERVER = r"""
import atexit, importlib, json, os, resource, sys, threading, traceback
for m in ("bindistro.cli", "bindistro.store", "bindistro.verify", "bindistro.stage", "bindistro.release",
          "bindistro.restore", "bindistro.formats", "bindistro.keys", "sqlalchemy", "jsonschema"):
    importlib.import_module(m)
from bindistro.cli import MODULES, main
for m in set(MODULES.values()):        # (the entry point imports them when a command runs)
    importlib.import_module("bindistro.cli." + m)
out = os.fdopen(int(sys.argv[1]), "w", buffering=1)
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            out.close()         # the server's status pipe is not the command's
            os.setsid()
            os.chdir(req["cwd"])
            os.environ.clear()
            os.environ.update(req["env"])
            if req["memory"]:
                resource.setrlimit(resource.RLIMIT_AS, (req["memory"], req["memory"]))
            for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                                    (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                    (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
                os.dup2(os.open(path, flags, 0o644), fd)
            sys.argv = ["bindistro", *req["argv"]]
            try:
                main()
                code = 0
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    code = e.code or 0
                else:
                    print(e.code, file=sys.stderr)
            except BaseException:
                sys.excepthook(*sys.exc_info())
            threading._shutdown()
            atexit._run_exitfuncs()
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code & 0xFF)
    out.write(f"{pid}\n")
    _, status = os.waitpid(pid, 0)
    out.write(f"{status}\n")
"""


class Zygote:
    """One server; one run at a time (use one per thread)."""

    def __init__(self):
        self._r, w = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(w)], stdin=subprocess.PIPE, text=True,
                                     pass_fds=(w,), env=dict(os.environ, COLUMNS="200"))
        os.close(w)
        self._buf = b""

    def _line(self, timeout: float | None) -> str | None:
        while b"\n" not in self._buf:
            if not select.select([self._r], [], [], timeout)[0]:
                return None
            chunk = os.read(self._r, 4096)
            if not chunk:
                raise RuntimeError(f"the zygote ended (exit {self.proc.wait()})")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def run(self, argv: list, cwd: Path, env: dict, memory: int = 0, timeout: float = 60) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as t:
            req = {"argv": [str(a) for a in argv], "cwd": str(cwd), "env": env, "memory": memory,
                   "stdout": f"{t}/out", "stderr": f"{t}/err"}
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            pid = int(self._line(30))
            status = self._line(timeout)
            if status is None:
                os.killpg(pid, signal.SIGKILL)
                self._line(None)
                raise subprocess.TimeoutExpired(["bindistro", *req["argv"]], timeout)
            read = lambda n: Path(t, n).read_text(errors="replace") if Path(t, n).exists() else ""   # noqa: E731
            return subprocess.CompletedProcess(["bindistro", *req["argv"]], os.waitstatus_to_exitcode(int(status)),
                                               read("out"), read("err"))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        os.close(self._r)


class Zygotes:
    """A Zygote per thread, all closed at the end (`close()`, or leaving a `with` block)."""

    def __enter__(self) -> "Zygotes":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __init__(self):
        self._local = threading.local()
        self._all: list[Zygote] = []
        self._lock = threading.Lock()

    def get(self) -> Zygote:
        z = getattr(self._local, "z", None)
        if z is None:
            z = self._local.z = Zygote()
            with self._lock:
                self._all.append(z)
        return z

    def close(self):
        for z in self._all:
            z.close()
