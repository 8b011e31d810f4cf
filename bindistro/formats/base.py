"""The one interface every package format implements, and the logic all formats share."""
from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import io
import lzma
import os
import posixpath
import re
import shutil
import sys
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import zstandard
from debian import arfile

from ..errors import BindistroError, Problem
from ..store.objects import write_bytes_atomic


class PackageError(BindistroError):
    """A package file is unusable; carries every problem found in it."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@functools.cache
def _writer_key(module: str) -> str:
    return hashlib.blake2b(Path(sys.modules[module].__file__).read_bytes(), digest_size=6).hexdigest()


@dataclass
class PackageInfo:
    name: str
    version: str      # exactly as the index writes it
    arch: str
    fields: dict      # control/header fields in file order, values as written
    files: list[str] = field(default_factory=list)


@dataclass
class IndexEntry:
    filename: str     # relative to the directory holding the index
    name: str
    version: str
    arch: str
    size: int | None
    sums: dict        # {"md5": hex, "sha256": hex} as far as the index carries them
    fields: dict


@dataclass
class Indexed:
    """A package file ready to be listed in an index."""
    filename: str     # relative to the feed directory
    info: PackageInfo
    size: int
    md5: str
    sha256: str
    stamp: int = 0
    text: str | tuple | None = None     # its entry as the index we wrote last has it (own_entries)


class Format:
    """Plug-in interface: read a package, read and write a feed's index."""
    name: str = ""
    suffix: str = ""

    def read(self, path: Path, deep: bool = False) -> PackageInfo:
        """Parse a package's control data (never its payload: staging reads each file once, at
        the speed of hashing); `deep` adds inspect()'s problems. Raises PackageError."""
        info = self.read_control(path)
        if deep:
            found = self.inspect(path)
            if found.problems:
                raise PackageError(found.problems)
            info.files = found.files
        return info

    def read_control(self, path: Path, name: str | None = None, data: bytes | None = None) -> PackageInfo:
        """The control data (header) only; `name`: the file's name in its feed, when `path` is a
        copy under another name; `data`: the file's bytes, when they are in memory already."""
        raise NotImplementedError

    # the control fields stage reads back for a file staged before (the rest stays in the DB): its
    # architecture, and what fields_fit and feed_arch look at. A name, or (name, 0): a list's first item
    KNOWN_FIELDS: tuple = ("Architecture",)

    def fields_fit(self, fields: dict, name: str) -> bool:
        """Whether control data stored for these bytes holds for them under file name `name` (rpm's
        repodata location is the file name; control data elsewhere is the bytes' alone)."""
        return True

    def inspect(self, path: Path) -> Inspection:
        """Unpack the payload as a stream (bounded) and report what it holds: the `payload` gate's
        work, cached per object, so each package version is inspected once in its life."""
        raise NotImplementedError

    def inspect_many(self, paths: list[Path]) -> dict[str, "Inspection"]:
        """inspect() of many files (a format may do it in one batch)."""
        return {str(p): self.inspect(p) for p in paths}

    def find_indexes(self, feed_dir: Path) -> list[Path]:
        """Index files under `feed_dir` (each lists files relative to its own directory)."""
        raise NotImplementedError

    def index_texts(self, index: Path, data: bytes | None = None) -> list[tuple[IndexEntry, str]] | None:
        """The entries of an index this format wrote (`data`: its bytes, already read), each with its
        stanza's text, when it writes an entry it keeps back as it was (feed.index and release then
        copy instead of rendering it); None: it does not, or cannot read this index so."""
        return None

    # the file of a feed's index whose hash, recorded when a release wrote the index, vouches for
    # all of it (release.kept_entries); None: a release renders every entry each time
    VOUCHER: str | None = None

    def own_entries(self, feed_dir: Path, data: bytes) -> dict[str, str | tuple] | None:
        """File name -> its entry in the index this code wrote at `feed_dir` (`data`: VOUCHER's
        bytes, whose hash the caller checked against the one recorded when it was written), for
        write_index to write as it is (Indexed.text); None when it cannot tell."""
        return None

    def entry_name(self, text: str | tuple) -> tuple[str, str] | None:
        """(name, version) of a package read from its entry as own_entries() returned it: a release
        lists the feed's older packages from the index alone (release.index_feed). None: unreadable
        so (the feed's history is then read from the store)."""
        return None

    def read_index(self, index: Path, fields: bool = True) -> list[IndexEntry]:
        raise NotImplementedError

    def write_index(self, feed_dir: Path, items: list[Indexed], all_versions: bool = True,
                    checksums: tuple[str, ...] = ("md5", "sha256")) -> list[Path]:
        """Write the index of `feed_dir` atomically; returns the files written."""
        raise NotImplementedError

    def extract(self, path: Path, dest: Path) -> None:
        """Unpack the package's files (its payload) under `dest`."""
        raise NotImplementedError

    def version_cmp(self, a: str, b: str) -> int:
        raise NotImplementedError

    def index_dir(self, index: Path) -> Path:
        return index.parent

    def pick(self, items: list[Indexed], key) -> dict:
        """key(item) -> the item with the newest version (a later file name wins a tie), as
        opkg-make-index's add_package; with the version in the key, every version is kept."""
        chosen: dict = {}
        for it in sorted(items, key=lambda i: i.filename):
            k = key(it)
            old = chosen.get(k)
            if old is None or self.version_cmp(it.info.version, old.info.version) >= 0:
                chosen[k] = it
        return chosen

    def newest(self, versions) -> dict[str, str]:
        """name -> its newest version, over (name, version) pairs."""
        out: dict[str, str] = {}
        for name, v in versions:
            if name not in out or self.version_cmp(v, out[name]) > 0:
                out[name] = v
        return out

    def feed_name(self, arch: str) -> str:
        """Directory name of the feed of OE package architecture `arch` (as in tmp/deploy/<fmt>/)."""
        return arch

    def feed_arch(self, info: PackageInfo, rel: str) -> str:
        """The feed a package belongs to; `rel` is its path below the format's deploy directory."""
        return info.arch

    # `feed index` keeps the stamps of a feed's files in STAMPS (beside the index, a "<stamp> <file>"
    # line each, as opkg-make-index's Packages.stamps) and one line for the index itself: the
    # ctimes of the INDEX files as written with the run's options. A run finding them all as they
    # were reads nothing.
    STAMPS: str | None = None
    INDEX: tuple[str, ...] = ()     # every file of the index: another tool may rewrite any one of them
    OPKG_STAMPS = False             # write_index writes STAMPS itself (ipk, as opkg-make-index)
    # a re-index takes the old index's entry of a file whose stamp did not change instead of
    # reading the file again (opkg-make-index -r); rpm's index holds no control data to take
    REUSES_INDEX = False

    def read_stamps(self, feed_dir: Path) -> dict[str, int]:
        out: dict[str, int] = {}
        try:
            text = (feed_dir / self.STAMPS).read_text() if self.STAMPS else ""
        except (OSError, UnicodeDecodeError):
            return out
        for line in text.splitlines():
            s, _, f = line.partition(" ")
            if f and s.isdigit():
                out[f] = int(s)
        return out

    def write_stamps(self, feed_dir: Path, items: list[Indexed], all_versions: bool, checksums) -> Path:
        stamps = sorted((it.filename, it.stamp) for it in items)
        stamps.append((self.index_stamp_name(all_versions, checksums), self.index_stamp(feed_dir)))
        p = feed_dir / self.STAMPS
        write_bytes_atomic(p, "".join(f"{s} {f}\n" for f, s in stamps).encode())
        return p

    def file_stamp(self, path: Path) -> int:
        """A package file's stamp: its ctime in nanoseconds (any write or chmod changes it)."""
        return os.stat(path).st_ctime_ns

    def index_stamp(self, feed_dir: Path) -> int:
        """One number for the ctimes of all INDEX files, in nanoseconds (an index rewritten by
        someone else within the second must not pass for ours)."""
        times = ",".join(str(os.stat(feed_dir / f).st_ctime_ns) for f in self.INDEX)
        return int.from_bytes(hashlib.sha256(times.encode()).digest()[:8], "big")

    def index_stamp_name(self, all_versions: bool, checksums) -> str:
        """The stamp line of the index itself: written with these options by this writer (its
        module's digest: ipk copies the stanzas of an index it wrote, so a changed writer must
        render them all once). opkg-make-index reads each line as "<ctime> <file>" and looks up
        only package files, so a name no package file has is ignored there."""
        return (f"{self.INDEX[0]};{'all' if all_versions else 'newest'};{','.join(checksums)};"
                f"{_writer_key(type(self).__module__)}")

    def details(self, fields: dict) -> dict:
        """What a feed viewer shows of a package, from its stored control data: summary,
        description, license, homepage, and the relations (each a list of names, alternatives
        flattened; versions dropped: the viewer links names)."""
        f = {k.lower(): str(v) for k, v in fields.items() if isinstance(v, str)}
        desc = f.get("description", "")
        out = {"summary": desc.split("\n", 1)[0].strip(), "description": desc.strip(),
               "license": f.get("license", ""), "homepage": f.get("homepage", ""), "section": f.get("section", ""),
               "recipe": f.get("oe", "")}       # OE's package_ipk/_deb write `OE: ${PN}`
        for rel in RELATIONS:
            out[rel] = relation_names(f.get(rel, ""))
        return out


