"""Fuzzing the parsers of untrusted input: whatever the bytes, each parser answers with its result or
its one error type, never another exception."""
from __future__ import annotations

import gzip
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings, strategies as st

import hostile as H
from bindistro import spec as specmod
from bindistro.errors import SpecError
from bindistro.formats import get as get_format
from bindistro.formats.base import PackageError, index_entries
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
