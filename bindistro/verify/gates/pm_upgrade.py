"""Upgrades with the real package managers (dnf, apt, opkg) from the first, last,
a random and the n-2 release to the candidate, in parallel throw-away roots (see pm/upgrade.py);
then each upgraded root is booted with the candidate's kernel and its checks compared (upgrade_boot.py)."""
from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ... import model, upgrade_boot
from ...formats import get as get_format
from ...formats.base import Indexed, PackageInfo
from ...pm import DEB_ARCH, can_run, machine_cpu, roots
from ...pm.upgrade import DebRoot, IpkRoot, PathResult, RpmRoot, find_opkg, make_repo, problem, revert, run_path
from ..finding import Finding

NAME = "pm-upgrade"
SPLIT = ("format", "machine")
AFTER = ("boot",)      # boot after upgrade compares with the fresh image's boot (ctx.done["boot"])
COST = 40
TOOLS = {"rpm": ["rpm"], "deb": ["dpkg"]}     # what installs an old release's files (ipk: the opkg found)


def run(ctx) -> list[Finding]:
    sources = ctx.upgrade_sources()
    if not sources:
        return [Finding("info", NAME, "pm-upgrade.first-release", "-", "first release: no earlier release to upgrade from")]
    out, jobs, cleanup, newest = [], [], [], {}
    opkg = None
    for fmt in ctx.formats():
        if fmt == "ipk":
            opkg = find_opkg(ctx.spec, Path(ctx.store.db.candidate(ctx.candidate)[0].source))
            if not opkg:
                out.append(Finding("warning", NAME, "pm-upgrade.no-opkg", "ipk", "skipped: no opkg binary (tools.opkg in the spec, "
                                   "the build's opkg-native, `bash scripts/build-opkg.sh`, or opkg on PATH); ipk "
                                   "upgrades are checked by the upgrade gate's solver only"))
                continue
        for m in ctx.machines():
            cpu = machine_cpu(m.archs)
            if not can_run(cpu):
                out.append(Finding("info", NAME, "pm-upgrade.solver-only", f"{fmt}/{m.name}", f"solver only: this host cannot execute "
                                   f"{cpu or 'this machine'}'s packages (maintainer scripts need qemu-user "
                                   "registered with binfmt_misc: scripts/setup.sh does it as root)"))
                continue
            allpkgs, _cand = ctx.feed_set(fmt, m)
            newest[(fmt, m.name)] = get_format(fmt).newest((a.name, a.version) for a in allpkgs)
            entries = [(ctx.store.objects.path(a.sha256),
                        Indexed(a.filename, PackageInfo(a.name, a.version, a.arch, a.meta), a.size, a.md5, a.sha256))
                       for a in allpkgs]
            repo = make_repo(fmt, entries, ctx.work / f"pm-repo-{ctx.candidate}-{fmt}-{m.name}")
            cleanup.append(repo)
            bootplan = boot_plan(ctx, m, out if fmt == ctx.spec.formats[0] else [])
            for why, rel in sources:
                # a device of `rel` (of this series or an older one) installed its own build's packages
                installed, _missing = ctx.installed_set(rel, fmt, m)
                files = [ctx.store.objects.path(a.sha256) for a in installed]
                names = [a.filename for a in installed]
                if not files:
                    continue
                # a device moving from an older series keeps that series' feed names it has
                # packages of (lowest priority), or the package manager would not know them
                archs = [a for a in ctx.machine_of(rel, m).archs if a not in m.archs] + list(m.archs)
                work = ctx.work / f"pm-root-{ctx.candidate}-{fmt}-{m.name}-{why}"
                shutil.rmtree(work, ignore_errors=True)
                cleanup.append(work)
                # the store's objects under their file names, so error messages name the packages
                named = work / "pkgs"
                named.mkdir(parents=True)
                for src, name in zip(files, names):
                    (named / name).hardlink_to(src)
                plan = None
                if bootplan:
                    old_img = old_image(ctx, rel, m)
                    plan = (bootplan, old_img) if old_img else None
                # the kept root's name: what is installed, in the order it is (file names, sorted)
                name = roots.key(fmt, archs, cpu, [opkg] if fmt == "ipk" else TOOLS[fmt],
                                 sorted((a.filename, a.sha256) for a in installed))
                jobs.append((fmt, m, archs, why, rel, work, repo, sorted(named.iterdir()), opkg, cpu, plan, ctx.spec.boot,
                             rel.series == ctx.spec.current, name))
    kept = roots.Roots.default()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda job: _one(job, kept), jobs))
    finally:
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)
    for res in results:
        where = f"{res.fmt}/{res.machine} {res.path} ({res.source}->candidate)"
        info = {"format": res.fmt, "machine": res.machine, "path": res.path, "from": res.source, "seconds": res.seconds,
                "kept_root": res.kept_root}
        res.problems += left_behind(res, newest[(res.fmt, res.machine)])
        for p in res.problems:
            out.append(Finding(p.severity, NAME, p.rule, p.subject, f"{where}: {p.message}", info, scope=f'{res.fmt}/{res.machine}/{res.source}/{p.scope}'))
        if res.ok:
            out.append(Finding("info", NAME, "pm-upgrade.passed", where, f"upgrade passed: {res.upgraded} packages changed in "
                               f"{res.seconds} s" + (f"; {res.reverted} reverted to their {res.source} versions "
                               "(--force-downgrade)" if res.reverted else ""), info))
        if res.boot is not None:
            out += boot_findings(ctx, res, where, info)
    return out