def upstream_version(version: str) -> str:
    """A package version's PV part: epoch and the -PKGR revision dropped (1:255.4-r0.0 -> 255.4)."""
    return re.sub(r"^\d+:", "", version).rsplit("-", 1)[0]


# relations a viewer links, as control files name them (rpm: requires, recommends, provides, obsoletes, conflicts)
RELATIONS = ("depends", "recommends", "provides", "replaces", "conflicts")


def relation_names(value: str) -> list[str]:
    """`a (>= 1), b | c, d:any` -> [a, b, c, d]."""
    out = []
    for alt in value.replace("|", ",").split(","):
        name = alt.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0]
        if name and name not in out:
            out.append(name)
    return out


# --- payload checks shared by all formats -------------------------------------------------------

MAX_EXTRACT = 4 << 30      # bytes one package may unpack to (the largest OE packages are ~1 GB)
MAX_CONTROL_TAR = 16 << 20  # a control.tar unpacks to KBs (scripts, conffiles list); 16 MB is a wide margin
MAX_CONTROL = 1 << 20      # the control file itself: a few hundred bytes in OE
MAX_RATIO, RATIO_FLOOR = 1000, 256 << 20   # past 256 MB, more than 1000x the compressed size is a bomb
MAX_INDEX = 256 << 20      # a Packages index of 20,000 packages is ~20 MB


