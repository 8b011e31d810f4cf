"""ipk (opkg) packages and feeds, as OE's package_ipk and opkg-utils' opkg-make-index make them.

An ipk is an ar archive: `debian-binary` ("2.0\\n"), `control.tar.gz`, `data.tar.<zst|xz|gz>`.
The feed index `Packages` lists fields in opkg-make-index's fixed order; unknown control fields are
dropped, as opkg-make-index does without -f.
"""
from __future__ import annotations

import gzip
from pathlib import Path

from debian import arfile

from ..store.objects import write_bytes_atomic
from .base import (ARCHIVE_ERRORS, Format, IndexEntry, Indexed, Inspection, PackageError, PackageInfo, extract_tar,
                   inspect_ar_payload, open_ar, open_tar, packages_indexes, quick_control, read_control, stamp_of)
from .control import PackagesIndex, missing_fields, parse_control, version_cmp

# (lower-case control field, index field name) in opkg-make-index's order; None marks the sums.
INDEX_ORDER = [
    ("package", "Package"), ("version", "Version"), ("depends", "Depends"),
    ("provides", "Provides"), ("replaces", "Replaces"), ("conflicts", "Conflicts"),
    ("suggests", "Suggests"), ("recommends", "Recommends"), ("section", "Section"),
    ("architecture", "Architecture"), ("maintainer", "Maintainer"), (None, None),
    ("size", "Size"), ("installed-size", "InstalledSize"), ("filename", "Filename"),
    ("source", "Source"), ("description", "Description"), ("oe", "OE"),
    ("homepage", "HomePage"), ("license", "License"), ("priority", "Priority"), ("tags", "Tags"),
]
REQUIRED = ("Package", "Version", "Architecture")


class Ipk(PackagesIndex, Format):
    name = "ipk"
    INDEX_KEYS = ("Package", "Version", "Architecture", "Size", "Filename", "MD5Sum", "SHA256sum")     # what IndexEntry keeps
    suffix = ".ipk"
    # as opkg-make-index: its Packages.stamps, written with the index, and its -r
    STAMPS, INDEX, OPKG_STAMPS, REUSES_INDEX = "Packages.stamps", ("Packages", "Packages.gz"), True, True

    def read_control(self, path: Path, name: str | None = None, data: bytes | None = None) -> PackageInfo:
        control = quick_control(data) if data is not None else None
        problems = []
        if control is None:
            problems, control = self._control(path, data)
        fields = parse_control(control, "control")
        problems += missing_fields(fields, REQUIRED)
        if problems:
            raise PackageError(problems)
        return PackageInfo(fields["Package"], fields["Version"], fields["Architecture"], fields)

    @staticmethod
    def _control(path: Path, data: bytes | None) -> tuple[list[str], bytes]:
        """(problems, ./control) of any ar archive, or PackageError when it has no readable control."""
        try:
            ar = open_ar(path, data)
        except (arfile.ArError, OSError, ValueError) as e:
            raise PackageError([f"not an ar archive ({e})"]) from None
        names = ar.getnames()
        problems = []
        if names[:1] != ["debian-binary"]:
            problems.append("first ar member is not debian-binary")
        data = next((n for n in names if n.startswith("data.tar")), None)
        try:
            ctl, control = read_control(ar, names)
        except ARCHIVE_ERRORS as e:
            raise PackageError(problems + [f"control.tar is not a readable tar ({e})"]) from None
        if not ctl:
            raise PackageError(problems + ["no control.tar.* member"])
        if not data:
            problems.append("no data.tar.* member")
        if control is None:
            raise PackageError(problems + [f"{ctl} has no control file"])
        return problems, control

    def inspect(self, path: Path) -> Inspection:
        return inspect_ar_payload(path)

    def extract(self, path: Path, dest: Path) -> None:
        ar = arfile.ArFile(str(path))
        data = next(n for n in ar.getnames() if n.startswith("data.tar"))
        extract_tar(open_tar(data, ar.getmember(data)), dest)

    def version_cmp(self, a: str, b: str) -> int:
        return version_cmp(a, b)

    def find_indexes(self, feed_dir: Path) -> list[Path]:
        return packages_indexes(feed_dir)

    @staticmethod
    def _entry(par: dict, fields: bool) -> IndexEntry:
        size = par.get("Size")
        return IndexEntry(filename=par.get("Filename", ""), name=par["Package"], version=par.get("Version", ""),
                          arch=par.get("Architecture", ""), size=int(size) if size else None,
                          sums={k: par[f] for k, f in (("md5", "MD5Sum"), ("sha256", "SHA256sum")) if f in par},
                          fields=dict(par) if fields else {})

    def stanza(self, it: Indexed, checksums=("md5", "sha256")) -> str:
        if it.text is not None:         # written by us with these options (feed.index checks): as it was
            return it.text.rstrip("\n") + "\n\n"
        # opkg-make-index reads control files as bytes and so drops every continuation line:
        # a multi-line Description keeps only its summary line in the index.
        lower = {k.lower(): str(v).split("\n", 1)[0].rstrip() for k, v in it.info.fields.items()}
        lower["size"] = str(it.size)
        lower["filename"] = it.filename
        out = []
        for key, label in INDEX_ORDER:
            if key is None:
                if "md5" in checksums:
                    out.append(f"MD5Sum: {it.md5}\n")
                if "sha256" in checksums:
                    out.append(f"SHA256sum: {it.sha256}\n")
                continue
            v = lower.get(key)
            if v:
                out.append(f"{label}: {v}\n")
        return "".join(out) + "\n"

    def select(self, items: list[Indexed], all_versions: bool) -> list[Indexed]:
        """Key and order as opkg-make-index: name:arch (newest wins) or, with -a, name:arch:version."""
        chosen = self.pick(items, lambda it: f"{it.info.name}:{it.info.arch}" + (f":{it.info.version}" if all_versions else ""))
        return [chosen[k] for k in sorted(chosen)]

    def render(self, items: list[Indexed], all_versions: bool = True, checksums=("md5", "sha256")) -> str:
        return "".join(self.stanza(it, checksums) for it in self.select(items, all_versions))

    def file_stamp(self, path: Path) -> int:
        return stamp_of(path)       # whole seconds, as opkg-make-index reads and writes them

    def write_index(self, feed_dir: Path, items: list[Indexed], all_versions: bool = True,
                    checksums: tuple[str, ...] = ("md5", "sha256")) -> list[Path]:
        text = self.render(items, all_versions, checksums).encode("utf-8")
        out = [feed_dir / "Packages.gz", feed_dir / "Packages", feed_dir / "Packages.stamps"]
        # Packages after its .gz: a reader that sees the new Packages also sees the new .gz. The
        # stamps last, with one for the index itself (as written with these options): a re-index
        # finding every stamp as it was has nothing to read, parse or render (feed.index)
        # gzip's default level, as OE's own feeds have it (XFL 0 in the real OE 5.0 feed's header):
        # -9 took twice as long for 2 % less
        write_bytes_atomic(out[0], gzip.compress(text, 6, mtime=0))
        write_bytes_atomic(out[1], text)
        self.write_stamps(feed_dir, items, all_versions, checksums)
        return out

