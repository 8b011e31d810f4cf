"""What the last site build wrote, so the next one skips the documents whose inputs did not change
instead of making and comparing all of them (a release changes a few hundred packages of 20,000).

An entry is [key of the document's inputs, inode, size, mtime_ns of the file written]. A document is
skipped only when its key is the same and the file at its path in the generation being built is
that very file: generations share unchanged files as hard links and a file is never rewritten in
place (written beside, then renamed), so the same inode holds the same bytes. A memo from another
tree, a failed release or a killed run therefore never vouches for a file it did not write; a
missing or unreadable memo only costs a full build. The key of the code that made the documents is
part of it: a newer bindistro rebuilds everything once."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from array import array
from pathlib import Path

from ..cache import code_key

FILE = "site-memo.json"
SEPS = (",", ":")
MAX = 1 << 30       # our own file; bounded all the same (20,000 packages x 3 formats, 9 releases: 78 MB)


def key(inputs) -> str:
    """A stable digest of a tuple of str/int/None/lists/dicts (repr is deterministic for those)."""
    return hashlib.blake2b(repr(inputs).encode(), digest_size=12).hexdigest()


class Memo:
    def __init__(self, path: Path, root: Path, old: dict[str, list], manifests: list | None = None,
                 files: list | None = None, staged: list | None = None, ids: array | None = None, width: int = 0,
                 values: list | None = None, paths: dict | None = None):
        self.path, self.root, self.old = path, root, old
        self._base = str(root)      # (a str per document stat'ed, not a Path: ~24,000 at 20,000 names)
        self.new: dict[str, list] = {}
        # what each release's manifest lists, as the package files it adds to and drops from the one
        # before it (ids into `files`): reading every manifest again is O(releases x packages)
        self.old_manifests = manifests or []
        self.manifests: list[list] = []
        self.files: list[str] = files or []
        # per file id: its staged sha256 (None: no details kept) and, at ids[id * width:], `width`
        # indexes into `values` (data.DETAILS), which holds each distinct value once (relation
        # lists as tuples): the same summaries, licenses and names recur in every format and
        # version of a package, and decoding a copy of each was most of the memo's memory (250 of
        # 360 MB at 20,000 x 22 releases). The indexes are one flat array, saved as its bytes: a
        # JSON list per file was a second of every release's site at 220,000 files.
        self.staged: list = staged or []
        self.ids = ids if ids is not None else array("I")
        self.width = width
        self.values: list = [tuple(v) if type(v) is list else v for v in values or []]
        self._at: dict | None = None
        # how many of this build's releases are the last build's (manifests read then, unchanged)
        self.vouched = 0
        # what the last build's files/ and basenames/ shards hold: {"releases": n, "rows": …,
        # "basenames": …} (paths.py patches them when one release was added since)
        self.old_paths: dict | None = paths if _paths_ok(paths) else None
        self.paths: dict | None = None

    @classmethod
    def load(cls, state_dir: Path, root: Path, use: bool = True) -> Memo:
        path = state_dir / FILE
        old: dict = {}
        if use:
            try:
                if path.stat().st_size <= MAX:
                    doc = json.loads(path.read_bytes())
                    files = doc.get("files") or []
                    staged, ids, width = doc.get("staged") or [], _ids(doc.get("ids") or ""), doc.get("width") or 0
                    if (doc.get("code") == code_key() and isinstance(doc.get("docs"), dict)
                            and isinstance(files, list) and set(map(type, files)) <= {str}     # (in C: 250,000)
                            and isinstance(doc.get("manifests") or [], list)
                            and isinstance(staged, list) and set(map(type, staged)) <= {str, type(None)}
                            and type(width) is int and ids is not None and len(ids) == width * len(staged)
                            and isinstance(doc.get("values") or [], list)
                            and all(_value_ok(v) for v in doc.get("values") or [])):
                        return cls(path, root, doc["docs"], doc.get("manifests"), files, staged, ids, width,
                                   doc.get("values"), doc.get("paths"))
            except (OSError, ValueError, AttributeError):
                pass
        return cls(path, root, old)

    def stat(self, rel: str) -> list[int] | None:
        try:
            st = os.stat(f"{self._base}/{rel}")
        except OSError:
            return None
        return [st.st_ino, st.st_size, st.st_mtime_ns]

    def manifest(self, i: int, rel: str) -> list | None:
        """[manifest path, stat, release fields, added ids, dropped ids] of the i-th release, if the
        manifest at `rel` is the file this was read from (every one before it was too: the caller
        stops at the first miss)."""
        e = self.old_manifests[i] if i < len(self.old_manifests) else None
        if isinstance(e, list) and len(e) == 5 and e[0] == rel and e[1] == self.stat(rel) and isinstance(e[2], dict) \
                and all(isinstance(ids, list) and all(type(n) is int and 0 <= n < len(self.files) for n in ids)
                        for ids in e[3:]):
            return e
        return None

    def details_of(self, width: int, keep: bool) -> None:
        """Start this build's details (rows of `width` indexes): the last build's rows are kept when
        `keep` (the file ids are still theirs) and they have that width and index `values`, else
        none is."""
        if not keep or width != self.width or (self.ids and max(self.ids) >= len(self.values)):
            self.staged, self.ids, self.width = [], array("I"), width      # (a damaged memo: read again)

    def set_detail(self, n: int, staged: str, values: list) -> None:
        """The details row of file id `n`, its values indexed (each distinct value kept once)."""
        if self._at is None:
            self._at = {v: i for i, v in enumerate(self.values)}
        out = []
        for v in values:
            k = tuple(v) if isinstance(v, list) else v
            i = self._at.get(k)
            if i is None:
                i = self._at[k] = len(self.values)
                self.values.append(k)
            out.append(i)
        if n >= len(self.staged):
            grow = n + 1 - len(self.staged)
            self.staged.extend([None] * grow)
            self.ids.extend(array("I", bytes(4 * self.width * grow)))
        self.staged[n] = staged
        self.ids[n * self.width:(n + 1) * self.width] = array("I", out)

    def same(self, rel: str, k: str) -> bool:
        """Whether `rel` in the generation is the file written for inputs `k` (then it is kept)."""
        e = self.old.get(rel)
        if not (isinstance(e, list) and len(e) == 4 and e[0] == k and self.stat(rel) == e[1:]):
            return False
        self.new[rel] = e
        return True

    def wrote(self, rel: str, k: str) -> None:
        self.new[rel] = [k, *self.stat(rel)]

    def save(self) -> None:
        """Best effort: without a memo the next build is a full one, never a wrong one. The long
        lists are written in slices: one string of the whole memo (80 MB at 20,000 packages x 3
        formats) was a release's peak memory."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write('{"code":' + json.dumps(code_key()))
                if self.paths:
                    f.write(',"paths":' + json.dumps(self.paths))
                for name, value in (("docs", self.new), ("manifests", self.manifests)):
                    f.write(f',"{name}":' + json.dumps(value, separators=SEPS))
                f.write(',"values":' + json.dumps(self.values, separators=SEPS))
                ids = self.ids
                if sys.byteorder == "big":      # (little-endian on disk, as on every machine we build on)
                    ids = array("I", ids)
                    ids.byteswap()
                f.write(f',"width":{self.width},"ids":"' + base64.b64encode(ids.tobytes()).decode() + '"')
                for name, seq in (("files", self.files), ("staged", self.staged)):
                    f.write(f',"{name}":[')
                    for i in range(0, len(seq), 5000):
                        f.write(("," if i else "") + json.dumps(seq[i:i + 5000], separators=SEPS)[1:-1])
                    f.write("]")
                f.write("}")
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)


def _ids(text) -> array | None:
    """The flat array of details indexes as save() wrote it; None if it is not that."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (TypeError, ValueError):
        return None
    if len(raw) % 4:
        return None
    ids = array("I", raw)
    if sys.byteorder == "big":
        ids.byteswap()
    return ids


def _value_ok(v) -> bool:
    """A details value as Format.details() makes them: text, or a list of names. (Anything else, a
    damaged memo: rows would show it, and set_detail() could not index it.)"""
    return type(v) is str or (type(v) is list and all(type(x) is str for x in v))


def _paths_ok(v) -> bool:
    return isinstance(v, dict) and all(type(v.get(k)) is int and v[k] >= 0 for k in ("releases", "rows", "basenames"))
