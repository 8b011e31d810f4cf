"""Fault injection for the crash tests, off unless the environment asks for it.

BINDISTRO_KILL_AT=N kills the process with SIGKILL at the N-th fault point it passes (no cleanup
runs, as when the machine loses power or an operator kills the job); BINDISTRO_FAULT_LOG=FILE
appends each point's name, so a test can count the points of a run and spread kills over them.
"""
from __future__ import annotations

import os
import signal

_KILL_AT = int(os.environ.get("BINDISTRO_KILL_AT", "0") or 0)
_LOG = os.environ.get("BINDISTRO_FAULT_LOG")
_seen = 0


def point(name: str) -> None:
    global _seen
    if not (_KILL_AT or _LOG):
        return
    _seen += 1
    if _LOG:
        with open(_LOG, "a") as f:
            f.write(f"{_seen} {name}\n")
    if _seen == _KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)


def reset() -> None:
    """Re-read the environment (a forked test child sets it after import)."""
    global _KILL_AT, _LOG, _seen
    _KILL_AT = int(os.environ.get("BINDISTRO_KILL_AT", "0") or 0)
    _LOG = os.environ.get("BINDISTRO_FAULT_LOG")
    _seen = 0
