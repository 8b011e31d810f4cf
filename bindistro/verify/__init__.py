"""`bindistro verify CAND`: run the gates (plug-ins in verify/gates/) and keep the report.

A gate is a module with NAME and run(ctx) -> list[Finding]. Reports and waivers live in the
metadata DB; `release` refuses a candidate whose last report has unwaived errors.
"""
from __future__ import annotations

import datetime as dt
import functools
import importlib
import pkgutil
import random
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, insert, select

from .. import model, series
from ..errors import BindistroError
from ..formats import get as get_format
from ..model import Artifact, Release
from ..spec import Spec
from ..store import Store
from ..store.schema import reports, waivers
from .finding import Finding, legacy_id
from .history import History


@dataclass
class Context:
    spec: Spec
    store: Store
    candidate: int
    files: list[Artifact]                   # the candidate's artifacts (packages' control data: see artifacts)
    releases: list[Release]                 # published releases of its series, oldest first, this candidate excluded
    work: Path
    cross: list[Release] = field(default_factory=list)   # the latest release of each older series devices move from
    _arts: dict = field(default_factory=dict)
    done: dict = field(default_factory=dict)   # gate -> its findings in this run (gates run in name order)
    _released: list | None = None
    _feeds: dict = field(default_factory=dict)
    _pools: dict = field(default_factory=dict)
    _images: dict = field(default_factory=dict)
    _image_pkgs: dict = field(default_factory=dict)
    _histories: dict = field(default_factory=dict)
    only: dict = field(default_factory=dict)    # a verify job's slice: {"format": F, "machine": M}
    _artifacts: list | None = None

    @property
    def artifacts(self) -> list[Artifact]:
        """The candidate's artifacts with their control data, read when a gate first asks and
        filled into `files` (the payload gate needs none: decoding a world's control data was most
        of its run)."""
        if self._artifacts is None:
            self._artifacts = self.store.db.with_control(self.files, keep=True, copy=False)
        return self._artifacts

    def formats(self) -> list[str]:
        """The formats this run checks: the spec's, or the one of a verify job's slice."""
        return [f for f in self.spec.formats if self.only.get("format", f) == f]

    def machines(self) -> list:
        return [m for m in self.spec.machines if self.only.get("machine", m.name) == m.name]

    @functools.cached_property
    def history_releases(self) -> list[Release]:
        """The releases whose packages the cumulative feeds hold (series.history_releases), read once."""
        return series.history_releases(self.spec, self.store)

    def _feed_names(self, fmt: str, machine) -> set[str]:
        return {get_format(fmt).feed_name(a) for a in machine.archs}

    def packages(self, fmt: str, machine) -> list[Artifact]:
        """The candidate's packages in `machine`'s feeds of `fmt` (their control data not read)."""
        names = self._feed_names(fmt, machine)
        return [a for a in self.files if a.kind == model.PACKAGE and a.format == fmt and a.arch in names]

    @functools.cached_property
    def released_feeds(self) -> set[tuple[str, str]]:
        """(format, feed) of every feed the history's releases published packages in, read once."""
        return self.store.db.released_feeds([r.candidate for r in self.history_releases])

    def feed_archs(self, fmt: str, machine) -> set[str]:
        """The feeds of `machine` that hold packages of `fmt` after this candidate."""
        released = {a for f, a in self.released_feeds if f == fmt}
        return (released & self._feed_names(fmt, machine)) | {a.arch for a in self.packages(fmt, machine)}

    def feed_set(self, fmt: str, machine) -> tuple[list[Artifact], list[Artifact]]:
        """(cumulative feed contents after this candidate, the candidate's own packages) for a machine,
        with control data (the solver gates need none of it: feed_pool)."""
        key = (fmt, machine.name)
        if key not in self._feeds:
            if self._released is None:      # read once per run: at distro scale it is most of the DB
                self._released = series.history(self.spec, self.store)
            names = self._feed_names(fmt, machine)
            cand = [a for a in self.artifacts if a.kind == model.PACKAGE and a.format == fmt and a.arch in names]
            keys = {(a.arch, a.filename) for a in cand}
            old = [a for a in self._released
                   if a.format == fmt and a.arch in names and (a.arch, a.filename) not in keys]
            self._feeds[key] = (old + cand, cand)
        return self._feeds[key]

    def feed_pool(self, fmt: str, machine):
        """A solver pool holding the cumulative feeds after this candidate, loaded once per run for
        every gate."""
        key = (fmt, machine.name)
        if key not in self._pools:
            self._pools[key] = self._history_pool(fmt, machine) or self._full_pool(fmt, machine)
        return self._pools[key]

    def _history_pool(self, fmt: str, machine):
        """The pool from the kept repos of the published feeds (verify/history.py) and the
        candidate's packages no release published yet. None, for the full build, when the
        candidate has a published file name with other content (release refuses that; the gates
        still check the candidate's) or another run's newer history replaced a kept repo."""
        from ..solve import Pool
        pool = Pool(fmt)
        try:
            held = History(self.store, self.history_releases, self.work / "solv").load(pool, fmt, sorted(self._feed_names(fmt, machine)))
        except OSError:
            return None
        new = [a for a in self.packages(fmt, machine) if a.sha256 not in held.get(a.arch, {})]
        published = {(arch, f) for arch, h in held.items() for f in h.values()}
        if any((a.arch, a.filename) in published for a in new):
            return None
        pool.add("candidate", self.store.db.with_control(new))
        pool.ready()
        return pool

    def _full_pool(self, fmt: str, machine):
        from ..solve import Pool
        pool = Pool(fmt)
        pool.add("feeds", self.feed_set(fmt, machine)[0])
        pool.ready()
        return pool

    def image_set(self, rel: Release, machine) -> list[tuple[str, str]]:
        """(name, version) of every package in the image `rel` shipped for `machine` (its manifest)."""
        if rel.name not in self._images:     # images only: a release lists its whole build
            self._images[rel.name] = self.store.db.candidate(rel.candidate, kinds=(model.IMAGE,))[1]
        for a in self._images[rel.name]:
            if a.kind == model.IMAGE and a.name.endswith(".manifest") and a.meta.get("machine") == machine.name:
                text = self.store.objects.path(a.sha256).read_text()
                return [(l.split()[0], l.split()[2]) for l in text.splitlines() if len(l.split()) >= 3]
        return []

    def installed_set(self, rel: Release, fmt: str, machine) -> tuple[list[Artifact], int]:
        """The packages a device of release `rel` has installed, from `rel`'s own build (a release
        lists every package of its build; a release of an older series has its own feeds), and how
        many of its image's packages were not found there."""
        wanted = self.image_set(rel, machine)
        m = self.machine_of(rel, machine)
        names = {get_format(fmt).feed_name(a) for a in m.archs}
        by_nv = {(a.name, a.version): a for a in self._image_packages(rel) if a.format == fmt and a.arch in names}
        got = [by_nv[k] for k in wanted if k in by_nv]
        return got, len(wanted) - len(got)

    def _image_packages(self, rel: Release) -> list[Artifact]:
        """The packages of `rel`'s build that one of its images lists, with their control data. Every
        earlier release is an upgrade path: reading its whole build (100,000 rows at distro scale)
        made verify's time and memory grow with every release."""
        if rel.name not in self._image_pkgs:
            listed = {nv for m in self.spec.machines for nv in self.image_set(rel, m)}
            self._image_pkgs[rel.name] = self.store.db.packages_named(rel.candidate, listed)
        return self._image_pkgs[rel.name]

    def machine_of(self, rel: Release, machine):
        """`machine` as the series of `rel` defines it (a branch may name its feeds otherwise)."""
        if rel.series == self.spec.current:
            return machine
        return next((m for m in self.spec.in_series(rel.series).machines if m.name == machine.name), machine)

    def series_history(self, name: str) -> list[Artifact]:
        """The cumulative feeds of series `name` (an older one), read once per run (no control data)."""
        if name not in self._histories:
            self._histories[name] = series.history(self.spec.in_series(name), self.store, control=False)
        return self._histories[name]

    def release_artifacts(self, rel: Release) -> list[Artifact]:
        if rel.name not in self._arts:
            self._arts[rel.name] = self.store.db.candidate(rel.candidate)[1]
        return self._arts[rel.name]

    @property
    def last(self) -> Release | None:
        return self.releases[-1] if self.releases else None

    def upgrade_sources(self) -> list[tuple[str, Release]]:
        """first, last, one random earlier release and n-2 (the skipped-release path), deduplicated."""
        rels = self.releases
        picks = [("first", rels[0]), ("last", rels[-1])] if rels else []
        middle = rels[1:-2] or rels[1:-1]      # not n-2 when there is a choice: it is a path of its own
        if middle:
            picks.append(("random", random.Random(self.candidate).choice(middle)))
        if len(rels) >= 2:
            picks.append(("n-2", rels[-2]))
        picks += [(f"series-{r.series}", r) for r in self.cross]      # a word: it names work dirs too
        seen, out = set(), []
        for why, r in picks:
            if r.name not in seen:
                seen.add(r.name)
                out.append((why, r))
        return out


    def solver_sources(self) -> list[tuple[str, Release]]:
        """Every earlier release a device may still run (releases past their own EOL left out),
        labelled as upgrade_sources labels the ones it picks: a solve costs milliseconds."""
        labels = {r.name: why for why, r in self.upgrade_sources()}
        today = dt.date.today()
        return [(labels.get(r.name, "earlier"), r) for r in self.releases + self.cross
                if not r.eol or dt.date.fromisoformat(r.eol[:10]) > today]


