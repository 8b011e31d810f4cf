"""The walking skeleton end to end: sample builds -> stage -> release -> cumulative feeds."""
import gzip
import json
from pathlib import Path

from debian import deb822

from bindistro.store.objects import hash_file


def index_of(feed_dir: Path) -> dict[str, dict]:
    with open(feed_dir / "Packages") as f:
        return {p["Filename"]: dict(p) for p in deb822.Deb822.iter_paragraphs(f, use_apt_pkg=False)}


def test_demo_every_released_package_stays_listed(demo):
    pub = demo / "publish"
    listing = json.loads((pub / "releases.json").read_text())
    assert [r["release"] for r in listing["releases"]] == ["1.1", "1.2", "1.3"]
    indexes = {d: index_of(d) for d in (pub / "feeds" / "ipk").iterdir()}
    kinds = set()
    for rel in listing["releases"]:
        manifest = json.loads((pub / rel["manifest"]).read_text())
        assert manifest["release"] == rel["release"]
        for a in manifest["artifacts"]:
            kinds.add(a["kind"])
            f = pub / a["path"]
            sha, md5, size = hash_file(f, md5=True)
            assert (sha, size) == (a["sha256"], a["size"])
            if a["kind"] != "package" or a["format"] != "ipk":
                continue
            entry = indexes[f.parent][f.name]
            assert entry["SHA256sum"] == sha and entry["MD5Sum"] == md5 and int(entry["Size"]) == size
            assert entry["Version"] == a["version"] and entry["Package"] == a["name"]
            assert entry["Architecture"] == a["arch"]
    assert {"package", "image", "buildhistory", "prdb", "hashequiv", "conf", "log"} <= kinds
    # Packages.gz says the same as Packages
    for d in indexes:
        assert gzip.decompress((d / "Packages.gz").read_bytes()) == (d / "Packages").read_bytes()
    # both versions of a package bumped in release 3 are listed
    core2 = index_of(pub / "feeds" / "ipk" / "core2-64")
    zlib = sorted(e["Version"] for e in core2.values() if e["Package"] == "libz1")
    assert len(zlib) >= 2


def test_cli_contract(cli, project, sample_build):
    b1, b2 = sample_build(1), sample_build(2)
    # the closure gate only: the contract is the commands' output and exit codes (release running
    # every gate itself when nothing was verified: test_verify.py's waiver test)
    s1 = cli.json("-C", project, "stage", b1)
    assert isinstance(s1["candidate"], int) and s1["kinds"]["package"] > 150
    cli("-C", project, "verify", s1["candidate"], "--gate", "closure")
    r1 = cli.json("-C", project, "release", s1["candidate"], "--name", "first")
    assert r1["release"] == "first"
    s2 = cli.json("-C", project, "stage", b2)
    cli("-C", project, "verify", s2["candidate"], "--gate", "closure")
    r2 = cli.json("-C", project, "release", s2["candidate"])
    assert r2["release"] == "1.2"        # default name from release_name "{version}.{n}"
    rels = cli.json("-C", project, "releases")
    assert [r["release"] for r in rels] == ["first", "1.2"]
    shown = cli.json("-C", project, "show", "first")
    assert shown["release"] == "first" and shown["artifacts"]
    cand = cli.json("-C", project, "show", str(s2["candidate"]))
    assert cand["released_as"] == ["1.2"]
    # releasing the same candidate twice, or reusing a name, is refused with exit 1
    assert cli("-C", project, "release", s2["candidate"], ok=False).exit_code == 1
    assert cli("-C", project, "release", 999, ok=False).exit_code == 1
    # unknown option: usage error, exit 2
    assert cli("-C", project, "stage", "--bogus", ok=False).exit_code == 2


def test_restaging_unchanged_files_costs_no_rehash(cli, project, sample_build):
    b = sample_build(1)
    first = cli.json("-C", project, "stage", b)
    again = cli.json("-C", project, "stage", b)
    # layers.json and the PR / hash-equivalence database snapshots are made anew each time
    assert first["hashed"] >= first["artifacts"] - 3
    # only the buildhistory bundle, which is made anew, is read again
    assert again["hashed"] <= 1 and again["hashed"] + again["hash_cache_hits"] == first["hashed"]


