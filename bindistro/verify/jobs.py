"""Verify as independent jobs for an existing CI engine (GitLab, Buildbot …): no scheduler of ours.

`plan` splits a verify run into jobs — a gate, or a gate for one format and/or machine when the gate
declares `SPLIT` — each with an estimated cost and a stage (a gate whose `AFTER` names a planned gate
runs in stage 2). `run_job` runs one on any host sharing the state DB and the objects and stores its
findings; `collect` merges every planned job's findings into the candidate's report, exactly what
a local `verify` of the same gates writes (waivers apply as always).
"""
from __future__ import annotations

import datetime as dt
import socket
import time
from dataclasses import dataclass

from sqlalchemy import select

from ..errors import BindistroError
from ..store.db import upsert
from ..store.schema import verify_jobs
from . import MANDATORY, _context, _save, all_gates, report


@dataclass
class Job:
    id: str
    gate: str
    format: str | None
    machine: str | None
    stage: int
    cost: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def plan(spec, store, cid: int, only: list[str] | None = None) -> list[Job]:
    if not any(r.id == cid for r in store.db.candidates()):
        raise BindistroError(f"candidate {cid}: no such candidate (see `bindistro show`)")
    gates = all_gates()
    names = [n for n in gates if not only or n in only or n in MANDATORY]
    out = []
    for name in names:
        mod = gates[name]
        split = getattr(mod, "SPLIT", ())
        fmts = spec.formats if "format" in split else [None]
        machines = [m.name for m in spec.machines] if "machine" in split else [None]
        stage = 2 if set(getattr(mod, "AFTER", ())) & set(names) else 1
        for f in fmts:
            for m in machines:
                jid = ":".join(x for x in (name, f, m) if x)
                out.append(Job(jid, name, f, m, stage, getattr(mod, "COST", 2)))
    return out


def _find(spec, store, cid, job_id: str, only) -> Job:
    jobs = {j.id: j for j in plan(spec, store, cid, only)}
    if job_id not in jobs:
        raise BindistroError(f"candidate {cid}: no verify job {job_id!r} in its plan "
                             f"(`bindistro verify {cid} --plan` lists them)")
    return jobs[job_id]


def run_job(spec, store, cid: int, job_id: str, only: list[str] | None = None) -> dict:
    job = _find(spec, store, cid, job_id, only)
    ctx = _context(spec, store, cid)
    ctx.only = {k: v for k, v in (("format", job.format), ("machine", job.machine)) if v}
    for dep in getattr(all_gates()[job.gate], "AFTER", ()):
        ctx.done[dep] = [f for r in _rows(store, cid) if r.gate == dep for f in r.findings]
    t0 = time.monotonic()
    findings = [f.to_dict() for f in all_gates()[job.gate].run(ctx)]
    row = {"candidate": cid, "job": job.id, "gate": job.gate, "findings": findings, "host": socket.gethostname(),
           "seconds": round(time.monotonic() - t0, 1),
           "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    with store.db.begin() as c:
        upsert(c, verify_jobs, [row], ["candidate", "job"])
    return {k: row[k] for k in ("candidate", "job", "host", "seconds")} | {"findings": len(findings)}


def _rows(store, cid: int):
    with store.db.engine.connect() as c:
        return list(c.execute(select(verify_jobs).where(verify_jobs.c.candidate == cid)))


def collect(spec, store, cid: int, only: list[str] | None = None) -> dict:
    jobs = plan(spec, store, cid, only)
    done = {r.job: r for r in _rows(store, cid)}
    missing = [j.id for j in jobs if j.id not in done]
    if missing:
        raise BindistroError(f"candidate {cid}: {len(missing)} verify job(s) not run yet: {', '.join(missing[:5])}"
                             + (" …" if len(missing) > 5 else ""))
    findings = [f for j in jobs for f in done[j.id].findings]
    _save(store, cid, list(dict.fromkeys(j.gate for j in jobs)), findings)
    return report(store, cid)
