"""Upgrades with the real package managers (dnf, apt; opkg when one is found) from the first, last,
a random and the n-2 release to the candidate, in parallel throw-away roots (see upgrade_test.py)."""
from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...formats import get as get_format
from ...formats.base import Indexed, PackageInfo
from ...pm import HOST_RUNNABLE
from ...upgrade_test import DebRoot, PathResult, RpmRoot, find_opkg, make_repo, run_path
from ..finding import Finding
from .closure import feed_set
from .upgrade import image_set

NAME = "pm-upgrade"


def run(ctx) -> list[Finding]:
    sources = ctx.upgrade_sources()
    if not sources:
        return [Finding("info", NAME, "-", "first release: no earlier release to upgrade from")]
    out, jobs, cleanup = [], [], []
    for fmt in ctx.spec.formats:
        if fmt == "ipk":
            row = ctx.store.db.candidate(ctx.candidate)[0]
            if not find_opkg(Path(row.source)):
                out.append(Finding("info", NAME, "ipk", "skipped: no opkg binary (not packaged for this host; put one "
                                   "on PATH or use the build's opkg-native); ipk upgrades are checked by the "
                                   "upgrade gate's solver only"))
                continue
            out.append(Finding("info", NAME, "ipk", "opkg found, but the opkg runner is not written yet: solver only"))
            continue
        for m in ctx.spec.machines:
            if not any(a in HOST_RUNNABLE for a in m.archs):
                out.append(Finding("info", NAME, f"{fmt}/{m.name}", "solver only: the host cannot execute this "
                                   "machine's packages (scriptlets would need emulation)"))
                continue
            allpkgs, _cand = feed_set(ctx, fmt, m)
            by_nv = {(a.name, a.version): a for a in allpkgs}
            entries = [(ctx.store.objects.path(a.sha256),
                        Indexed(a.filename, PackageInfo(a.name, a.version, a.arch, a.meta), a.size, a.md5, a.sha256))
                       for a in allpkgs]
            repo = make_repo(fmt, entries, ctx.work / f"pm-repo-{ctx.candidate}-{fmt}-{m.name}")
            cleanup.append(repo)
            for why, rel in sources:
                wanted = image_set(ctx, rel, m)
                files = [ctx.store.objects.path(by_nv[k].sha256) for k in wanted if k in by_nv]
                names = [by_nv[k].filename for k in wanted if k in by_nv]
                if not files:
                    continue
                work = ctx.work / f"pm-root-{ctx.candidate}-{fmt}-{m.name}-{why}"
                shutil.rmtree(work, ignore_errors=True)
                cleanup.append(work)
                # the store's objects under their file names, so error messages name the packages
                named = work / "pkgs"
                named.mkdir(parents=True)
                for src, name in zip(files, names):
                    (named / name).hardlink_to(src)
                jobs.append((fmt, m, why, rel, work, repo, sorted(named.iterdir())))
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(_one, jobs))
    finally:
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)
    for res in results:
        where = f"{res.fmt}/{res.machine} {res.path} ({res.source}->candidate)"
        info = {"format": res.fmt, "machine": res.machine, "path": res.path, "from": res.source, "seconds": res.seconds}
        for p in res.problems:
            out.append(Finding(p.severity, NAME, p.subject, f"{where}: {p.message}", info))
        if res.ok:
            out.append(Finding("info", NAME, where, f"upgrade passed: {res.upgraded} packages changed in "
                               f"{res.seconds} s", info))
    return out


def _one(job) -> PathResult:
    fmt, m, why, rel, work, repo, files = job
    if fmt == "rpm":
        archs = [get_format("rpm").feed_name(a) for a in reversed(m.archs)]
        pm = RpmRoot(work, repo, archs)
    else:
        pm = DebRoot(work, repo)
    return run_path(pm, files, PathResult(fmt, m.name, why, rel.name))
