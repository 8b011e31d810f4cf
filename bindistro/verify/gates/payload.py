"""Package payloads: members that would escape the install root, setuid files, the file lists.

Staging reads only control data; this gate unpacks each payload (streamed, bounded: formats/base.py)
and keeps the result per object hash in the store. Objects never change, so each package version is
inspected once in its life and a release's verify costs only its new packages. New ones are spread
over worker processes, one per core, when there are enough of them to pay for forking (workers.py).
The gate always runs (verify adds it to any --gate list, and release runs it on a report that lacks
it): it is what keeps a hostile package off devices.
"""
from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from ... import model
from ... import workers as workersmod
from ...formats import get as get_format
from ...progress import counter
from ..finding import Finding

NAME = "payload"
CHUNK = 32          # files per worker task
PACKAGE_SECONDS = 1e-3
UNPACK_RATE = 50e6
MAX_LISTED = 20     # setuid files named per package


def _inspect(fmt: str, paths: list[str]) -> dict[str, dict]:
    from pathlib import Path
    got = get_format(fmt).inspect_many([Path(p) for p in paths])
    return {p: {"problems": i.problems, "setuid": i.setuid, "files": i.files, "unpacked": i.unpacked}
            for p, i in got.items()}


def inspect_objects(store, todo: dict[str, str]) -> dict[str, dict]:
    """sha256 -> result for objects not inspected before ({sha256: format}); kept in the store."""
    jobs = [(fmt, [str(store.objects.path(s)) for s in shas[i:i + CHUNK]])
            for fmt in sorted(set(todo.values()))
            for shas in [sorted(s for s, f in todo.items() if f == fmt)]
            for i in range(0, len(shas), CHUNK)]
    results: dict[str, dict] = {}
    # the work, estimated (measured here: ~0.1-1.5 ms a sample package, xz payloads unpacked at ~50 MB/s)
    work = sum(PACKAGE_SECONDS + os.path.getsize(p) / UNPACK_RATE for _, paths in jobs for p in paths)
    workers = workersmod.count(work)
    with counter("payload: unpacking new packages", len(todo)) as advance:
        if workers < 2 or len(jobs) < 2:
            outs = (_inspect(f, p) for f, p in jobs)
            ex = None
        else:
            ex = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            outs = ex.map(_inspect, [f for f, _ in jobs], [p for _, p in jobs])
        try:
            for out in outs:
                results.update(out)
                advance(len(out))
        finally:
            if ex:
                ex.shutdown()
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    by_sha = {os.path.basename(p): r for p, r in results.items()}
    store.db.save_payload_checks([dict(sha256=s, format=todo[s], checked=now, **r) for s, r in by_sha.items()])
    return by_sha


def run(ctx) -> list[Finding]:
    pkgs = [a for a in ctx.files if a.kind == model.PACKAGE]      # (no control data needed)
    shas = sorted({a.sha256 for a in pkgs})
    known = ctx.store.db.payload_checks(shas)
    todo = {a.sha256: a.format for a in pkgs if a.sha256 not in known}
    if todo:
        known.update(inspect_objects(ctx.store, todo))
    out = []
    for a in pkgs:
        r = known[a.sha256]
        for n, problem in enumerate(r["problems"]):
            out.append(Finding("error", NAME, "payload.problem", a.path, problem, scope=str(n)))
        if r["setuid"]:
            names = ", ".join(r["setuid"][:MAX_LISTED]) + (" …" if len(r["setuid"]) > MAX_LISTED else "")
            out.append(Finding("info", NAME, "payload.setuid", a.path,
                               f"{len(r['setuid'])} setuid/setgid file(s): {names}", {"files": r["setuid"]}))
    out.append(Finding("info", NAME, "payload.summary", "-",
                       f"{len(shas)} package files: {len(todo)} unpacked now, {len(shas) - len(todo)} inspected before",
                       {"packages": len(pkgs), "inspected_now": len(todo),
                        "unpacked_bytes": sum(known[s]["unpacked"] for s in shas)}))
    return out
