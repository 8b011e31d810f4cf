"""Fuzzing the parsers of untrusted input: whatever the bytes, each parser answers with its result or
its one error type, never another exception."""
from __future__ import annotations

import gzip
import io
import lzma
import tarfile
from pathlib import Path

import pytest
import yaml
import zstandard
from hypothesis import HealthCheck, example, given, settings, strategies as st

import hostile as H
from conftest import need_realdata
from bindistro import spec as specmod
from bindistro.errors import SpecError
from bindistro.formats import get as get_format
from bindistro.formats.base import MAX_CONTROL_TAR, PackageError, index_entries, quick_control
from bindistro.formats.control import parse_control

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

field_names = st.sampled_from(["Package", "Version", "Architecture", "Depends", "Size", "Filename", "MD5Sum",
                               "SHA256sum", "Description", "X"])
field_values = st.text(st.characters(codec="utf-8"), max_size=40)
stanza = st.lists(st.tuples(field_names, field_values), max_size=8).map(
    lambda kv: "".join(f"{k}: {v}\n" for k, v in kv))


@FAST
@given(st.one_of(st.binary(max_size=400), stanza.map(str.encode)))
def test_control_parser(data):
    try:
        fields = parse_control(data)
    except PackageError:
        return
    assert isinstance(fields, dict)


@FAST
@given(st.lists(stanza, max_size=5).map("\n".join), st.booleans(), st.binary(max_size=60))
@example("Package: \n\x00\nPackage: \n", False, b"")      # apt lists a key it cannot look up (found by this test)
def test_index_reader(tmp_path_factory, text, compress, noise):
    feed = tmp_path_factory.mktemp("feed")
    data = text.encode() + noise
    if compress:
        (feed / "Packages.gz").write_bytes(gzip.compress(data)[: len(data) % 7 + 20 if noise[:1] == b"\0" else None])
    else:
        (feed / "Packages").write_bytes(data)
    entries, problems = index_entries(get_format("ipk"), feed)     # problems, never an exception
    assert isinstance(entries, dict) and isinstance(problems, list)


@FAST
@given(st.binary(max_size=300), st.sampled_from(["control.tar.gz", "data.tar.gz", "data.tar.zst", "data.tar.xz"]))
def test_package_reader(tmp_path_factory, junk, member):
    d = tmp_path_factory.mktemp("pkg")
    for i, data in enumerate([junk, H.ar([("debian-binary", b"2.0\n"), (member, junk)]),
                              H.ipk(control_tar=junk), H.ipk(data_tar=junk)]):
        p = d / f"p{i}.ipk"
        p.write_bytes(data)
        for fmt in ("ipk", "deb"):
            try:
                get_format(fmt).read(p)
            except PackageError:
                pass


def _outcome(fmt, path: Path, data: bytes | None):
    try:
        info = fmt.read_control(path, path.name, data)
    except PackageError as e:
        return "error", e.problems
    return "read", info.name, info.version, info.arch, info.fields


TAR_FORMATS = {"gnu": tarfile.GNU_FORMAT, "ustar": tarfile.USTAR_FORMAT, "pax": tarfile.PAX_FORMAT}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(TAR_FORMATS)), st.lists(st.sampled_from(["dir", "control", "postinst", "control"]), max_size=4),
       st.lists(st.tuples(st.integers(0, 2047), st.integers(0, 255)), max_size=3), st.integers(0, 2048),
       st.lists(st.tuples(st.integers(0, 140), st.integers(0, 255)), max_size=2), st.booleans(),
       st.sampled_from(["ipk/gz", "deb/gz", "deb/zst", "ipk/zst+junk", "deb/zst*2", "deb/xz", "deb/xz*2"]))
