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


def _wanted(name: str) -> bool:
    return ((name.startswith("packages/") and name.endswith("/latest") and name.count("/") == 4)
            or (name.startswith("images/") and name.rsplit("/", 1)[-1] in IMAGE_FILES))


def _tree(repo: Path, rev: str) -> dict[str, str]:
    """The files of `rev` that buildhistory comparison reads, by path -> blob id."""
    lines = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--full-tree", rev],
                           capture_output=True, text=True, check=True).stdout.splitlines()
    out = {}
    for line in lines:
        meta, _, name = line.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and _wanted(name):
            out[name] = parts[2]
    return out


def _blobs(repo: Path, oids: set[str]) -> dict[str, str]:
    """Blob id -> text, one `git cat-file --batch` for all of them."""
    order = sorted(oids)
    if not order:
        return {}
    data = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], input="".join(f"{o}\n" for o in order).encode(),
                          capture_output=True, check=True).stdout
    out, pos = {}, 0
    for oid in order:
        header_end = data.index(b"\n", pos)
        size = int(data[pos:header_end].split()[2])
        out[oid] = data[header_end + 1:header_end + 1 + size].decode("utf-8", "replace")
        pos = header_end + 1 + size + 1
    return out


def _state(tree: dict[str, str], texts: dict[str, str]) -> State:
    st = State()
    for name, oid in tree.items():
        if name.startswith("packages/"):
            st.packages[name[: -len("/latest")]] = parse_kv(texts[oid])
        else:
            d, _, f = name.rpartition("/")
            st.images.setdefault(d, {})[f] = texts[oid]
    return st


def read_rev(repo: Path, rev: str = "HEAD") -> State:
    tree = _tree(repo, rev)
    return _state(tree, _blobs(repo, set(tree.values())))


def diff_revs(repo: Path, old: str, new: str, gate: str = "buildhistory") -> list[Finding]:
    """compare() of two revisions of one repository, reading only the files that differ (git's blob
    ids say which): a buildhistory of a few thousand packages changes a few per build, and reading
    every file of both revisions was 3 s per pair. Every package of `new` is read only when one was
    dropped (is it provided or replaced by another?)."""
    ta, tb = _tree(repo, old), _tree(repo, new)
    changed = {n for n in ta.keys() | tb.keys() if ta.get(n) != tb.get(n)}
    images = {n.rpartition("/")[0] for n in changed if n.startswith("images/")}
    keep = changed | {n for n in ta.keys() | tb.keys() if n.rpartition("/")[0] in images}
    sa = {n: o for n, o in ta.items() if n in keep}
    sb = {n: o for n, o in tb.items() if n in keep}
    dropped = any(n.startswith("packages/") and n not in tb for n in sa)
    every_new = {n: o for n, o in tb.items() if n.startswith("packages/")} if dropped else {}
    texts = _blobs(repo, set(sa.values()) | set(sb.values()) | set(every_new.values()))
    provided = provides(_state(every_new, texts)) if dropped else None
    return compare(_state(sa, texts), _state(sb, texts), gate, provided)


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


def provides(st: State) -> set[str]:
    """Every name the packages of `st` are, provide or replace."""
    out = set()
    for path, f in st.packages.items():
        out |= set(_names(f.get("RPROVIDES", ""))) | set(_names(f.get("RREPLACES", "")))
        out.add(_pkgname(path, f))
    return out


def compare(old: State, new: State, gate: str = "buildhistory", provided: set[str] | None = None) -> list[Finding]:
    """Findings from `old` to `new`; `provided` (default: what `new` provides) decides whether a
    dropped package is replaced."""
    out: list[Finding] = []
    if provided is None:
        provided = provides(new)
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