class TooLarge(BindistroError, ValueError):
    """Decompressed data passed its bound: a decompression bomb or not what it claims to be."""


class _Bounded:
    """A read() stream that stops with TooLarge past `limit` bytes, or past MAX_RATIO times
    `compressed` once RATIO_FLOOR is passed."""

    def __init__(self, inner, limit: int, compressed: int | None):
        self.inner, self.limit, self.compressed, self.total = inner, limit, compressed, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.inner.read(n if n is not None and n >= 0 else 1 << 20)
        self.total += len(chunk)
        if self.total > self.limit:
            raise TooLarge(f"unpacks to more than {_size(self.limit)}")
        if self.compressed and self.total > RATIO_FLOOR and self.total > MAX_RATIO * self.compressed:
            raise TooLarge(f"expands more than {MAX_RATIO}x ({_size(self.compressed)} to over {_size(self.total)})")
        return chunk


def _size(n: int) -> str:
    return f"{n >> 30} GiB" if n >= 1 << 30 else f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


def decompressor(name: str, raw):
    """A stream of the decompressed bytes of `raw`, chosen by `name`'s suffix (as dpkg and opkg do)."""
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if name.endswith((".xz", ".lzma")):
        return lzma.LZMAFile(raw)
    if name.endswith(".bz2"):
        return bz2.BZ2File(raw)
    if name.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(raw)
    return raw


