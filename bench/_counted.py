"""Run a Python script (argv[1:]) so that everything it caused is counted in its rusage, and report the
bytes its process tree read. A release signs through gpg-agents, and an agent is a daemon: it leaves
the process tree, so its CPU (most of a release's signing) was in no command's figure. Here the script
runs as a child subreaper: daemons it starts are re-parented to it, and when it exits those still
running are stopped and every one is reaped, so wait4() of this process includes their CPU.

Writes {"rchar": bytes read, "daemons_cpu_s": CPU of the daemons reaped at exit} to $SCALE_IO."""
from __future__ import annotations

import atexit
import ctypes
import json
import os
import resource
import runpy
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def _children() -> list[int]:
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(b")", 1)[1].split()[1]) == me:       # (field 4, after the command's name)
                out.append(int(d))
    return out


def _signal_children(sig: int) -> None:
    for pid in _children():
        try:
            os.kill(pid, sig)
        except OSError:         # (gone meanwhile)
            pass


def _reap_all(seconds: float = 10.0) -> None:
    """Stop the daemons still running (SIGTERM, SIGKILL after `seconds`) and reap every child."""
    _signal_children(signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                _signal_children(signal.SIGKILL)
            time.sleep(0.01)


def _report() -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _reap_all()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open("/proc/self/io") as f:
        io = dict(line.split(": ") for line in f.read().splitlines() if line)
    daemons = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    with open(os.environ["SCALE_IO"], "w") as f:
        json.dump({"rchar": int(io["rchar"]), "daemons_cpu_s": round(daemons, 3)}, f)


if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
