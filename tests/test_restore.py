"""Closing the loop: restore a release into the next build; PR, hash equivalence, sstate, layers;
bundle; build driver; end of life."""
import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest

from bindistro.publish import public_files
from bindistro.yocto import prserv
from conftest import Cli, need_realdata, release_build, tree_copy


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A project with release 1 of the sample (ipk only) published."""
    cli = Cli()
    d = tmp_path_factory.mktemp("restore")
    cli("-C", d / "p", "init", "--no-boot")
    fpr = cli.json("-C", d / "p", "keys", "generate", "--algorithm", "ed25519")["fingerprint"]
    cli("-C", d / "p", "keys", "export", fpr, "--out", d / "distro.asc")
    # nothing released yet: restore writes the feed settings, so the first images carry feeds and key
    assert "no release yet" in cli("-C", d / "p", "restore", d / "b1").stdout
    cli("sample-build", d / "b1", "--release", 1, "--formats", "ipk")
    cli("-C", d / "p", "release", cli.json("-C", d / "p", "stage", d / "b1")["candidate"])
    return d


def prdb_findings(cli, proj, build):
    cand = cli.json("-C", proj, "stage", build)["candidate"]
    rep = cli.json("-C", proj, "verify", cand, "--gate", "prdb", ok=None)
    rep["findings"] = [f for f in rep["findings"] if f["gate"] == "prdb"]     # payload always runs too
    return cand, rep


def test_restore_from_published_tree_keeps_pr_values_rising(released, cli, tmp_path, monkeypatch):
    pub = released / "p" / "publish"
    monkeypatch.chdir(tmp_path)           # no bindistro.yml anywhere: the published tree and the distro's key
    b2 = tmp_path / "b2"
    key = released / "distro.asc"
    r = cli.json("restore", b2, "--from", pub, "--keyring", key)
    assert r["release"] == "1.1" and r["prserv"]["added"] > 0 and r["hashserv_rows_added"] > 0
    assert r["signature"] == "good signature"
    local = (b2 / "conf" / "local.conf").read_text()
    assert local.count("require conf/bindistro.conf") == 1
    conf = (b2 / "conf" / "bindistro.conf").read_text()
    assert f'SSTATE_MIRRORS ?= "file://.* file://{pub}/sstate/PATH;downloadfilename=PATH"' in conf
    assert 'BB_SIGNATURE_HANDLER = "OEEquivHash"' in conf and "PACKAGE_FEED_ARCHS" in conf
    # per machine, most generic first, no other machine's arch
    assert 'PACKAGE_FEED_ARCHS:qemux86-64 = "all core2-64 qemux86_64"' in conf
    assert 'PACKAGE_FEED_ARCHS:qemuarm64 = "all cortexa57 cortexa57-virt qemuarm64"' in conf
    cli("restore", b2, "--from", pub, "--keyring", key)     # again: still one require line, nothing lowered
    assert (b2 / "conf" / "local.conf").read_text().count("require conf/bindistro.conf") == 1
    cli("sample-build", b2, "--release", 2, "--formats", "ipk")
    old = {(v, a, c): x for v, a, c, x in prserv.read_db(released / "b1" / "cache" / "prserv.sqlite3")}
    new = {(v, a, c): x for v, a, c, x in prserv.read_db(b2 / "cache" / "prserv.sqlite3")}
    assert all(new[k] >= x for k, x in old.items())
    busybox = next(f for f in (b2 / "tmp/deploy/ipk/core2-64").glob("busybox_*"))
    assert "-r0.1_" in busybox.name           # release 2 rebuilt busybox: PR rose from r0.0
    _c, rep = prdb_findings(cli, released / "p", b2)
    assert rep["summary"]["error"] == 0 and "kept, none lower" in rep["findings"][0]["message"]


def pub_copy(released, tmp_path) -> Path:
    """A copy of the published tree to tamper with."""
    return tree_copy(released / "p" / "publish", tmp_path / "pub")


def refused(cli, *args, words: str):
    r = cli(*args, ok=False)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_restore_refuses_unsigned_tampered_and_escaping_trees(released, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key = released / "distro.asc"
    build = tmp_path / "b"
    # no key to check with
    refused(cli, "restore", build, "--from", released / "p" / "publish", words="no key to check its signature")
    # a manifest changed after signing
    bad = pub_copy(released, tmp_path / "t1")
    m = bad / "releases" / "1.1" / "manifest.json"
    text = m.read_text()
    m.unlink()
    m.write_text(text.replace('"sequence": 1', '"sequence": 1, "x": 1'))
    refused(cli, "restore", build, "--from", bad, "--keyring", key, words="BAD signature")
    # unsigned
    (bad / "releases" / "1.1" / "manifest.json.asc").unlink()
    refused(cli, "restore", build, "--from", bad, "--keyring", key, words="not signed")
    # a listing that sends the manifest out of the tree
    esc = pub_copy(released, tmp_path / "t2")
    listing = json.loads((esc / "releases.json").read_text())
    listing["releases"][0]["manifest"] = "../../outside/manifest.json"
    (esc / "releases.json").unlink()
    (esc / "releases.json").write_text(json.dumps(listing))
    refused(cli, "restore", build, "--from", esc, "--keyring", key, words="points outside the published tree")
    # a file of the signed manifest replaced: used only as the manifest lists it
    swapped = pub_copy(released, tmp_path / "t3")
    prx = next(swapped.glob("releases/1.1/prserv-export.conf"))
    prx.unlink()
    prx.write_text('PRAUTO$evil-1.0-r0$core2-64$' + "a" * 64 + ' = "1"\n')
    refused(cli, "restore", build, "--from", swapped, "--keyring", key, words="does not match the release manifest")
    assert not build.exists()              # nothing was written into the build directory
    # --insecure takes an unsigned tree, and says so
    r = cli.json("restore", build, "--from", bad, "--insecure")
    assert "--insecure" in r["signature"]


def test_a_release_name_with_a_newline_is_refused(released, cli, sample_build):
    cand = cli.json("-C", released / "p", "stage", released / "b1")["candidate"]
    line = refused(cli, "-C", released / "p", "release", cand, "--name", "evil\n", words="release name")
    assert "letters, digits" in line


def test_without_restore_the_pr_gate_fails(released, cli, tmp_path):
    b2 = tmp_path / "fresh"
    cli("sample-build", b2, "--release", 2, "--formats", "ipk")
    busybox = next(f for f in (b2 / "tmp/deploy/ipk/core2-64").glob("busybox_*"))
    assert "-r0.0_" in busybox.name           # the PR server started again from 0
    _c, rep = prdb_findings(cli, released / "p", b2)
    errors = [f for f in rep["findings"] if f["severity"] == "error"]
    assert errors and "was not restored" in errors[0]["message"]


def test_pr_export_format_and_import_never_lowers(tmp_path):
    rows = [("zlib-1.3-r0", "core2-64", "a" * 64, 2), ("zlib-1.3-r0", "core2-64", "b" * 64, 3)]
    text = prserv.export(rows)
    assert f'PRAUTO$zlib-1.3-r0$core2-64${"a" * 64} = "2"' in text
    assert 'PRAUTO_zlib-1.3-r0_core2-64 = "3"' in text
    assert sorted(prserv.parse_export(text)) == sorted(rows)
    db = tmp_path / "prserv.sqlite3"
    prserv.import_rows(db, [("zlib-1.3-r0", "core2-64", "a" * 64, 5)])
    assert prserv.import_rows(db, rows) == (1, 0)
    assert dict(((v, a, c), x) for v, a, c, x in prserv.read_db(db))[("zlib-1.3-r0", "core2-64", "a" * 64)] == 5


def test_older_pr_database_layout_is_read(tmp_path):
    db = tmp_path / "old.sqlite3"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE PRMAIN_nohist (version TEXT, pkgarch TEXT, checksum TEXT, value INTEGER)")
    con.execute("INSERT INTO PRMAIN_nohist VALUES ('bash-5.0-r0', 'core2-64', 'c', 4)")
    con.commit()
    con.close()
    assert prserv.read_db(db) == [("bash-5.0-r0", "core2-64", "c", 4)]
    (tmp_path / "bad").write_text("not sqlite")
    with pytest.raises(ValueError, match="not a PR database|no PRMAIN"):
        prserv.read_db(tmp_path / "bad")


def test_sstate_mirror_stores_shared_objects_once(demo, cli):
    pub = demo / "publish"
    mans = [json.loads((pub / r["manifest"]).read_text()) for r in json.loads((pub / "releases.json").read_text())["releases"]]
    per_release = [[a for a in m["artifacts"] if a["kind"] == "sstate"] for m in mans]
    assert per_release[0] and per_release[1]
    first_paths = {a["path"] for a in per_release[0]}
    shared = [a for a in per_release[1] if a["path"] in first_paths]
    assert shared                                  # unchanged recipes reuse release 1's objects
    files = [p for p in (pub / "sstate").rglob("*") if p.is_file()]
    unique = {a["path"]: a["size"] for rel in per_release for a in rel}
    assert len(files) == len(unique)               # each object published once
    # a copy of the store's object, never the same inode: the store's objects are read-only (0444),
    # published files 0644, and nothing done to one can reach the other
    for f in files[:20]:
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
        obj = demo / "state" / "objects" / sha[:2] / sha[2:4] / sha
        assert obj.read_bytes() == f.read_bytes() and not os.path.samefile(obj, f)
    assert re.match(r"sstate/(universal/)?[0-9a-f]{2}/[0-9a-f]{2}/sstate:[^:]+:[^:]+:[^:]+:[^:]+:[^:]+:11:[0-9a-f]{64}_\w+\.tar\.zst",
                    per_release[0][0]["path"])


LAYERS_SCHEMA_RULES = """bitbake setup-schema/layers.schema.json: top level object, required "version" == "1.0", only
"version" and "sources"; each source object has only "path" (string), "contains_this_file" (bool),
"git-remote" (object with required "rev" string; only "branch", "rev", "describe" strings and "remotes",
whose entries are objects with a required "uri" string)."""


def check_layers_schema(doc: dict) -> list[str]:
    errs = []
    if set(doc) - {"version", "sources"}:
        errs.append("extra top-level keys")
    if doc.get("version") != "1.0":
        errs.append("version must be '1.0'")
    for name, src in (doc.get("sources") or {}).items():
        if not isinstance(src, dict) or set(src) - {"path", "contains_this_file", "git-remote"}:
            errs.append(f"{name}: bad keys")
            continue
        if "path" in src and not isinstance(src["path"], str):
            errs.append(f"{name}: path")
        if "contains_this_file" in src and not isinstance(src["contains_this_file"], bool):
            errs.append(f"{name}: contains_this_file")
        g = src.get("git-remote")
        if g is not None:
            if set(g) - {"branch", "rev", "describe", "remotes"} or not isinstance(g.get("rev"), str):
                errs.append(f"{name}: git-remote")
            for k in ("branch", "describe"):
                if k in g and not isinstance(g[k], str):
                    errs.append(f"{name}: {k}")
            for rn, r in (g.get("remotes") or {}).items():
                if not isinstance(r, dict) or not isinstance(r.get("uri"), str):
                    errs.append(f"{name}: remote {rn}")
    return errs


def test_bundle_setup_layers_follow_bitbake_schema(demo, cli, tmp_path):
    real = json.loads(need_realdata("layers/yp-conf-java-build/setup-layers.json").read_text())
    assert check_layers_schema(real) == []        # the rules accept what bitbake-layers writes
    out = tmp_path / "bundle"
    r = cli.json("-C", demo, "bundle", "1.2", out)
    doc = json.loads((out / "setup-layers.json").read_text())
    assert check_layers_schema(doc) == []
    assert all(re.fullmatch(r"[0-9a-f]{40}", s["git-remote"]["rev"]) for s in doc["sources"].values())
    readme = (out / "README.md").read_text()
    assert "Transition to custom builds" in readme and "Publish custom components" in readme
    assert (out / "prserv-export.conf").read_text().startswith("PRAUTO$")
    assert "PRSERV_UPSTREAM" in (out / "conf" / "custom-feed.conf").read_text()
    assert {"setup-layers.json", "kas.lock.yml", "README.md"} <= set(r["files"])
    # the user's images are preconfigured for the official feeds, as the official images are
    assert 'INHERIT += "bindistro-feeds"' in (out / "conf" / "bindistro.conf").read_text()
    assert (out / "classes" / "bindistro-feeds.bbclass").is_file()
    assert "check_signature 1" in (out / "conf/bindistro/feeds/qemuarm64/ipk/etc/opkg/sample-distro-signature.conf").read_text()
    assert (out / "conf/bindistro/feeds/qemuarm64/ipk/etc/opkg/gpg/pubring.kbx").is_file()


def test_unpinned_layers_of_real_setup_layers_are_errors(cli, project, sample_build):
    layers = need_realdata("layers/yp-conf-java-build/setup-layers.json")
    cand = cli.json("-C", project, "stage", sample_build(1), "--layers", layers)["candidate"]
    rep = cli.json("-C", project, "verify", cand, "--gate", "config", ok=False)
    errs = {f["subject"] for f in rep["findings"] if f["severity"] == "error" and "not pinned" in f["message"]}
    assert {"meta-java", "meta-openembedded", "poky"} <= errs


def stub(bindir: Path, name: str, body: str) -> None:
    bindir.mkdir(exist_ok=True)
    p = bindir / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def test_build_driver(released, cli, tmp_path, monkeypatch):
    proj = released / "p"
    r = cli.json("-C", proj, "build", "--dry-run", "--build-dir", tmp_path / "b", "core-image-minimal", "bindistro-hello")
    assert r["command"] == ["bitbake", "core-image-minimal", "bindistro-hello"]
    kas = tmp_path / "kas.yml"
    kas.write_text("header:\n  version: 14\n")
    r = cli.json("-C", proj, "build", "--dry-run", "--kas", kas, "--build-dir", tmp_path / "b")
    assert r["command"] == ["kas", "build", str(kas)]
    # real bitbake cannot run here: stand-ins show what the driver does with their exit codes
    bindir = tmp_path / "bin"
    stub(bindir, "bitbake", 'echo "NOTE: building $*"; echo "ERROR: Task do_compile failed"; exit 1\n')
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    r = cli("-C", proj, "build", "--build-dir", tmp_path / "b", ok=False)
    assert r.exit_code == 1 and "build failed (exit 1): ERROR: Task do_compile failed" in r.stderr
    log = next((tmp_path / "b" / "tmp" / "log" / "bindistro").glob("console-*.log"))
    assert "NOTE: building core-image-minimal" in log.read_text()
    assert "require conf/bindistro.conf" in (tmp_path / "b" / "conf" / "local.conf").read_text()   # restored first


def test_eol(cli, project, mini_build):
    release_build(cli, project, mini_build(1))
    pub = project / "publish"
    before = {rel: p.read_bytes() for rel, p in public_files(pub)}
    r = cli.json("-C", project, "eol")
    assert r["eol"] == dt.date.today().isoformat()
    for args in (("stage", mini_build(2)), ("release", 1), ("build", "--dry-run")):
        res = cli("-C", project, *args, ok=False)
        assert res.exit_code == 1 and "end of life" in res.stderr
    listing = json.loads((project / "publish" / "releases.json").read_text())
    assert listing["eol"] == dt.date.today().isoformat() and len(listing["releases"]) == 1
    after = {rel: p.read_bytes() for rel, p in public_files(pub)}
    # the same files; only the listings that describe the present say so
    assert after.keys() == before.keys()
    changed = {k for k in after if after[k] != before[k]}
    assert {"releases.json", "SECURITY.md", "site/index.html"} <= changed
    assert {c for c in changed if not c.startswith(("site/", "api/"))} <= {"releases.json", "SECURITY.md", ".well-known/security.txt"}
    assert "EOL" in cli("-C", project, "releases").stdout


# bitbake's hash-equivalence tables as lib/hashserv/sqlite.py defines them: (name, type, unique?)
_BB_UNIHASH = {"v2": [("method", "TEXT NOT NULL", True), ("taskhash", "TEXT NOT NULL", True), ("unihash", "TEXT NOT NULL", False)]}
_BB_UNIHASH["v3"] = _BB_UNIHASH["v2"] + [("gc_mark", "TEXT NOT NULL", False)]


def bitbake_db(path: Path, version: str) -> None:
    """A hashserv.db as a bitbake of that schema creates it (its _make_table), with one row of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = _BB_UNIHASH[version]
    fields = " ".join(f"{n} {t}," for n, t, _ in cols)
    unique = ", ".join(n for n, _, u in cols if u)
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE unihashes_{version} (id INTEGER PRIMARY KEY AUTOINCREMENT, {fields} UNIQUE({unique}))")
    con.execute(f"INSERT INTO unihashes_{version} ({', '.join(n for n, _, _ in cols)}) VALUES "
                f"({', '.join(['?'] * len(cols))})", ["TaskSigMD5", "local-task", "local-unihash", ""][:len(cols)])
    con.commit()
    con.close()