# what a corrupt or hostile compressed tar raises (tarfile, gzip, lzma, zstd, our bound)
ARCHIVE_ERRORS = (OSError, EOFError, ValueError, lzma.LZMAError, zstandard.ZstdError, tarfile.TarError)


def open_tar(name: str, data: bytes | io.IOBase, limit: int = MAX_EXTRACT,
             compressed: int | None = None) -> tarfile.TarFile:
    """Open a (possibly compressed) tar member as a stream, decompression bounded by `limit` bytes
    and by MAX_RATIO of the `compressed` size. Raises one of ARCHIVE_ERRORS on bad input."""
    if isinstance(data, bytes) and name.endswith(".gz") and limit <= MAX_CONTROL_TAR:
        whole = gunzip_member(data, limit)
        if whole is not None:
            return tarfile.open(fileobj=io.BytesIO(whole), mode="r:")
    raw = io.BytesIO(data) if isinstance(data, bytes) else data
    compressed = compressed or (len(data) if isinstance(data, bytes) else getattr(data, "size", None))
    return tarfile.open(fileobj=_Bounded(decompressor(name, raw), limit, compressed), mode="r|")


def gunzip_member(data: bytes, limit: int) -> bytes | None:
    """One gzip member (a package's control.tar.gz, an rpm repodata file) inflated in one call, at most `limit` bytes: a
    package's control data in about half the time of a stream through GzipFile and tarfile's
    stream mode (stage parses one per new package). None when it is not one complete gzip member
    (several members, trailing bytes, corrupt): the stream path reads it, or says what is wrong."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        whole = d.decompress(data, limit + 1)
    except zlib.error:
        return None
    if len(whole) > limit:
        raise TooLarge(f"unpacks to more than {_size(limit)}")
    return whole if d.eof and not d.unused_data else None


def _unzstd(data: bytes, limit: int) -> bytes | None:
    """One whole zstd frame and nothing after it (the stream reader open_tar uses stops after the
    first frame), at most `limit` bytes; None otherwise. (max_output_size bounds only a frame that
    does not declare its size: a declared one is checked first.)"""
    try:
        if zstandard.frame_content_size(data) > limit:
            return None
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=limit, allow_extra_data=False)
    except zstandard.ZstdError:
        return None


def _unxz(data: bytes, limit: int) -> bytes | None:
    """One whole xz stream and nothing after it, at most `limit` bytes; None otherwise (LZMAFile,
    which open_tar uses, reads concatenated streams and padding: those take that path)."""
    d = lzma.LZMADecompressor()
    try:
        whole = d.decompress(data, limit + 1)
    except lzma.LZMAError:
        return None
    return whole if len(whole) <= limit and d.eof and not d.unused_data else None


def open_ar(path: Path, data: bytes | None = None) -> arfile.ArFile:
    """An ar archive (ipk, deb) from its file, or from its bytes when they are in memory already
    (stage has read them to hash them: parsing them there spares four opens of the file)."""
    return arfile.ArFile(fileobj=io.BytesIO(data)) if data is not None else arfile.ArFile(str(path))


def read_control(ar, names: list[str]) -> tuple[str, bytes | None]:
    """(member name, bytes of ./control) from the control.tar.* member of an ipk or deb ar archive;
    bounded, so a bomb in control.tar ends as TooLarge."""
    ctl = next((n for n in names if n.startswith("control.tar")), None)
    if not ctl:
        return "", None
    member = ar.getmember(ctl)
    if member.size > MAX_CONTROL_TAR:
        raise TooLarge(f"{ctl} is {_size(member.size)}, more than {_size(MAX_CONTROL_TAR)}")
    control = None
    tf = open_tar(ctl, member.read(), MAX_CONTROL_TAR)
    for m in tf:
        if m.name in ("control", "./control") and m.isfile():
            if m.size > MAX_CONTROL:
                raise TooLarge(f"control is {_size(m.size)}, more than {_size(MAX_CONTROL)}")
            control = tf.extractfile(m).read()
    return ctl, control


_INFLATE = {"control.tar.gz": gunzip_member, "control.tar.zst": _unzstd, "control.tar.xz": _unxz}
_TAR_NUMBERS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (148, 156), (329, 337), (337, 345))


def quick_control(data: bytes) -> bytes | None:
    """The ./control file of a package in its usual shape, read straight from its bytes: an ar
    archive of uniquely named members, `debian-binary` first, one `control.tar.gz` (one gzip
    member), `.zst` (one zstd frame) or `.xz` (one xz stream) holding a plain tar, and a
    `data.tar.*`. None for anything else, and for every limit passed: open_ar and read_control
    then read it and say what is wrong. Stage reads one per new package; python-debian's ArFile
    and tarfile took 0.16 ms of a package's 0.5 ms. Only what both
    parse the same is accepted (tarfile's checksum, numbers and types; no long names, prefixes or
    pax headers), so for any input this returns what they would, or None."""
    if not data.startswith(b"!<arch>\n"):
        return None
    members: dict[str, tuple[int, int]] = {}
    off, end = 8, len(data)
    while off < end:
        head = data[off:off + 60]
        if len(head) < 60 or head[58:60] != b"`\n":
            return None
        try:
            name, size = head[0:16].split(b"/")[0].strip().decode("ascii"), int(head[48:58])
            int(head[16:28]), int(head[28:34]), int(head[34:40])    # (ArFile parses these too)
        except (UnicodeDecodeError, ValueError):
            return None
        if not name or name in members or size < 0 or off + 60 + size > end:
            return None
        members[name] = (off + 60, size)
        off += 60 + size + (size & 1)
    names = list(members)
    ctl = [n for n in names if n.startswith("control.tar")]
    inflate = _INFLATE.get(ctl[0]) if len(ctl) == 1 else None
    if names[:1] != ["debian-binary"] or not inflate or not any(n.startswith("data.tar") for n in names):
        return None
    start, size = members[ctl[0]]
    if size > MAX_CONTROL_TAR:
        return None
    try:
        tar = inflate(data[start:start + size], MAX_CONTROL_TAR)
    except TooLarge:
        return None
    if tar is None:
        return None
    control, off = None, 0
    while off + 512 <= len(tar):
        head = tar[off:off + 512]
        if head.count(0) == 512:
            break                   # tarfile's end: the first block of zeros
        try:
            nums = [int(head[a:b].split(b"\0", 1)[0].decode("ascii").strip() or "0", 8)
                    for a, b in _TAR_NUMBERS if head[a] not in (0o200, 0o377)]
        except (UnicodeDecodeError, ValueError):
            return None
        kind = head[156:157]
        if len(nums) < len(_TAR_NUMBERS) or min(nums) < 0 or nums[5] != 256 + sum(head) - sum(head[148:156]) \
                or head[345:500].count(0) != 155 or kind not in (b"0", b"\0", b"5", b"2"):
            return None
        size = nums[3]
        name = head[0:100].split(b"\0", 1)[0]
        data_at = off + 512
        if kind == b"0" or (kind == b"\0" and not name.endswith(b"/")):     # (tarfile: "\0" + "/" is a directory)
            off = data_at + -(-size // 512) * 512
            if off > len(tar):
                return None
            if name in (b"control", b"./control"):
                if control is not None or size > MAX_CONTROL:
                    return None
                control = tar[data_at:data_at + size]
        else:
            off = data_at           # (tarfile skips no data after a directory or link, whatever its size)
    return control


def extract_tar(tf: tarfile.TarFile, dest: Path) -> None:
    """Files, directories and symlinks only, never outside `dest`: members with `..` or that would
    pass through a symlink (an earlier member, or one already there) are skipped, files are never
    written through a link, and the total size is bounded."""
    root = dest.resolve()
    total = 0
    for m in tf:
        name = m.name[2:] if m.name.startswith("./") else m.name
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            continue
        target = root.joinpath(*parts)
        if not target.parent.resolve().is_relative_to(root):
            continue            # a parent is a symlink leading out of the tree
        if m.isdir():
            if not target.is_symlink():
                target.mkdir(parents=True, exist_ok=True)
            continue
        if not (m.issym() or m.isfile()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.is_file():
            target.unlink()
        if m.issym():
            target.symlink_to(m.linkname)
            continue
        total += m.size
        if total > MAX_EXTRACT:
            raise ValueError(f"unpacks to more than {MAX_EXTRACT >> 30} GiB")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out, tf.extractfile(m) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        target.chmod(m.mode & 0o7777)


@dataclass
class Inspection:
    """What a package's payload holds, as far as the gates need it (formats/*.inspect)."""
    problems: list[str] = field(default_factory=list)   # members that would escape the install root
    files: list[str] = field(default_factory=list)      # member names, as in the payload
    setuid: list[str] = field(default_factory=list)     # files with the setuid or setgid bit
    unpacked: int = 0                                    # bytes of file data


