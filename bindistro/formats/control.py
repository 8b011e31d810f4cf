"""Debian-style control data, shared by ipk and deb."""
from __future__ import annotations

import contextlib
import os
import re
from functools import lru_cache

import apt_pkg

from .base import IndexEntry, PackageError, read_packages


def parse_control(data: bytes, what: str = "control") -> dict:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PackageError([f"{what} is not UTF-8 (byte {e.start})"]) from None
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip("\n")) if p.strip()]
    if len(paragraphs) > 1:     # dpkg and opkg read one; a second would be a package nobody built
        raise PackageError([f"{what} holds {len(paragraphs)} paragraphs, not one"])
    return _section(text)


def _section(text: str) -> dict:
    # apt's own parser (python3-apt): ten times deb822's speed, which a 20,000-package feed needs
    try:
        sec = apt_pkg.TagSection(text.strip("\n") + "\n")
    except ValueError:
        from debian import deb822       # (python-debian only for what apt's parser refuses: 30 ms to import)
        return dict(deb822.Deb822(text))
    return {k: sec[k] for k in sec.keys()}


def missing_fields(fields: dict, required: tuple[str, ...]) -> list[str]:
    lower = {k.lower(): v for k, v in fields.items()}
    return [f"control lacks field {f}" for f in required if not str(lower.get(f.lower(), "")).strip()]


_APT_ERRORS = (SystemError, ValueError, KeyError)     # KeyError: apt lists a key it cannot look up (a NUL line)


@contextlib.contextmanager
def _sections(data: bytes):
    """apt's parser over `data` (it reads a file: a memfd, no temp file); UnicodeDecodeError first
    when `data` is not UTF-8."""
    data.decode("utf-8")
    with os.fdopen(os.memfd_create("index"), "w+b") as f:
        f.write(data)
        f.seek(0)
        yield apt_pkg.TagFile(f)


def read_paragraphs(data: bytes, keys: tuple[str, ...] | None = None) -> list[dict]:
    """Every paragraph of a Packages index or dpkg/opkg status file (UnicodeDecodeError if not UTF-8);
    `keys`: only those fields of each (a world's index has 100,000s of the others)."""
    try:
        with _sections(data) as tf:
            return [d for d in ({k: s[k] for k in (s.keys() if keys is None else keys) if k in s} for s in tf) if d]
    except UnicodeDecodeError:
        raise
    except _APT_ERRORS:
        from debian import deb822
        return [dict(p) if keys is None else {k: p[k] for k in keys if k in p}
                for p in deb822.Deb822.iter_paragraphs(data.decode("utf-8").splitlines(True), use_apt_pkg=False) if p]


def read_stanzas(data: bytes, keys: tuple[str, ...]) -> list[tuple[dict, str]] | None:
    """(those fields, the paragraph's text as it stands) of every paragraph, by apt's parser; None
    when apt cannot read it (read_paragraphs then, and the text is not reused)."""
    try:
        with _sections(data) as tf:
            return [({k: s[k] for k in keys if k in s}, str(s)) for s in tf]
    except UnicodeDecodeError:
        raise
    except _APT_ERRORS:
        return None


apt_pkg.init_system()       # selects dpkg's version scheme, which version_compare needs


@lru_cache(maxsize=1 << 16)
def _valid(v: str) -> bool:
    from debian.debian_support import Version
    try:
        Version(v)          # python-debian's check of what dpkg accepts
        return True
    except ValueError:
        return False


def version_cmp(a: str, b: str) -> int:
    """dpkg's version order (opkg's is the same). apt's C comparison, 70 times python-debian's
    (a 20,000-package feed compares ~10^5 times a release); a string dpkg would refuse goes to
    python-debian, which raises ValueError naming it, as before."""
    if _valid(a) and _valid(b):
        c = apt_pkg.version_compare(a, b)
        return (c > 0) - (c < 0)
    from debian.debian_support import version_compare
    return version_compare(a, b)


class PackagesIndex:
    """What ipk's and deb's `Packages` indexes share (a mixin before Format): their paragraphs read by
    apt's parser into entries (the format's `_entry`), only INDEX_KEYS of each when the fields are
    not wanted, and the text of each stanza of an index bindistro wrote (feed.index and release copy
    it instead of rendering it again)."""
    INDEX_KEYS: tuple[str, ...] = ()
    VOUCHER = "Packages"

    @staticmethod
    def _entry(par: dict, fields: bool) -> IndexEntry:
        raise NotImplementedError

    def read_index(self, index, fields: bool = True) -> list[IndexEntry]:
        return [self._entry(par, fields) for par in read_paragraphs(read_packages(index), None if fields else self.INDEX_KEYS)
                if "Package" in par]

    @staticmethod
    def own_texts(data: bytes) -> dict[str, str] | None:
        """File name -> stanza text of an index this code rendered (the caller has checked its hash
        against the one recorded when it was written): split where the renderer ends a stanza, not
        parsed again (apt's parse of a world's cumulative indexes was a tenth of a release's index
        step). None when a stanza has no Filename."""
        out = {}
        for t in data.decode().split("\n\n"):
            if not t:
                continue
            i = 0 if t.startswith("Filename: ") else t.find("\nFilename: ") + 1 or -1
            if i < 0:
                return None
            end = t.find("\n", i)
            out[t[i + 10:end if end >= 0 else None]] = t + "\n\n"
        return out

    def own_entries(self, feed_dir, data: bytes) -> dict[str, str] | None:
        got = self.own_texts(data)
        if got is None:
            got = {e.filename: text for e, text in self.index_texts(feed_dir / self.VOUCHER, data) or ()}
        return got

    @staticmethod
    def entry_name(text) -> tuple[str, str] | None:
        # both renderers start a stanza with Package and put Version on a line of its own; a
        # continuation line starts with a space, so "\nVersion: " is the field
        if type(text) is not str or not text.startswith("Package: "):
            return None
        i = text.find("\nVersion: ")
        if i < 0:
            return None
        return text[9:text.find("\n")], text[i + 10:text.find("\n", i + 1)]

    def index_texts(self, index, data: bytes | None = None) -> list[tuple[IndexEntry, str]] | None:
        got = read_stanzas(read_packages(index) if data is None else data, self.INDEX_KEYS)
        return None if got is None else [(self._entry(par, False), text) for par, text in got if "Package" in par]
