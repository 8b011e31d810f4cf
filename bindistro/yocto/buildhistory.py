"""buildhistory: read a revision of OE's buildhistory git repository and compare two of them.

Compared like OE's buildhistory_analysis.py (same monitored fields, 10 % size threshold), plus what
a binary distro must refuse: a package version going backwards by bitbake's own order
(bb.utils.vercmp over PKGE, PKGV, PKGR) and a package dropped with nothing providing or replacing it.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import bb.utils

from ..errors import Finding

LIST_FIELDS = ["RPROVIDES", "RDEPENDS", "RRECOMMENDS", "RSUGGESTS", "RREPLACES", "RCONFLICTS", "FILES", "FILELIST"]
NUMERIC_THRESHOLD = 10      # percent, as buildhistory_analysis' monitor_numeric_threshold
IMAGE_FILES = ("image-info.txt", "installed-package-names.txt", "files-in-image.txt")


@dataclass
class State:
    packages: dict[str, dict] = field(default_factory=dict)   # "packages/<sys>/<pn>/<pkg>" -> fields
    images: dict[str, dict] = field(default_factory=dict)      # "images/<m>/<libc>/<image>" -> {file: text}


def parse_kv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(" = ")
        if sep:
            out[k.strip()] = v.strip()
    return out


def read_rev(repo: Path, rev: str = "HEAD") -> State:
    names = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", rev],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    wanted = [n for n in names
              if (n.startswith("packages/") and n.endswith("/latest") and n.count("/") == 4)
              or (n.startswith("images/") and n.rsplit("/", 1)[-1] in IMAGE_FILES)]
    st = State()
    if not wanted:
        return st
    p = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], input="".join(f"{rev}:{n}\n" for n in wanted).encode(),
                       capture_output=True, check=True)
    data, pos = p.stdout, 0
    for name in wanted:
        header_end = data.index(b"\n", pos)
        parts = data[pos:header_end].split()
        size = int(parts[2])
        body = data[header_end + 1:header_end + 1 + size].decode("utf-8", "replace")
        pos = header_end + 1 + size + 1
        if name.startswith("packages/"):
            st.packages[name[: -len("/latest")]] = parse_kv(body)
        else:
            d, _, f = name.rpartition("/")
            st.images.setdefault(d, {})[f] = body
    return st


def _evr(f: dict) -> tuple[str, str, str]:
    return (f.get("PKGE", f.get("PE", "0")) or "0", f.get("PKGV", f.get("PV", "")), f.get("PKGR", f.get("PR", "")))


def _show(evr) -> str:
    e, v, r = evr
    return (f"{e}:" if e and e != "0" else "") + f"{v}-{r}"


def _names(value: str) -> list[str]:
    """Dependency names without version constraints: 'a (>= 1) b' -> ['a', 'b']."""
    return re.sub(r"\([^)]*\)", "", value or "").split()


SPLIT_SUFFIXES = ("-dbg", "-dev", "-doc", "-staticdev", "-src", "-ptest")


def _replaced(name: str, provided: set[str]) -> bool:
    """Provided or replaced; -dbg/-dev/... split packages follow their main package."""
    if name in provided:
        return True
    base = next((name[: -len(s)] for s in SPLIT_SUFFIXES if name.endswith(s)), None)
    return base is not None and base in provided


def _pkgname(path: str, fields: dict) -> str:
    return fields.get("PKG") or path.rsplit("/", 1)[-1]


def compare(old: State, new: State, gate: str = "buildhistory") -> list[Finding]:
    out: list[Finding] = []
    provided = set()
    for path, f in new.packages.items():
        provided |= set(_names(f.get("RPROVIDES", ""))) | set(_names(f.get("RREPLACES", "")))
        provided.add(_pkgname(path, f))
    for path in sorted(set(old.packages) | set(new.packages)):
        a, b = old.packages.get(path), new.packages.get(path)
        name = _pkgname(path, b or a)
        where = path.removeprefix("packages/")
        if a is None:
            out.append(Finding("info", gate, "buildhistory.new-package", name, f"new package {name} {_show(_evr(b))}", {"path": where}, scope=where))
            continue
        if b is None:
            if _replaced(name, provided):
                out.append(Finding("info", gate, "buildhistory.replaced", name, f"package {name} removed; provided or replaced by another package",
                                   {"path": where}, scope=where))
            else:
                out.append(Finding("error", gate, "buildhistory.dropped", name, f"package {name} {_show(_evr(a))} dropped and nothing provides "
                                   "or replaces it: devices keep the old one forever", {"path": where}, scope=where))
            continue
        ea, eb = _evr(a), _evr(b)
        cmp = bb.utils.vercmp(eb, ea)
        if cmp < 0:
            out.append(Finding("error", gate, "buildhistory.version-backwards", name, f"version went backwards: {_show(ea)} -> {_show(eb)}",
                               {"path": where, "old": _show(ea), "new": _show(eb)}, scope=where))
        elif cmp > 0:
            out.append(Finding("info", gate, "buildhistory.version-changed", name, f"{name} {_show(ea)} -> {_show(eb)}", {"path": where}, scope=where))
        for fld in LIST_FIELDS:
            if a.get(fld, "") != b.get(fld, ""):
                sa, sb = set(a.get(fld, "").split()), set(b.get(fld, "").split())
                if sa == sb:
                    continue
                out.append(Finding("info", gate, "buildhistory.deps-changed", name, f"{fld} changed: +{len(sb - sa)} -{len(sa - sb)}",
                                   {"path": where, "field": fld, "added": sorted(sb - sa)[:50], "removed": sorted(sa - sb)[:50]}, scope=f'{where}/{fld}'))
        sa, sb = a.get("PKGSIZE"), b.get("PKGSIZE")
        if sa and sb and sa.isdigit() and sb.isdigit() and int(sa) and abs(int(sb) - int(sa)) * 100 / int(sa) > NUMERIC_THRESHOLD:
            out.append(Finding("info", gate, "buildhistory.size-changed", name, f"PKGSIZE changed from {sa} to {sb} ({(int(sb) - int(sa)) * 100 // int(sa):+d}%)",
                               {"path": where}, scope=where))
    for img in sorted(set(old.images) | set(new.images)):
        a, b = old.images.get(img, {}), new.images.get(img, {})
        subj = img.removeprefix("images/")
        if not a or not b:
            out.append(Finding("info", gate, "buildhistory.image-added-removed", subj, "image added" if b else "image no longer built"))
            continue
        ia, ib = parse_kv(a.get("image-info.txt", "")), parse_kv(b.get("image-info.txt", ""))
        sa, sb = ia.get("IMAGESIZE", ""), ib.get("IMAGESIZE", "")
        if sa.isdigit() and sb.isdigit() and int(sa) and abs(int(sb) - int(sa)) * 100 / int(sa) > NUMERIC_THRESHOLD:
            out.append(Finding("info", gate, "buildhistory.image-size", subj, f"IMAGESIZE changed from {sa} to {sb}"))
        pa = set(a.get("installed-package-names.txt", "").split())
        pb = set(b.get("installed-package-names.txt", "").split())
        if pa != pb:
            out.append(Finding("info", gate, "buildhistory.image-packages", subj, f"image package list changed: +{len(pb - pa)} -{len(pa - pb)}",
                               {"added": sorted(pb - pa), "removed": sorted(pa - pb)}))
        fa = {l.rsplit(" ", 1)[-1] if " -> " not in l else l.split(" -> ")[0].rsplit(" ", 1)[-1]
              for l in a.get("files-in-image.txt", "").splitlines()}
        fb = {l.rsplit(" ", 1)[-1] if " -> " not in l else l.split(" -> ")[0].rsplit(" ", 1)[-1]
              for l in b.get("files-in-image.txt", "").splitlines()}
        if fa != fb:
            out.append(Finding("info", gate, "buildhistory.image-files", subj, f"files in image changed: +{len(fb - fa)} -{len(fa - fb)}",
                               {"added": sorted(fb - fa)[:100], "removed": sorted(fa - fb)[:100]}))
    return out


def open_bundle(bundle: Path, cache: Path) -> Path:
    """A bare clone of a buildhistory bundle, kept in `cache` by the bundle's content name."""
    dest = cache / (bundle.name + ".git")
    if not dest.exists():
        tmp = cache / (bundle.name + ".tmp")
        subprocess.run(["rm", "-rf", str(tmp)], check=True)
        subprocess.run(["git", "clone", "-q", "--bare", str(bundle), str(tmp)], check=True, capture_output=True)
        tmp.rename(dest)
    return dest