def inspect_tar(tf: tarfile.TarFile, what: str) -> Inspection:
    """Members that would escape the install root (absolute paths, '..', links pointing outside,
    members placed under a symlink the package itself ships), and the payload's file list."""
    out = Inspection()
    links: set[str] = set()
    for m in tf:
        n = m.name
        out.files.append(n)
        out.unpacked += m.size if m.isfile() else 0
        if m.isfile() and m.mode & 0o6000:
            out.setuid.append(n)
        if n.startswith("/"):
            out.problems.append(f"{what}: member {n!r} has an absolute path")
            continue
        parts = n.split("/")
        if ".." in parts:
            out.problems.append(f"{what}: member {n!r} contains '..'")
            continue
        norm = [p for p in parts if p not in ("", ".")]
        through = next(("/".join(norm[:i]) for i in range(1, len(norm)) if "/".join(norm[:i]) in links), None)
        if through:     # the package manager would write through the link, wherever it points
            out.problems.append(f"{what}: member {n!r} lies under the symlink {through!r} of the same package")
            continue
        if m.issym():
            links.add("/".join(norm))
        if m.issym() or m.islnk():
            target = m.linkname
            if m.issym() and target.startswith("/"):
                continue  # absolute symlinks resolve inside the device's root
            base = posixpath.dirname(posixpath.normpath(n)) if m.issym() else ""
            resolved = posixpath.normpath(posixpath.join(base, target))
            if resolved == ".." or resolved.startswith("../") or resolved.startswith("/"):
                out.problems.append(f"{what}: {'symlink' if m.issym() else 'hard link'} {n!r} -> {target!r} "
                                    "points outside the package")
    return out


