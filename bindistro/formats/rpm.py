"""rpm (dnf) packages and repositories, read with python3-rpm and written with createrepo_c's library.

One repository per package architecture (OE's `PACKAGE_FEED_ARCHS` gives one dnf repo per arch):
`feeds/rpm/<arch>/*.rpm` + `repodata/`. At stage time each package's primary/filelists/other XML
chunks are made once (with its file name as location) and stored; releases build repodata from the
stored chunks, so already published packages are never read again.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import re
import subprocess
import tempfile
from pathlib import Path

import createrepo_c as cr
import rpm
from xml.etree import ElementTree
from xml.sax.saxutils import unescape

from ..store.objects import write_bytes_atomic
from .base import (MAX_INDEX, Format, IndexEntry, Indexed, Inspection, PackageError, PackageInfo, extract_tar,
                   gunzip_member, open_tar)

_TS = None
_NS = {"c": "http://linux.duke.edu/metadata/common", "rpm": "http://linux.duke.edu/metadata/rpm"}
_REPO = {"repo": "http://linux.duke.edu/metadata/repo"}
_PACKAGE = "\n<package "           # where each package's chunk starts (own_entries): a str.find, not a regex
_LOCATION = re.compile(r'<location href="([^"]*)"')
_EVR = re.compile(r'epoch="([^"]*)" ver="([^"]*)" rel="([^"]*)"/>')


def _ts():
    global _TS
    if _TS is None:
        rpm.setVerbosity(rpm.RPMLOG_EMERG)   # problems are reported by us, one line each
        _TS = rpm.TransactionSet()
        # check header digests here; signatures are issue of the signing step
        _TS.setVSFlags(rpm._RPMVSF_NOSIGNATURES)
    return _TS


def evr_string(epoch, version, release) -> str:
    e = str(epoch or "")
    return f"{e}:{version}-{release}" if e and e != "0" else f"{version}-{release}"


def check_digests(paths: list[Path]) -> dict[str, str | None]:
    """path -> None when header and payload digests verify, else rpmkeys' verdict. One rpmkeys run."""
    env = dict(os.environ, HOME=tempfile.gettempdir())
    r = subprocess.run(["rpmkeys", "--checksig", "--nosignature", "--define", "_pkgverify_level digest",
                        *map(str, paths)], capture_output=True, text=True, env=env)
    out: dict[str, str | None] = {str(p): "digest check failed" for p in paths}
    for line in r.stdout.splitlines():
        name, _, verdict = line.rpartition(":")
        if name in out:
            out[name] = None if verdict.strip() == "digests OK" else verdict.strip()
    return out