@example("gnu", ["dir", "control"], [], 0, [(24, ord("x"))], False, "ipk/gz")     # an ar member's date is not a number
@example("gnu", ["control"], [(156, ord("5"))], 0, [], True, "ipk/gz")            # a directory with a size
@example("ustar", ["control"], [(345, ord("a"))], 0, [], True, "deb/zst")         # a ustar name prefix
@example("gnu", ["dir", "control"], [(156, ord("0"))], 0, [], True, "ipk/gz")     # "./" as a file
def test_quick_control_reader_agrees_with_the_general_one(tmp_path_factory, form, members, tar_edits, cut, ar_edits,
                                                          resum, kind):
    """Stage reads a new package's control data from its bytes by a quick path (formats/base.py
    quick_control) that takes only the usual shape: whatever the bytes, an ipk read that way gives
    the result or the problems of python-debian's ArFile and tarfile (the path a file takes).
    `kind`: the reader and the control.tar's compression (zstd: with bytes after its frame, or two
    frames, which the general reader stops before)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=TAR_FORMATS[form]) as tf:
        for m in members:
            ti = tarfile.TarInfo("./" if m == "dir" else f"./{m}")
            body = H.control(version=f"1.{len(m)}") if m == "control" else b"#!/bin/sh\n"
            if m == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                ti.size = len(body)
                tf.addfile(ti, io.BytesIO(body))
    raw = bytearray(buf.getvalue())
    for at, b in tar_edits:
        if at < len(raw):
            raw[at] = b
            if resum:       # the edited block's checksum made right again, so that more than it is read
                k = at - at % 512
                raw[k + 148:k + 156] = b" " * 8
                raw[k + 148:k + 156] = b"%06o\0 " % sum(raw[k:k + 512])
    reader, comp = kind.split("/")
    body = bytes(raw[:cut or None])
    if comp == "gz":
        packed = gzip.compress(body, mtime=0)
    elif comp.startswith("xz"):
        packed = lzma.compress(body) * (2 if comp.endswith("*2") else 1)
    else:
        packed = zstandard.ZstdCompressor().compress(body)
        packed += b"junk" if comp.endswith("+junk") else packed if comp.endswith("*2") else b""
    pkg = bytearray(H.ar([("debian-binary", b"2.0\n"), (f"control.tar.{comp.split('+')[0].split('*')[0]}", packed),
                          ("data.tar.gz", H.tar([("./usr/bin/hello", b"#!/bin/sh\n")]))]))
    for at, b in ar_edits:
        pkg[at] = b
    p = tmp_path_factory.mktemp("q") / f"p.{reader}"
    p.write_bytes(pkg)
    fmt = get_format(reader)
    assert _outcome(fmt, p, bytes(pkg)) == _outcome(fmt, p, None)


def test_quick_control_reader_reads_real_packages():
    """Every ipk of the real feeds takes the quick path and reads as the general one reads it."""
    files = sorted(need_realdata("feeds").rglob("*.ipk"))
    assert files
    ipk = get_format("ipk")
    for f in files:
        data = f.read_bytes()
        assert quick_control(data) is not None, f
        assert _outcome(ipk, f, data) == _outcome(ipk, f, None)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25)
KEYS = ["product", "machines", "formats", "publish", "keys", "boot", "security", "image_security", "tools",
        "release_name", "eol", "targets", "state_dir", "feeds"]


@FAST
@given(st.dictionaries(st.sampled_from(KEYS), json_like, max_size=6))
def test_spec_parser(tmp_path_factory, raw):
    p = tmp_path_factory.mktemp("spec") / "bindistro.yml"
    base = {"product": {"name": "x"}, "machines": {"q": {"archs": ["all"]}}}
    p.write_text(yaml.safe_dump(base | raw))
    try:
        sp = specmod.load(p)
    except SpecError as e:
        assert "\n" not in str(e).replace("\\n", "")
        return
    assert sp.product and sp.machines


@FAST
@given(st.binary(max_size=300))
def test_spec_bytes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("spec") / "bindistro.yml"
    p.write_bytes(data)
    try:
        specmod.load(Path(p))
    except SpecError:
        pass


versions = st.text(st.sampled_from("0129ab.+~-:_ "), max_size=12)


@settings(max_examples=2000, deadline=None)
@given(versions, versions)
def test_version_order_is_dpkgs(a, b):
    """ipk and deb compare versions with apt's C code where dpkg accepts both strings: the same order
    as python-debian's (dpkg's own), and the same ValueError for a string dpkg refuses."""
    from debian.debian_support import version_compare
    try:
        want = version_compare(a, b)
    except ValueError:
        for fmt in ("ipk", "deb"):
            try:
                get_format(fmt).version_cmp(a, b)
            except ValueError:
                continue
            raise AssertionError(f"{fmt}: {a!r} vs {b!r} compared, dpkg refuses one")
        return
    assert get_format("ipk").version_cmp(a, b) == get_format("deb").version_cmp(a, b) == (want > 0) - (want < 0)


@pytest.mark.parametrize("comp", ["gz", "zst", "zst-unsized", "xz"])
def test_quick_control_reader_leaves_a_control_bomb_to_the_bounded_reader(tmp_path, comp):
    """A control.tar that unpacks past its bound is not read by the quick path (for zstd, whether the
    frame declares its size or not): the general reader refuses it, naming the bound."""
    body = H.tar([("./control", H.control()), ("./big", bytes(MAX_CONTROL_TAR))], gz=False)
    packed = {"gz": lambda: gzip.compress(body, 1, mtime=0),
              "zst": lambda: zstandard.ZstdCompressor().compress(body),
              "zst-unsized": lambda: zstandard.ZstdCompressor(write_content_size=False).compress(body),
              "xz": lambda: lzma.compress(body, preset=0)}[comp]()
    pkg = H.ar([("debian-binary", b"2.0\n"), (f"control.tar.{comp.split('-')[0]}", packed),
                ("data.tar.gz", H.tar([("./usr/bin/hello", b"#!/bin/sh\n")]))])
    assert quick_control(pkg) is None
    p = tmp_path / "bomb.deb"
    p.write_bytes(pkg)
    for fmt in ("ipk", "deb"):
        with pytest.raises(PackageError, match="more than"):
            get_format(fmt).read_control(p, p.name, pkg)