def all_gates() -> dict[str, object]:
    pkg = importlib.import_module(f"{__name__}.gates")
    out = {}
    for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{pkg.__name__}.{m.name}")
        out[mod.NAME] = mod
    return out


MANDATORY = ("payload",)   # run whatever --gate says: they keep hostile packages off devices


def _context(spec: Spec, store: Store, cid: int) -> Context:
    got = store.db.candidate(cid, control=False)
    if not got:
        raise BindistroError(f"candidate {cid}: no such candidate (see `bindistro show`)")
    row, arts = got
    spec = spec.in_series(row.series)
    # compare with what its series published before this candidate, and with the latest release of
    # every older series whose devices move to this one
    rels = [r for r in series.releases(spec, store, spec.current) if r.candidate < cid]
    cross = [r for r in (series.latest(spec, store, o, before=cid) for o in spec.upgrade_from()) if r]
    work = store.dir / "work"
    work.mkdir(exist_ok=True)
    return Context(spec, store, cid, arts, rels, work, cross=cross)


def _run_gates(ctx: Context, names) -> tuple[list[str], list[Finding]]:
    findings: list[Finding] = []
    ran = []
    for name, mod in all_gates().items():
        if name not in names:
            continue
        ran.append(name)
        ctx.done[name] = mod.run(ctx)
        findings += ctx.done[name]
    return ran, findings