class Rpm(Format):
    name = "rpm"
    suffix = ".rpm"
    STAMPS, INDEX = "repodata.stamps", ("repodata/repomd.xml",)     # it names the data files by their hash
    KNOWN_FIELDS = ("Arch", ("xml", 0))

    def feed_name(self, arch: str) -> str:
        return "noarch" if arch == "all" else arch.replace("-", "_")

    def read_control(self, path: Path, name: str | None = None, data: bytes | None = None) -> PackageInfo:
        hdr = self._header(path)
        problems = []
        names = [n.decode() if isinstance(n, bytes) else n for n in hdr[rpm.RPMTAG_FILENAMES]]
        links = [n.decode() if isinstance(n, bytes) else n for n in hdr[rpm.RPMTAG_FILELINKTOS]]
        for n, target in zip(names, links):
            if ".." in n.split("/"):
                problems.append(f"payload file {n!r} contains '..'")
            if target and not target.startswith("/"):
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(n), target))
                if resolved.startswith("..") or resolved == "/..":
                    problems.append(f"symlink {n!r} -> {target!r} points outside the package")
        for tag, label in ((rpm.RPMTAG_NAME, "Name"), (rpm.RPMTAG_VERSION, "Version"), (rpm.RPMTAG_RELEASE, "Release")):
            if not hdr[tag]:
                problems.append(f"header lacks {label}")
        if problems:
            raise PackageError(problems)
        try:
            pkg = cr.package_from_rpm(str(path), cr.SHA256, name or path.name, None, 10)
        except Exception as e:
            raise PackageError([f"createrepo_c cannot read it ({e})"]) from None
        primary, filelists, other = cr.xml_dump(pkg)
        version = evr_string(pkg.epoch, pkg.version, pkg.release)
        fields = {"Name": pkg.name, "Epoch": pkg.epoch or "0", "Version": pkg.version, "Release": pkg.release,
                  "Arch": pkg.arch, "Summary": pkg.summary, "xml": [primary, filelists, other]}
        return PackageInfo(pkg.name, version, pkg.arch, fields, names)

    def fields_fit(self, fields: dict, name: str) -> bool:
        xml = fields.get("xml") or [""]
        return f'<location href="{name}"' in xml[0]

    def _header(self, path: Path):
        try:
            with open(path, "rb") as f:
                return _ts().hdrFromFdno(f.fileno())
        except (rpm.error, OSError) as e:
            raise PackageError([f"not a readable rpm ({e})"]) from None

    def inspect(self, path: Path) -> Inspection:
        return self.inspect_many([path])[str(path)]

    def inspect_many(self, paths: list[Path]) -> dict[str, Inspection]:
        """Header and payload digests (one rpmkeys run per 500 files: the payload is hashed, not
        unpacked) and the file list from the header."""
        out: dict[str, Inspection] = {}
        for i in range(0, len(paths), 500):
            for key, bad in check_digests(paths[i:i + 500]).items():
                found = Inspection([f"broken header or payload digest: {bad}"] if bad else [])
                try:
                    hdr = self._header(Path(key))
                except PackageError as e:
                    found.problems += e.problems
                    out[key] = found
                    continue
                names = [n.decode() if isinstance(n, bytes) else n for n in hdr[rpm.RPMTAG_FILENAMES]]
                modes = hdr[rpm.RPMTAG_FILEMODES] or []
                sizes = hdr[rpm.RPMTAG_FILESIZES] or []
                found.files = names
                found.setuid = [n for n, m in zip(names, modes) if m & 0o6000 and (m & 0o170000) == 0o100000]
                found.unpacked = sum(sizes)
                out[key] = found
        return out

    def extract(self, path: Path, dest: Path) -> None:
        # rpm2archive turns the payload into a tar (rpm's own tool; cpio is not needed)
        # streamed, so the payload is bounded like any other (open_tar) and never held in memory
        with open(path, "rb") as fh, subprocess.Popen(["rpm2archive", "-"], stdin=fh, stdout=subprocess.PIPE,
                                                     stderr=subprocess.DEVNULL) as proc:
            extract_tar(open_tar("payload.tar.gz", proc.stdout), dest)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, "rpm2archive")

    def version_cmp(self, a: str, b: str) -> int:
        def split(v):
            e, _, rest = v.rpartition(":")
            ver, _, rel = rest.rpartition("-")
            return (e or "0", ver, rel)
        return rpm.labelCompare(split(a), split(b))

    def find_indexes(self, feed_dir: Path) -> list[Path]:
        return sorted(feed_dir.rglob("repodata/repomd.xml"))

    def index_dir(self, index: Path) -> Path:
        return index.parent.parent

    def read_index(self, index: Path, fields: bool = True) -> list[IndexEntry]:
        # primary.xml alone, streamed (Metadata.locate_and_load_xml held all three files of a
        # world's repository, file lists included: 160 MB for 36,000 rpms, against 50)
        out = []

        def add(p) -> None:
            sums = {"sha256": p.pkgId} if p.checksum_type == "sha256" else {}
            out.append(IndexEntry(p.location_href, p.name, evr_string(p.epoch, p.version, p.release), p.arch,
                                  p.size_package, sums, {"Name": p.name} if fields else {}))
        try:
            primary = cr.MetadataLocation(str(self.index_dir(index)), 0)["primary"]
            if not primary:
                raise ValueError(f"{index}: names no primary data")
            cr.xml_parse_primary(primary, None, add, None, 0)
        except Exception as e:
            raise ValueError(str(e)) from None
        return out

    def write_index(self, feed_dir: Path, items: list[Indexed], all_versions: bool = True,
                    checksums: tuple[str, ...] = ("sha256",)) -> list[Path]:
        """repodata/ from stored XML chunks. New data files get checksum names beside the old ones;
        repomd.xml is replaced last, by rename, so readers see either the old or the new repository."""
        if not all_versions:
            items = list(self.pick(items, lambda it: (it.info.name, it.info.arch)).values())
        items = sorted(items, key=lambda i: i.filename)
        repodata = feed_dir / "repodata"
        repodata.mkdir(parents=True, exist_ok=True)
        repomd = cr.Repomd()
        written = []
        with tempfile.TemporaryDirectory(dir=repodata, prefix=".tmp-") as tmp:
            paths = {k: os.path.join(tmp, f"{k}.xml.gz") for k in ("primary", "filelists", "other")}
            files = {"primary": cr.PrimaryXmlFile(paths["primary"], cr.GZ),
                     "filelists": cr.FilelistsXmlFile(paths["filelists"], cr.GZ),
                     "other": cr.OtherXmlFile(paths["other"], cr.GZ)}
            for f in files.values():
                f.set_num_of_pkgs(len(items))
            for it in items:
                chunks = it.text or it.info.fields.get("xml")
                if not chunks or "/" in it.filename:   # stored chunks locate the file by its name alone
                    chunks = self._chunks(feed_dir / it.filename, it.filename)
                for f, chunk in zip(files.values(), chunks):
                    f.add_chunk(chunk)
            for f in files.values():
                f.close()
            for kind, p in paths.items():
                rec = cr.RepomdRecord(kind, p)
                rec.fill(cr.SHA256)
                rec.rename_file()          # <checksum>-<kind>.xml.gz
                final = repodata / os.path.basename(rec.location_real)
                if not final.exists():
                    os.replace(rec.location_real, final)
                rec.location_href = f"repodata/{final.name}"
                repomd.set_record(rec)
                written.append(final)
            repomd.sort_records()
            write_bytes_atomic(repodata / "repomd.xml", repomd.xml_dump().encode())
        written.append(repodata / "repomd.xml")
        return written

    VOUCHER = "repodata/repomd.xml"

    def own_entries(self, feed_dir: Path, data: bytes) -> dict[str, tuple] | None:
        """File name -> its (primary, filelists, other) chunks, cut from the data files that
        repomd.xml (`data`, vouched for) names, each checked against its checksum there: what
        write_index wrote, so each chunk is one package's, as createrepo_c's xml_dump made it, and
        no text inside one starts a line with `<package ` (XML escapes `<` in text). None when
        anything differs from that."""
        try:
            md = ElementTree.fromstring(data)
        except ElementTree.ParseError:
            return None
        parts = []
        for kind in ("primary", "filelists", "other"):
            rec = md.find(f"repo:data[@type='{kind}']", _REPO)
            loc = rec.find("repo:location", _REPO) if rec is not None else None
            sha = rec.findtext("repo:checksum[@type='sha256']", None, _REPO) if rec is not None else None
            href = loc.get("href", "") if loc is not None else ""
            if not sha or posixpath.dirname(href) != "repodata" or not href.endswith(".xml.gz"):
                return None
            path = feed_dir / href
            if path.stat().st_size > MAX_INDEX:
                return None
            raw = path.read_bytes()
            text = gunzip_member(raw, MAX_INDEX) if hashlib.sha256(raw).hexdigest() == sha else None
            if text is None:
                return None
            text = text.decode()
            starts, i = [], text.find(_PACKAGE)
            while i >= 0:
                starts.append(i + 1)
                i = text.find(_PACKAGE, i + len(_PACKAGE))
            end = text.rstrip().rfind("\n") + 1         # the closing tag's line
            if not text.startswith("</", end) or end < (starts[-1] if starts else 0) \
                    or f' packages="{len(starts)}"' not in text[:starts[0] if starts else end]:
                return None
            parts.append([text[a:b] for a, b in zip(starts, starts[1:] + [end])])
        if not len(parts[0]) == len(parts[1]) == len(parts[2]):
            return None
        out = {}
        for chunks in zip(*parts):
            m = _LOCATION.search(chunks[0])
            if not m:
                return None
            out[unescape(m.group(1), {"&quot;": '"', "&apos;": "'"})] = chunks
        return out

    def entry_name(self, text) -> tuple[str, str] | None:
        # createrepo_c's chunk: <name> and then <version .../> come first, one line each
        chunk = text[0] if type(text) is tuple and text and type(text[0]) is str else ""
        a, v = chunk.find("<name>"), chunk.find("<version ")
        b = chunk.find("</name>", a)
        m = _EVR.match(chunk, v + 9) if 0 <= a < b < v else None
        if not m:
            return None

        def unxml(x: str) -> str:
            return unescape(x, {"&quot;": '"', "&apos;": "'"}) if "&" in x else x
        return unxml(chunk[a + 6:b]), evr_string(*map(unxml, m.groups()))

    def details(self, fields: dict) -> dict:
        """From the stored primary.xml chunk (createrepo_c wrote it; its prefixes need the
        namespaces of the <metadata> element around it)."""
        xml = (fields.get("xml") or [""])[0]
        try:
            pkg = ElementTree.fromstring(f'<metadata xmlns="{_NS["c"]}" xmlns:rpm="{_NS["rpm"]}">{xml}</metadata>')[0]
        except (ElementTree.ParseError, IndexError):
            return super().details({"Description": fields.get("Summary", "")})     # no recipe known
        text = lambda path: (pkg.findtext(path, "", _NS) or "").strip()     # noqa: E731

        def names(tag: str) -> list[str]:
            out = []
            for e in pkg.iterfind(f"c:format/rpm:{tag}/rpm:entry", _NS):
                n = e.get("name", "")
                if n and n not in out and not n.startswith("rpmlib("):
                    out.append(n)
            return out
        srpm = text("c:format/rpm:sourcerpm").removesuffix(".src.rpm")     # OE: ${PN}-${PV}-${PR}.src.rpm
        return {"summary": text("c:summary"), "description": text("c:description"),
                "recipe": srpm.rsplit("-", 2)[0] if srpm.count("-") >= 2 else "",
                "license": text("c:format/rpm:license"), "homepage": text("c:url"),
                "section": text("c:format/rpm:group"), "depends": names("requires"),
                "recommends": names("recommends"), "provides": names("provides"),
                "replaces": names("obsoletes"), "conflicts": names("conflicts")}

    @staticmethod
    def _chunks(path: Path, href: str) -> list[str]:
        return list(cr.xml_dump(cr.package_from_rpm(str(path), cr.SHA256, href, None, 10)))
