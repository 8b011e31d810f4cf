"""rpm and deb specifics: bad input, and `feed index` / `feed check` against the real tools' output."""
import shutil
import subprocess

import pytest

from conftest import copytree


def one(build, fmt, arch, glob):
    return next((build / "tmp" / "deploy" / fmt / arch).glob(glob))


def lone_feed(tmp_path, src):
    feed = tmp_path / "feed"
    feed.mkdir()
    shutil.copy(src, feed / src.name)
    return feed, feed / src.name


def flip(path, offset):
    b = bytearray(path.read_bytes())
    b[offset] ^= 0xFF
    path.write_bytes(bytes(b))


def test_broken_rpm_payload_is_found_by_the_payload_gate(cli, project, sample_build, tmp_path):
    """Stage reads the header only; the payload gate checks rpm's payload digest and release refuses."""
    feed, path = lone_feed(tmp_path, one(sample_build(1), "rpm", "core2_64", "htop-3*.rpm"))
    flip(path, len(path.read_bytes()) - 100)
    cand = cli.json("-C", project, "stage", feed)["candidate"]
    rep = cli.json("-C", project, "verify", cand, "--gate", "closure", ok=False)
    bad = [f for f in rep["findings"] if f["rule"] == "payload.problem"]
    assert len(bad) == 1 and "digest" in bad[0]["message"] and bad[0]["subject"].endswith(path.name)
    r = cli("-C", project, "release", cand, ok=False)
    assert r.exit_code == 1 and path.name in r.stderr and "digest" in r.stderr


@pytest.mark.parametrize("where,words", [("header", "not a readable rpm")])
def test_broken_rpm(cli, project, sample_build, tmp_path, where, words):
    feed, path = lone_feed(tmp_path, one(sample_build(1), "rpm", "core2_64", "htop-3*.rpm"))
    data = path.read_bytes()
    flip(path, data.find(b"\x8e\xad\xe8\x01", 100) + 200)
    r = cli("-C", project, "stage", feed, ok=False)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert any(str(path) in l and words in l for l in lines), r.stderr
    assert all(l.startswith("bindistro: ") for l in lines if l)


@pytest.mark.parametrize("field", ["Package", "Version"])
def test_deb_missing_field(cli, project, sample_build, tmp_path, field):
    src = one(sample_build(1), "deb", "core2-64", "htop_*.deb")
    work = tmp_path / "x"
    subprocess.run(["dpkg-deb", "-R", str(src), str(work)], check=True)
    ctl = work / "DEBIAN" / "control"
    ctl.write_text("".join(l + "\n" for l in ctl.read_text().splitlines() if not l.startswith(field + ":")))
    feed = tmp_path / "feed"
    feed.mkdir()
    out = feed / src.name
    # dpkg-deb refuses to build such a package, so assemble it by hand like a broken tool would
    subprocess.run(["tar", "-C", str(work / "DEBIAN"), "-czf", str(tmp_path / "control.tar.gz"), "."], check=True)
    subprocess.run(["ar", "x", str(src), "debian-binary", "data.tar.xz"], cwd=tmp_path, check=True)
    subprocess.run(["ar", "rc", str(out), "debian-binary", "control.tar.gz", "data.tar.xz"], cwd=tmp_path, check=True)
    r = cli("-C", project, "stage", feed, ok=False)
    assert r.exit_code == 1 and f"control lacks field {field}" in r.stderr and str(out) in r.stderr


def test_deb_index_matches_apt_ftparchive(cli, sample_build, tmp_path):
    feed = copytree(sample_build(1) / "tmp/deploy/deb/core2-64", tmp_path / "deb")
    theirs = (feed / "Packages").read_text()
    cli("feed", "index", feed)
    # the same stanzas, but Filename without apt-ftparchive's "./" (S3 does not fold "/./": formats/deb.py)
    strip = lambda t: {"\n".join(l.replace("Filename: ./", "Filename: ") for l in s.splitlines()
                                 if not l.startswith(("SHA1:", "SHA512:")))
                       for s in t.split("\n\n") if s.strip()}
    assert strip((feed / "Packages").read_text()) == strip(theirs)
    release = (feed / "Release").read_text()
    assert release.startswith("Label: deb\n") and "MD5Sum:" in release and "SHA256:" in release
    cli("feed", "check", feed)


def test_rpm_index_is_read_by_createrepo_c_and_dnf_metadata(cli, sample_build, tmp_path):
    feed = copytree(sample_build(1) / "tmp/deploy/rpm/core2_64", tmp_path / "rpm")
    j = cli.json("feed", "index", feed)
    assert j["format"] == "rpm" and j["read"] > 100
    import createrepo_c as cr
    md = cr.Metadata(cr.HT_KEY_HASH)
    md.locate_and_load_xml(str(feed))
    assert len(md.keys()) == j["read"]
    cli("feed", "check", feed)
    # OE's layout: one repository over tmp/deploy/rpm, made by createrepo_c itself
    assert cli.json("feed", "check", sample_build(1) / "tmp/deploy/rpm")["ok"]


@pytest.mark.parametrize("fmt,sub,index", [("deb", "core2-64", "Release"), ("rpm", "core2_64", "repodata/repomd.xml")])
def test_unchanged_feed_is_not_read_again(cli, sample_build, tmp_path, fmt, sub, index):
    """`feed index` keeps each file's stamp and the index's own: a second run over a feed nobody
    touched reads and writes nothing; one file touched (its ctime) and the feed is indexed again,
    to the same index."""
    import os
    feed = copytree(sample_build(1) / f"tmp/deploy/{fmt}/{sub}", tmp_path / fmt)
    first = cli.json("feed", "index", feed)
    assert first["read"] > 100
    made = {p: p.read_bytes() for p in feed.rglob("*") if p.is_file() and p.suffix != f".{fmt}"}
    again = cli.json("feed", "index", feed)
    assert (again["read"], again["reused"], again["written"]) == (0, first["read"] + first["reused"], []), (first, again)
    if fmt == "deb":    # any index file rewritten by another tool (here Packages.gz alone): made again
        (feed / "Packages.gz").write_bytes((feed / "Packages.gz").read_bytes())
        assert cli.json("feed", "index", feed)["written"]
    os.chmod(next(feed.glob(f"*.{fmt}")), 0o644)         # a new ctime: that file may differ now
    third = cli.json("feed", "index", feed)
    # deb takes the other entries from its old index (its stanzas re-render byte for byte); rpm's
    # index holds no control data, so every file is read again
    assert third["read"] == (1 if fmt == "deb" else first["read"]) and third["written"]
    if fmt == "deb":
        assert (feed / "Packages").read_bytes() == made[feed / "Packages"]
    else:       # the same primary data: the same content-named file
        assert sorted(p.name for p in (feed / "repodata").glob("*primary*")) == \
            sorted(p.name for p in made if p.parent.name == "repodata" and "primary" in p.name)