def test_a_manifest_is_its_json_with_a_line_per_artifact():
    """manifest.json reads back as what was written, and `diff` of two releases' manifests shows a
    line per artifact that changed."""
    import json
    from bindistro.release import manifest_bytes
    arts = [{"path": f"feeds/ipk/all/p{i}_1.0_all.ipk", "sha256": "0" * 64, "size": i, "kind": "package",
             "name": f"p{i}\u00e9\n", "version": "1.0"} for i in range(3)]
    for m in ({"release": "1.1", "verify": {"summary": {"error": 0}}, "artifacts": arts},
              {"release": "1.2", "artifacts": []}):
        data = manifest_bytes(m)
        assert json.loads(data) == m and data.endswith(b"}\n")
        lines = data.decode().splitlines()
        assert sum(1 for line in lines if line.lstrip().startswith('{"path"')) == len(m["artifacts"])
        assert all(json.loads(line.strip().rstrip(",")) in arts for line in lines if line.lstrip().startswith('{"path"'))


def test_files_a_build_no_longer_holds_are_forgotten(cli, project, tmp_path):
    """The hash cache holds what the last stage of a directory found: a build renames every file it
    rebuilds (a new version), and the cache, read whole by every stage, would grow with each."""
    import sqlite3
    from bindistro_sample.ipkbuild import write_ipk
    from bindistro_sample.packages import build_packages
    from bindistro_sample.recipes import Recipe
    feed = tmp_path / "deploy" / "ipk" / "core2-64"
    feed.mkdir(parents=True)
    for v in ("1.0", "2.0"):
        write_ipk(build_packages(Recipe("keep", v, rdepends=[], summary="kept"), "core2-64")[0], feed, 1700000000)
        if v == "1.0":
            old = write_ipk(build_packages(Recipe("churn", v, rdepends=[], summary="old"), "core2-64")[0], feed, 1700000000)
    cli("feed", "index", feed)
    cli("-C", project, "stage", tmp_path / "deploy")
    db = project / "state" / "bindistro.db"

    def remembered() -> set[str]:
        with sqlite3.connect(db) as c:
            return {r[0].rsplit("/", 1)[-1] for r in c.execute("SELECT path FROM filestat")}
    assert old.name in remembered()
    old.unlink()        # the next build: churn 1.1 instead of 1.0
    write_ipk(build_packages(Recipe("churn", "1.1", rdepends=[], summary="new"), "core2-64")[0], feed, 1700000000)
    cli("feed", "index", feed)
    again = cli.json("-C", project, "stage", tmp_path / "deploy")
    assert again["hashed"] == 1 and again["hash_cache_hits"] == 2
    assert remembered() == {p.name for p in feed.glob("*.ipk")}


def test_same_version_new_content_is_refused_and_nothing_changes(cli, project, sample_build, tmp_path):
    from conftest import copytree
    b = copytree(sample_build(1), tmp_path / "b")
    cli("-C", project, "release", cli.json("-C", project, "stage", b)["candidate"])
    pub = project / "publish"
    before = {p: p.read_bytes() for p in pub.rglob("*") if p.is_file()}
    # rebuild one package with other content under the same file name
    victim = next((b / "tmp/deploy/ipk/core2-64").glob("libz1_*.ipk"))
    from bindistro_sample.ipkbuild import write_ipk
    from bindistro_sample.packages import build_packages
    from bindistro_sample.recipes import initial
    pkg = next(p for p in build_packages(initial(1)["zlib"], "core2-64") if p.name == "libz1")
    pkg.files[-2].data += b"changed"
    victim.unlink()
    write_ipk(pkg, victim.parent, 1)
    cli("feed", "index", victim.parent)
    cand = cli.json("-C", project, "stage", b)["candidate"]
    # verify refuses it first ...
    r = cli("-C", project, "release", cand, ok=False)
    assert r.exit_code == 1 and "libz1 1.3.1-r0.0 (core2-64) has other content" in r.stderr
    # ... and with every finding waived (those of the report release made), the publish layer still
    # will not replace the file
    for f in cli.json("-C", project, "verify", cand, "--last", ok=False)["findings"]:
        if f["severity"] == "error":
            cli("-C", project, "waive", cand, f["id"], "--reason", "testing the publish guard")
    r = cli("-C", project, "release", cand, ok=False)
    assert r.exit_code == 1 and "would replace published feeds/ipk/core2-64/libz1_" in r.stderr
    after = {p: p.read_bytes() for p in pub.rglob("*") if p.is_file()}
    assert after == before