def unihash_rows(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for (t,) in con.execute("SELECT name FROM sqlite_master WHERE name LIKE 'unihashes_%'")}
    finally:
        con.close()


def test_restore_seeds_the_hashserv_schema_the_builds_bitbake_reads(released, cli, tmp_path):
    pub, key = released / "p" / "publish", released / "distro.asc"
    snapshot = unihash_rows(released / "b1" / "cache" / "hashserv.db")["unihashes_v3"]
    # 1. a build whose bitbake (found in the layers dir) still uses unihashes_v2
    layers = tmp_path / "layers"
    src = layers / "poky" / "bitbake" / "lib" / "hashserv" / "sqlite.py"
    src.parent.mkdir(parents=True)
    src.write_text('_make_table(cursor, "unihashes_v2", UNIHASH_TABLE_DEFINITION)\n')
    r = cli.json("restore", tmp_path / "old", "--from", pub, "--keyring", key, "--layers-dir", layers)
    assert r["hashserv"]["schema"] == "v2" and "unihashes_v2" in r["hashserv"]["detected"]
    assert unihash_rows(tmp_path / "old/cache/hashserv.db") == {"unihashes_v2": snapshot}
    # 2. a build dir whose database a v2 bitbake made already: its own row stays, the release's join it
    bitbake_db(tmp_path / "own/cache/hashserv.db", "v2")
    r = cli("restore", tmp_path / "own", "--from", pub, "--keyring", key)
    assert "rows added to unihashes_v2" in r.stdout
    assert unihash_rows(tmp_path / "own/cache/hashserv.db") == {"unihashes_v2": snapshot + 1}
    # 3. a v3 database stays v3; and with nothing to tell, the snapshot's own schema, said so
    bitbake_db(tmp_path / "new/cache/hashserv.db", "v3")
    assert cli.json("restore", tmp_path / "new", "--from", pub, "--keyring", key)["hashserv"]["schema"] == "v3"
    assert unihash_rows(tmp_path / "new/cache/hashserv.db") == {"unihashes_v3": snapshot + 1}
    r = cli.json("restore", tmp_path / "none", "--from", pub, "--keyring", key, "--layers-dir", tmp_path / "empty")
    assert r["hashserv"]["schema"] == "v3" and r["hashserv"]["detected"] == "the build's bitbake was not found"