def left_behind(res: PathResult, newest: dict[str, str]) -> list:
    """Packages the package manager left older than the feeds' newest and said nothing: the device
    is not on the candidate (dnf `upgrade` across a renamed architecture, a package held back)."""
    if not res.ok:
        return []
    cmp = get_format(res.fmt).version_cmp
    return [problem("error", "left-behind", name, f"{name} stays at {v} after the upgrade; the feeds have {newest[name]}")
            for name, v in sorted(res.after.items()) if name in newest and cmp(newest[name], v) > 0]


def boot_plan(ctx, m, notes: list) -> tuple[str, dict] | None:
    """(qemuboot.conf name, the candidate's image files of machine `m`) when the upgraded roots of
    `m` can be booted; `notes` hears why not (once per machine)."""
    if not ctx.spec.boot.enabled:
        return None
    files = {a.name: ctx.store.objects.path(a.sha256) for a in ctx.artifacts
             if a.kind == model.IMAGE and (a.meta.get("machine") or a.arch) == m.name}
    conf = next((n for n in sorted(files) if n.endswith(".qemuboot.conf")), None)
    if conf is None:
        notes.append(Finding("info", NAME, "pm-upgrade.boot-no-qemuboot", m.name, "no qemuboot.conf among the candidate's images: upgraded "
                             "systems are not booted"))
        return None
    if not any(n.endswith(".cpio.gz") for n in files):
        notes.append(Finding("info", NAME, "pm-upgrade.boot-not-initramfs", m.name, "boot after upgrade packs cpio.gz (initramfs) images only; "
                             "this machine's image is of another type: not booted"))
        return None
    return conf, files


def old_image(ctx, rel, m):
    """The cpio.gz image of release `rel` for machine `m` (what a device of that release runs)."""
    for a in ctx.release_artifacts(rel):
        if a.kind == model.IMAGE and (a.meta.get("machine") or a.arch) == m.name and a.name.endswith(".cpio.gz"):
            return ctx.store.objects.path(a.sha256)
    return None


def _baselines(ctx, machine: str) -> dict:
    """The same boot checks on the fresh candidate image (this run's boot gate) and on the last release."""
    def of(findings):
        for f in findings or []:
            d = f.details if isinstance(f, Finding) else f.get("details")
            gate = f.gate if isinstance(f, Finding) else f.get("gate")
            if gate == "boot" and d and d.get("machine") == machine and "checks" in d:
                return d
        return None
    out = {"fresh candidate": of(ctx.done.get("boot"))}
    if ctx.last is not None:
        from ... import verify
        rep = verify.report(ctx.store, ctx.last.candidate)
        out[f"release {ctx.last.name}"] = of(rep["findings"]) if rep else None
    return out


def boot_findings(ctx, res: PathResult, where: str, info: dict) -> list[Finding]:
    if isinstance(res.boot, str):
        return [Finding("warning", NAME, "pm-upgrade.boot-failed", res.machine, f"{where}: the upgraded system could not be booted: {res.boot}", info, scope=where)]
    verdicts = upgrade_boot.verdicts(res.boot, ctx.spec.boot, _baselines(ctx, res.machine))
    out, passed = [], []
    details = dict(info, boot=res.boot.to_dict())
    for v in verdicts:
        if v.status == upgrade_boot.PASS:
            passed.append(v.check)
            continue
        base = "; ".join(f"{k}: {'passed' if ok else 'failed'}" for k, ok in v.baselines.items()) or "no earlier result"
        what = f"check {v.check!r} ({v.run})" if v.run else "the system"
        sev = {upgrade_boot.REGRESSION: "error", upgrade_boot.FAIL: "warning"}.get(v.status, "info")
        out.append(Finding(sev, NAME, "pm-upgrade.boot-verdict", v.run or v.check, f"{where}: after the upgrade {what} {v.status}: {v.now} "
                           f"({base})", dict(details, verdict=v.status), scope=where))
    if passed:
        out.append(Finding("info", NAME, "pm-upgrade.boot-passed", where, f"upgraded system booted: {', '.join(passed)} PASS "
                           f"({res.boot.seconds} s)", dict(details, verdict=upgrade_boot.PASS)))
    return out


def _one(job, kept: roots.Roots) -> PathResult:
    fmt, m, archs, why, rel, work, repo, files, opkg, cpu, plan, bootcfg, same_series, name = job
    # a kept copy of this release's installed root first: the constructors below write their
    # configuration (this candidate's repository) over it
    hit = kept.restore(name, work / "root")
    if fmt == "rpm":
        pm = RpmRoot(work, repo, [get_format("rpm").feed_name(a) for a in reversed(archs)], move=not same_series)
    elif fmt == "ipk":
        pm = IpkRoot(work, repo, archs, opkg)
    else:
        pm = DebRoot(work, repo, DEB_ARCH[cpu])
    res = run_path(pm, files, PathResult(fmt, m.name, why, rel.name, kept_root=hit), installed=hit,
                   on_installed=lambda: kept.keep(name, pm.root))
    if plan and res.ok:
        (conf, deploy), old_img = plan
        try:
            res.boot = upgrade_boot.boot_upgraded(pm.root, res.owned_before, old_img, deploy, conf, bootcfg,
                                                  work / "boot")
        except (OSError, ValueError) as e:
            res.boot = str(e)
    if res.ok and same_series:
        # after the boot: the revert changes the root. Only within a series: an older series'
        # versions are not in this one's feeds (a device goes back by pointing at its old series)
        revert(pm, res)
    return res