def inspect_ar_payload(path: Path, what: str = "") -> Inspection:
    """inspect_tar over the data.tar.* member of an ipk or deb; a payload that cannot be read is a
    problem (decompression bounded by open_tar)."""
    try:
        ar = arfile.ArFile(str(path))
        data = next((n for n in ar.getnames() if n.startswith("data.tar")), None)
    except (arfile.ArError, OSError, ValueError) as e:
        return Inspection([f"not an ar archive ({e})"])
    if data is None:
        return Inspection(["no data.tar.* member"])
    try:
        return inspect_tar(open_tar(data, ar.getmember(data)), what or data)
    except ARCHIVE_ERRORS as e:
        return Inspection([f"{what or data} is not a readable tar ({e})"])


# --- feed checking: the same for every format ----------------------------------------------------

def scan_files(fmt: Format, feed_dir: Path) -> list[str]:
    """Package files below `feed_dir`, relative to it (os.scandir: pathlib costs seconds at 20,000
    files, and the directory entry's type spares a stat per file)."""
    out = []

    def walk(d: str, rel: str) -> None:
        try:
            it = os.scandir(d)
        except OSError:         # as os.walk: a directory that cannot be listed holds nothing
            return
        with it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    walk(e.path, f"{rel}{e.name}/")
                elif e.name.endswith(fmt.suffix) and e.is_file():
                    out.append(rel + e.name)
    walk(str(feed_dir), "")
    return sorted(out)


