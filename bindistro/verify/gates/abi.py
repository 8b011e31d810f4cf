"""ABI: every shared library that keeps its SONAME from the last release to the candidate is compared
with libabigail's abidiff, with the debug info of the recipe's -dbg package when there is one."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ... import model
from ...formats import get as get_format
from ..finding import Finding

NAME = "abi"
LIB = re.compile(r"\.so(\.\d+)*$")
SYMBOL = re.compile(r"\[([DCA])\] '(function|variable) ([^']*)'")


def soname(path: Path) -> str | None:
    r = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True)
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", r.stdout)
    return m.group(1) if m else None


def libraries(root: Path) -> dict[str, Path]:
    """SONAME -> real file, for the ELF shared libraries under root (debug files excluded)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink() or not p.is_file() or not LIB.search(p.name) or "/.debug/" in str(p) or "/debug/" in str(p):
            continue
        with open(p, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        so = soname(p)
        if so:
            out[so] = p
    return out


def debug_dirs(root: Path) -> list[str]:
    return [str(p) for p in sorted(root.rglob(".debug")) if p.is_dir()] + \
        ([str(root / "usr/lib/debug")] if (root / "usr/lib/debug").is_dir() else [])


def _name(sig: str) -> str:
    m = re.search(r"([\w:~]+)\s*\(", sig)
    return m.group(1) if m else sig.split()[-1]


def run(ctx) -> list[Finding]:
    last = ctx.last
    if last is None:
        return [Finding("info", NAME, "abi.first-release", "-", "first release: no earlier ABI to compare with")]
    if not shutil.which("abidiff"):
        return [Finding("warning", NAME, "abi.tool-missing", "-", "abidiff (Debian: abigail-tools) is not installed: ABI not compared")]
    fmt_name = next((f for f in ("deb", "rpm", "ipk") if f in ctx.spec.formats), ctx.spec.formats[0])
    fmt = get_format(fmt_name)
    pkgs = lambda arts: [a for a in arts if a.kind == model.PACKAGE and a.format == fmt_name]   # noqa: E731
    old = {(a.name, a.arch): a for a in pkgs(ctx.release_artifacts(last))}
    cand = pkgs(ctx.artifacts)
    dbg = {(a.name, a.version, a.arch): a for a in cand}
    old_dbg = {(a.name, a.version, a.arch): a for a in old.values()}
    work = ctx.work / f"abi-{ctx.candidate}"
    shutil.rmtree(work, ignore_errors=True)
    out = []
    try:
        for a in cand:
            prev = old.get((a.name, a.arch))
            if prev is None or prev.sha256 == a.sha256 or a.name.endswith(("-dbg", "-dev", "-doc", "-src")):
                continue
            roots = []
            for which, art, dbgs in (("old", prev, old_dbg), ("new", a, dbg)):
                root = work / f"{a.name}-{a.arch}" / which
                fmt.extract(ctx.store.objects.path(art.sha256), root)
                # the recipe's -dbg package: same version and arch, named after the recipe
                recipe = art.meta.get("OE") or art.meta.get("sourcerpm", "").rsplit("-", 2)[0] or art.name
                d = dbgs.get((f"{recipe}-dbg", art.version, art.arch))
                if d is not None:
                    fmt.extract(ctx.store.objects.path(d.sha256), root)
                roots.append(root)
            before, after = libraries(roots[0]), libraries(roots[1])
            for so, new_lib in sorted(after.items()):
                if so not in before:
                    continue
                out += compare(a, so, before[so], new_lib, debug_dirs(roots[0]), debug_dirs(roots[1]), last.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def compare(pkg, so: str, old: Path, new: Path, d1: list[str], d2: list[str], last: str) -> list[Finding]:
    cmd = ["abidiff", "--no-show-locs"]
    for d in d1:
        cmd += ["--d1", d]
    for d in d2:
        cmd += ["--d2", d]
    r = subprocess.run(cmd + [str(old), str(new)], capture_output=True, text=True)
    subject = f"{so} ({pkg.name})"
    info = {"package": pkg.name, "arch": pkg.arch, "soname": so, "from": last, "debug_info": bool(d1 and d2),
            "report": r.stdout[-4000:]}
    if r.returncode & 1 or r.returncode & 2:
        return [Finding("warning", NAME, "abi.compare-failed", subject, f"abidiff could not compare ({r.stderr.strip()[:200]})", info)]
    syms = [(k, kind, _name(sig)) for k, kind, sig in SYMBOL.findall(r.stdout)]
    if r.returncode & 8:
        bad = [f"{'removed' if k == 'D' else 'changed'} {n}" for k, _, n in syms if k in "DC"]
        return [Finding("error", NAME, "abi.incompatible", subject, f"incompatible ABI change since {last} with the same SONAME: "
                        + ", ".join(bad or ["see report"]), info)]
    if r.returncode & 4:
        added = [n for k, _, n in syms if k == "A"]
        changed = [n for k, _, n in syms if k == "C"]
        what = (["added " + ", ".join(added)] if added else []) + (["changed " + ", ".join(changed)] if changed else [])
        return [Finding("info", NAME, "abi.compatible-change", subject, f"compatible ABI change since {last}: " + ("; ".join(what) or "see report"),
                        info)]
    return []