def _save(store: Store, cid: int, gates: list[str], findings: list[dict]) -> None:
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    data = list({f["id"]: f for f in findings}.values())   # same finding from two feeds: once
    with store.db.begin() as c:
        c.execute(delete(reports).where(reports.c.candidate == cid))
        c.execute(insert(reports).values(candidate=cid, created=created, gates=gates, findings=data))


def run(spec: Spec, store: Store, cid: int, only: list[str] | None = None) -> dict:
    ctx = _context(spec, store, cid)
    names = set(all_gates()) if not only else set(only) | set(MANDATORY)
    ran, findings = _run_gates(ctx, names)
    _save(store, cid, ran, [f.to_dict() for f in findings])
    return report(store, cid)


def with_mandatory(spec: Spec, store: Store, cid: int, rep: dict) -> dict:
    """`rep` with the mandatory gates' findings added, when it was made without them (a report
    from before they were mandatory)."""
    missing = [g for g in MANDATORY if g not in rep["gates"]]
    if not missing:
        return rep
    with store.db.engine.connect() as c:
        old = c.execute(select(reports).where(reports.c.candidate == cid)).first()
    ran, findings = _run_gates(_context(spec, store, cid), missing)
    _save(store, cid, list(old.gates) + ran, list(old.findings) + [f.to_dict() for f in findings])
    return report(store, cid)


def report(store: Store, cid: int) -> dict | None:
    with store.db.engine.connect() as c:
        r = c.execute(select(reports).where(reports.c.candidate == cid)).first()
        w = {x.finding: {"reason": x.reason, "created": x.created}
             for x in c.execute(select(waivers).where(waivers.c.candidate == cid))}
    if not r:
        return None
    findings = []
    for f in r.findings:
        f = dict(f)
        # a waiver given before findings had rules names the id the message gave then
        waiver = w.get(f["id"]) or w.get(legacy_id(f["gate"], f["subject"], f["message"]))
        if waiver:
            f["waived"] = waiver
        findings.append(f)
    return {"candidate": cid, "created": r.created, "gates": r.gates, "findings": findings,
            "summary": summarize(findings)}


def summarize(findings: list[dict]) -> dict:
    s = {"error": 0, "warning": 0, "info": 0, "waived": 0}
    for f in findings:
        if f.get("waived"):
            s["waived"] += 1
        else:
            s[f["severity"]] += 1
    return s


def unresolved_errors(rep: dict) -> list[dict]:
    return [f for f in rep["findings"] if f["severity"] == "error" and not f.get("waived")]


def waive(store: Store, cid: int, finding: str, reason: str) -> dict:
    rep = report(store, cid)
    if rep is None:
        raise BindistroError(f"candidate {cid}: not verified yet; run `bindistro verify {cid}` first")
    match = [f for f in rep["findings"] if f["id"] == finding]
    if not match:
        raise BindistroError(f"candidate {cid}: no finding {finding} in its last report")
    if not reason.strip():
        raise BindistroError("--reason must say why the finding is acceptable")
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with store.db.begin() as c:
        c.execute(delete(waivers).where((waivers.c.candidate == cid) & (waivers.c.finding == finding)))
        c.execute(insert(waivers).values(candidate=cid, finding=finding, reason=reason, created=created))
    return {"candidate": cid, "finding": match[0], "reason": reason, "created": created}


def waivers_of(store: Store, cid: int) -> list[dict]:
    rep = report(store, cid) or {"findings": []}
    return [{"id": f["id"], "gate": f["gate"], "subject": f["subject"], "message": f["message"],
             "severity": f["severity"], **f["waived"]} for f in rep["findings"] if f.get("waived")]