def index_entries(fmt: Format, feed_dir: Path, fields: bool = True) -> tuple[dict[str, IndexEntry], list[Problem]]:
    """All index entries under `feed_dir`, keyed by path relative to `feed_dir` (`fields`: with every
    field of each, else name, version, arch, size and sums only)."""
    entries: dict[str, IndexEntry] = {}
    problems: list[Problem] = []
    for idx in fmt.find_indexes(feed_dir):
        try:
            listed = fmt.read_index(idx, fields)
        except (ValueError, UnicodeDecodeError, OSError) as e:
            problems.append(Problem(str(idx), f"unreadable index: {e}"))
            continue
        base = fmt.index_dir(idx).relative_to(feed_dir)
        for e in listed:
            rel = posixpath.normpath(posixpath.join(str(base), e.filename)) if str(base) != "." else posixpath.normpath(e.filename)
            if rel.startswith("../") or rel.startswith("/"):
                problems.append(Problem(str(idx), f"entry {e.name} {e.version}: Filename {e.filename!r} points outside the feed"))
                continue
            entries[rel] = e
    return entries, problems


def compare_with_index(fmt: Format, feed_dir: Path, entries: dict[str, IndexEntry],
                       sums: dict[str, tuple[str, str, int]], names: dict[str, tuple[str, str, str]]
                       ) -> list[Problem]:
    """Index entry without file, file without entry, size/checksum mismatch.

    `sums`: rel path -> (sha256, md5, size) of files present; `names`: rel path -> (name, version, arch).
    A file left out of an index that lists a newer version of the same package is only a warning:
    opkg-make-index and apt-ftparchive list the newest version by default.
    """
    problems: list[Problem] = []
    top = str(feed_dir)         # (a file's name made only for a problem: a Path per file was half of this)
    for rel, e in sorted(entries.items()):
        if rel not in sums:
            problems.append(Problem(posixpath.join(top, rel), f"listed in the index ({e.name} {e.version}) but the file is missing"))
            continue
        sha, md5, size = sums[rel]
        if e.size is not None and e.size != size:
            problems.append(Problem(posixpath.join(top, rel), f"size {size} differs from the index's {e.size}"))
        if e.sums.get("sha256") and e.sums["sha256"] != sha:
            problems.append(Problem(posixpath.join(top, rel), "SHA256 differs from the index"))
        if e.sums.get("md5") and e.sums["md5"] != md5:
            problems.append(Problem(posixpath.join(top, rel), "MD5 differs from the index"))
    if not entries:
        return problems
    newest: dict[tuple[str, str], str] = {}
    for e in entries.values():
        k = (e.name, e.arch)
        if k not in newest or fmt.version_cmp(e.version, newest[k]) > 0:
            newest[k] = e.version
    for rel in sorted(sums):
        if rel in entries:
            continue
        p = posixpath.join(top, rel)
        nva = names.get(rel)
        if nva and (nva[0], nva[2]) in newest and fmt.version_cmp(nva[1], newest[(nva[0], nva[2])]) < 0:
            problems.append(Problem(p, f"not in the index; superseded by {nva[0]} {newest[(nva[0], nva[2])]}",
                                    severity="warning"))
        else:
            problems.append(Problem(p, "file is not listed in any index"))
    return problems


def packages_indexes(feed_dir: Path) -> list[Path]:
    """Debian-style indexes (ipk, deb): `Packages`, or `Packages.gz` where a feed publishes only that."""
    return [p for p in sorted(feed_dir.rglob("Packages*")) if p.is_file() and
            (p.name == "Packages" or (p.name == "Packages.gz" and not p.with_suffix("").exists()))]


def read_packages(index: Path) -> bytes:
    """The text of a Packages or Packages.gz index, bounded; ValueError when it is not one."""
    if index.stat().st_size > MAX_INDEX:
        raise TooLarge(f"larger than {_size(MAX_INDEX)}")
    if index.suffix != ".gz":
        return index.read_bytes()
    chunks = []
    with open(index, "rb") as f:
        stream = _Bounded(gzip.GzipFile(fileobj=f, mode="rb"), MAX_INDEX, None)
        try:
            while chunk := stream.read(1 << 20):
                chunks.append(chunk)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"not a complete gzip file ({e or 'truncated'})") from None
    return b"".join(chunks)


def stamp_of(path: str | Path) -> int:
    # opkg-make-index compares the ctime it recorded to decide whether to re-read a package
    return int(os.stat(path).st_ctime)