@pytest.mark.slow
def test_downloads_become_a_source_mirror_when_asked(cli, tmp_path):
    """sources.downloads (off by default): stage records DL_DIR's fetched files, not its stamps; release
    publishes them once as sources/downloads/ (for every release), and restore points the next build's
    own-mirrors at them, so a source build needs no upstream that has gone away."""
    p, b = tmp_path / "p", tmp_path / "b"
    cli("-C", p, "init", "--no-boot")
    spec = p / "bindistro.yml"
    spec.write_text(spec.read_text().replace("  exceptions: {}\n", "  exceptions: {}\n  downloads: true\n"))
    assert "downloads: true" in spec.read_text()
    cli("sample-build", b, "--release", 1, "--formats", "ipk")
    assert (b / "downloads/htop-3.3.0.tar.gz.done").exists()
    cand = cli.json("-C", p, "stage", b)["candidate"]
    assert cli.json("-C", p, "show", cand)["kinds"]["downloads"] == len(list((b / "downloads").glob("*.tar.gz")))
    cli("-C", p, "verify", cand, "--gate", "closure")
    cli("-C", p, "release", cand)
    mirror = p / "publish/sources/downloads"
    assert (mirror / "htop-3.3.0.tar.gz").read_bytes() == (b / "downloads/htop-3.3.0.tar.gz").read_bytes()
    assert not list(mirror.glob("*.done"))
    r = cli.json("-C", p, "restore", tmp_path / "b2")
    conf = (tmp_path / "b2/conf/bindistro.conf").read_text()
    assert 'INHERIT += "own-mirrors"' in conf and 'SOURCE_MIRROR_URL = "http://localhost:8000/sources/downloads/"' in conf
    assert r["release"] == "1.1"
    cli("sample-build", tmp_path / "b2", "--release", 2, "--formats", "ipk")
    cand = cli.json("-C", p, "stage", tmp_path / "b2")["candidate"]
    cli("-C", p, "verify", cand, "--gate", "closure")
    cli("-C", p, "release", cand)           # unchanged tarballs: the same bytes, published once
    fsck = cli.json("-C", p, "fsck", "--publish")
    assert fsck["ok"] and fsck["checked"]["releases"] == 2
