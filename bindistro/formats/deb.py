"""deb (dpkg/apt) packages and flat feeds, as OE's package_deb and DpkgIndexer make them.

One flat repository per package architecture (`deb [signed-by=…] URL/<arch> ./`): `Packages`,
`Packages.gz` with fields in apt-ftparchive's order, and a `Release` beginning with `Label: <arch>`.
The control `Architecture` is Debian's (amd64, arm64, all); OE records its own package architecture
in `PackageArch`, which decides the feed.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import subprocess
from pathlib import Path

from debian import arfile

from ..store.objects import write_bytes_atomic
from .base import (ARCHIVE_ERRORS, Format, IndexEntry, Indexed, Inspection, PackageError, PackageInfo,
                   inspect_ar_payload, open_ar, packages_indexes, quick_control, read_control)
from .control import PackagesIndex, missing_fields, parse_control, version_cmp

REQUIRED = ("Package", "Version", "Architecture")
# apt-ftparchive's order (apt's TFRewritePackageOrder); other fields follow in control order
ORDER = ["Package", "Source", "Architecture", "Version", "Priority", "Essential", "Section", "Origin",
         "Maintainer", "Original-Maintainer", "Bugs", "Installed-Size", "Provides", "Pre-Depends",
         "Depends", "Recommends", "Suggests", "Replaces", "Breaks", "Conflicts", "Enhances",
         "Filename", "Size", "MD5sum", "SHA256", "Homepage", "Description"]
INDEX_OWN = {"Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"}


class Deb(PackagesIndex, Format):
    name = "deb"
    INDEX_KEYS = ("Package", "Version", "Architecture", "Size", "Filename", "MD5sum", "SHA256")     # what IndexEntry keeps
    suffix = ".deb"
    STAMPS, INDEX, REUSES_INDEX = "Packages.stamps", ("Packages", "Packages.gz", "Release"), True
    KNOWN_FIELDS = ("Architecture", "PackageArch")

    def read_control(self, path: Path, name: str | None = None, data: bytes | None = None) -> PackageInfo:
        raw = quick_control(data) if data is not None else None      # (it has a data.tar.*)
        names = None
        if raw is None:
            names, raw = self._control(path, data)
        fields = parse_control(raw)
        problems = missing_fields(fields, REQUIRED)
        if names is not None and not any(n.startswith("data.tar") for n in names):
            problems.append("no data.tar.* member")
        if problems:
            raise PackageError(problems)
        return PackageInfo(fields["Package"], fields["Version"], fields["Architecture"], fields)

    @staticmethod
    def _control(path: Path, data: bytes | None) -> tuple[list[str], bytes]:
        """(ar member names, ./control) of any ar archive, or PackageError when it is no deb or has no
        readable control."""
        try:
            ar = open_ar(path, data)
        except (arfile.ArError, OSError, ValueError) as e:
            raise PackageError([f"not a deb archive ({e})"]) from None
        names = ar.getnames()
        if names[:1] != ["debian-binary"]:
            raise PackageError(["not a deb archive (first ar member is not debian-binary)"])
        try:
            _, raw = read_control(ar, names)
        except ARCHIVE_ERRORS as e:
            raise PackageError([f"control.tar has no readable control file ({e})"]) from None
        if raw is None:
            raise PackageError(["control.tar has no control file"])
        return names, raw

    def inspect(self, path: Path) -> Inspection:
        return inspect_ar_payload(path, "data.tar")

    def extract(self, path: Path, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(path), str(dest)], check=True, capture_output=True)

    def version_cmp(self, a: str, b: str) -> int:
        return version_cmp(a, b)

    def feed_arch(self, info: PackageInfo, rel: str) -> str:
        if info.fields.get("PackageArch"):
            return info.fields["PackageArch"]
        return rel.split("/")[0] if "/" in rel else info.arch

    def find_indexes(self, feed_dir: Path) -> list[Path]:
        return packages_indexes(feed_dir)

    @staticmethod
    def _entry(par: dict, fields: bool) -> IndexEntry:
        fn = par.get("Filename", "")
        fn = fn[2:] if fn.startswith("./") else fn
        sums = {k: par[f] for k, f in (("md5", "MD5sum"), ("sha256", "SHA256")) if f in par}
        return IndexEntry(fn, par["Package"], par.get("Version", ""), par.get("Architecture", ""),
                          int(par["Size"]) if par.get("Size") else None, sums, par if fields else {})

    def stanza(self, it: Indexed) -> str:
        if it.text is not None:         # written by us (feed.index, release check which index): as it was
            return it.text.rstrip("\n") + "\n\n"
        f = {k: v for k, v in it.info.fields.items() if k not in INDEX_OWN}
        # no "./" (apt-ftparchive writes one): apt joins URI, suite and Filename as they are, and S3 or
        # a CDN in front of it does not fold "/./" as a web server does (device.config_files, Suites: /)
        f.update({"Filename": it.filename, "Size": str(it.size), "MD5sum": it.md5, "SHA256": it.sha256})
        keys = [k for k in ORDER if k in f] + [k for k in f if k not in ORDER]
        return "".join(f"{k}: {f[k]}\n" for k in keys) + "\n"

    def write_index(self, feed_dir: Path, items: list[Indexed], all_versions: bool = True,
                    checksums: tuple[str, ...] = ("md5", "sha256")) -> list[Path]:
        chosen = self.pick(items, lambda it: (it.info.name, it.info.arch) + ((it.info.version,) if all_versions else ()))
        text = "".join(self.stanza(it) for it in sorted(chosen.values(), key=lambda i: (i.info.name, i.filename))).encode()
        gz = gzip.compress(text, 6, mtime=0)      # gzip's default, as OE's DpkgIndexer (`gzip -fcn`)
        now = dt.datetime.now(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")
        rel = [f"Label: {feed_dir.resolve().name}\n", f"Date: {now}\n", "Acquire-By-Hash: yes\n"]
        for title, algo in (("MD5Sum", "md5"), ("SHA256", "sha256")):
            rel.append(f"{title}:\n")
            for name, data in (("Packages", text), ("Packages.gz", gz)):
                rel.append(f" {hashlib.new(algo, data).hexdigest()} {len(data):16d} {name}\n")
        out = []
        # apt fetches the indexes an InRelease names by their hash (Acquire-By-Hash): an index replaced
        # between the two requests is then still there under its old hash. Old ones are kept.
        for data in (gz, text):
            p = feed_dir / "by-hash" / "SHA256" / hashlib.sha256(data).hexdigest()
            if not p.exists():
                write_bytes_atomic(p, data)
                out.append(p)
        out += [feed_dir / "Packages.gz", feed_dir / "Packages", feed_dir / "Release"]
        write_bytes_atomic(out[-3], gz)
        write_bytes_atomic(out[-2], text)
        write_bytes_atomic(out[-1], "".join(rel).encode())   # Release last: it vouches for the others
        return out
