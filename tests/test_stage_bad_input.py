"""Bad input: one clear line per problem naming the file, exit 1, nothing stored."""
import io
import json
import tarfile

import pytest
import zstandard

from bindistro_sample.ipkbuild import control_text, write_ipk
from bindistro_sample.packages import build_packages
from bindistro_sample.recipes import initial


def good_pkg():
    return next(p for p in build_packages(initial(1)["zlib"], "core2-64") if p.name == "libz1")


def tar_zst(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, target in members:
            ti = tarfile.TarInfo(name)
            if kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, target
                tf.addfile(ti)
            else:
                ti.size = 3
                tf.addfile(ti, io.BytesIO(b"abc"))
    return zstandard.ZstdCompressor().compress(buf.getvalue())


def make_feed(tmp_path, defect):
    feed = tmp_path / "feed"
    feed.mkdir()
    pkg = good_pkg()
    fields = pkg.control_fields()
    data = None
    if defect == "missing-version":
        fields = [f for f in fields if f[0] != "Version"]
    elif defect == "absolute":
        data = tar_zst([("/etc/passwd", "file", None)])
    elif defect == "dotdot":
        data = tar_zst([("./usr/../../etc/x", "file", None)])
    elif defect == "symlink-outside":
        data = tar_zst([("./usr/lib/evil", "sym", "../../../../etc/shadow")])
    path = write_ipk(pkg, feed, 1, fields=fields, data=data)
    if defect == "not-ar":
        path.write_bytes(b"this is not an ar archive\n")
    if defect == "non-utf8":
        import subprocess, gzip
        raw = control_text(fields).replace("Description: ", "Description: caf\xe9 ").encode("latin-1")
        ti_buf = io.BytesIO()
        with tarfile.open(fileobj=ti_buf, mode="w") as tf:
            ti = tarfile.TarInfo("./control")
            ti.size = len(raw)
            tf.addfile(ti, io.BytesIO(raw))
        (feed / "control.tar.gz").write_bytes(gzip.compress(ti_buf.getvalue()))
        subprocess.run(["ar", "r", str(path), "control.tar.gz"], cwd=feed, check=True)
        (feed / "control.tar.gz").unlink()
    return feed, path


@pytest.mark.parametrize("defect,words", [
    ("absolute", "absolute path"),
    ("dotdot", "contains '..'"),
    ("symlink-outside", "points outside the package"),
])
def test_bad_payload_is_refused_at_release(cli, project, tmp_path, defect, words):
    """Stage reads control data only (at hashing speed); the payload gate, which always runs, finds
    the member and release refuses the candidate, whatever gates were asked for."""
    feed, path = make_feed(tmp_path, defect)
    cand = cli.json("-C", project, "stage", feed)["candidate"]
    rep = cli.json("-C", project, "verify", cand, "--gate", "closure", ok=False)
    bad = [f for f in rep["findings"] if f["gate"] == "payload" and f["severity"] == "error"]
    assert bad and all(words in f["message"] and f["subject"].endswith(path.name) for f in bad), rep["findings"]
    assert bad[0]["rule"] == "payload.problem"
    r = cli("-C", project, "release", cand, ok=False)
    assert r.exit_code == 1
    lines = [l for l in r.stderr.splitlines() if l]
    assert any(path.name in l and words in l for l in lines), r.stderr
    assert all(l.startswith("bindistro: ") for l in lines)
    assert cli.json("-C", project, "releases") == []
    assert not (project / "publish" / "releases.json").exists()


@pytest.mark.parametrize("defect,words", [
    ("not-ar", "not an ar archive"),
    ("missing-version", "control lacks field Version"),
    ("non-utf8", "not UTF-8"),
])
def test_bad_package(cli, project, tmp_path, defect, words):
    feed, path = make_feed(tmp_path, defect)
    r = cli("-C", project, "stage", feed, ok=False)
    assert r.exit_code == 1
    lines = [l for l in r.stderr.splitlines() if l]
    assert any(str(path) in l and words in l for l in lines), r.stderr
    assert all(l.startswith("bindistro: ") for l in lines)
    assert cli.json("-C", project, "releases") == []
    assert not list((project / "state" / "objects").rglob("*")) if (project / "state" / "objects").exists() else True


@pytest.mark.parametrize("defect,words", [
    ("entry-without-file", "file is missing"),
    ("file-without-entry", "not listed in any index"),
    ("size", "differs from the index"),
    ("checksum", "SHA256 differs from the index"),
])
def test_feed_disagrees_with_index(cli, project, tmp_path, defect, words):
    feed, path = make_feed(tmp_path, "none")
    cli("feed", "index", feed)
    text = (feed / "Packages").read_text()
    if defect == "entry-without-file":
        (feed / "Packages").write_text(text + text.replace(path.name, "ghost_1.0-r0_core2-64.ipk")
                                       .replace("Package: libz1", "Package: ghost"))
    elif defect == "file-without-entry":
        other = next(p for p in build_packages(initial(1)["xz"], "core2-64") if p.name == "liblzma5")
        path = write_ipk(other, feed, 1)
    elif defect == "size":
        import re
        (feed / "Packages").write_text(re.sub(r"Size: \d+", "Size: 1", text))
    elif defect == "checksum":
        import re
        (feed / "Packages").write_text(re.sub(r"SHA256sum: \w+", "SHA256sum: " + "0" * 64, text))
    r = cli("-C", project, "stage", feed, ok=False)
    assert r.exit_code == 1
    assert any(words in l for l in r.stderr.splitlines()), r.stderr
    assert cli.json("-C", project, "show", "1", ok=False) == {"error": "1: no such candidate id or release name", "problems": []}


def test_stage_of_a_directory_with_nothing(cli, project, tmp_path):
    (tmp_path / "empty").mkdir()
    r = cli("-C", project, "stage", tmp_path / "empty", ok=False)
    assert r.exit_code == 1 and str(tmp_path / "empty") in r.stderr
    r = cli("-C", project, "stage", tmp_path / "nope", ok=False)
    assert r.exit_code == 1 and "not a directory" in r.stderr


def test_extraction_never_leaves_its_directory(tmp_path):
    """A package holding `lnk -> /outside` and then `lnk/pwned` (and `./.profile`, `../escape`):
    extraction (the abi gate unpacks packages) writes only inside its target."""
    import io
    import tarfile

    import zstandard

    from bindistro.formats.ipk import Ipk
    from bindistro_sample.ipkbuild import write_ipk
    from bindistro_sample.packages import build_packages
    from bindistro_sample.recipes import Recipe
    outside = tmp_path / "outside"
    outside.mkdir()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        def add(name, data=b"", link=None):
            ti = tarfile.TarInfo(name)
            if link is not None:
                ti.type, ti.linkname = tarfile.SYMTYPE, link
            else:
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if link is None else None)
        add("./lnk", link=str(outside))
        add("./lnk/pwned", b"owned\n")
        add("./.profile", b"export X=1\n")
        add("../escape", b"x")
        add("./usr/lib/abs", link="/etc/passwd")
        add("./usr/lib/abs", b"through the link\n")     # a file over an earlier symlink: the link goes, not its target
    pkg = build_packages(Recipe("evil", "1.0"), "core2-64")[0]
    ipk = write_ipk(pkg, tmp_path, 1, data=zstandard.ZstdCompressor().compress(raw.getvalue()))
    dest = tmp_path / "x"
    dest.mkdir()
    Ipk().extract(ipk, dest)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escape").exists()
    assert (dest / ".profile").read_text() == "export X=1\n"
    assert (dest / "usr/lib/abs").read_text() == "through the link\n" and not (dest / "usr/lib/abs").is_symlink()


@pytest.mark.parametrize("defect,words", [
    ("newline-in-file-name", "file name holds a control character"),
    ("architecture-escapes", "package architecture '../../evil' is not valid"),
    ("nul-in-field", "control field Section holds a control character"),
])
def test_names_that_would_reach_an_index_or_a_path(cli, project, tmp_path, defect, words):
    feed = tmp_path / "feed"
    feed.mkdir()
    pkg = good_pkg()
    fields = pkg.control_fields()
    if defect == "architecture-escapes":
        fields = [(k, "../../evil" if k == "Architecture" else v) for k, v in fields]
    if defect == "nul-in-field":
        fields = [(k, v + "\x00x" if k == "Section" else v) for k, v in fields]
    path = write_ipk(pkg, feed, 1, fields=fields)
    if defect == "newline-in-file-name":
        path = path.rename(feed / "x\nPackage: injected\nDepends: evil\n.ipk")
    r = cli("-C", project, "stage", feed, ok=False)
    lines = [l for l in r.stderr.splitlines() if l]
    assert r.exit_code == 1 and any(words in l for l in lines), r.stderr
    assert "Traceback" not in r.stderr and all(l.startswith("bindistro: ") for l in lines)
    assert not (project / "state" / "objects").exists() or not any((project / "state" / "objects").rglob("*"))


def test_release_runs_the_payload_gate_on_a_report_made_without_it(cli, project, tmp_path):
    """A report from before the payload gate was mandatory (its gates lack it): release runs the
    gate, adds its findings to the report and refuses the hostile package."""
    import sqlite3
    feed, path = make_feed(tmp_path, "absolute")
    cand = cli.json("-C", project, "stage", feed)["candidate"]
    cli.json("-C", project, "verify", cand, "--gate", "closure", ok=False)
    db = sqlite3.connect(project / "state" / "bindistro.db")
    gates, findings = db.execute("select gates, findings from reports where candidate = ?", (cand,)).fetchone()
    old = [f for f in json.loads(findings) if f["gate"] != "payload"]
    db.execute("update reports set gates = ?, findings = ? where candidate = ?", (json.dumps(["closure"]), json.dumps(old), cand))
    db.commit()
    db.close()
    r = cli("-C", project, "release", cand, ok=False)
    assert r.exit_code == 1 and "absolute path" in r.stderr and path.name in r.stderr
    rep = cli.json("-C", project, "verify", cand, "--last", ok=None)
    assert "payload" in rep["gates"] and "closure" in rep["gates"]


def test_bad_package_among_many_is_refused(project, tmp_path):
    """Stage in worker processes (BINDISTRO_WORKERS: 81 small files are otherwise read in-process):
    the one bad package is found by a worker, and its good neighbours, read and copied meanwhile,
    are not stored."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    from bindistro_sample.recipes import Recipe
    feed = tmp_path / "many"
    feed.mkdir()
    for i in range(80):
        r = Recipe(f"many{i:03d}", "1.0", rdepends=[], summary=f"package {i}")
        write_ipk(build_packages(r, "core2-64")[0], feed, 1700000000)
    (feed / "zz-broken_1.0_core2-64.ipk").write_bytes(b"!<arch>\nnot a package")
    bindistro = Path(sys.executable).with_name("bindistro")
    r = subprocess.run([bindistro, "-C", project, "stage", feed], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, BINDISTRO_WORKERS="2"))
    assert r.returncode == 1 and "zz-broken_1.0_core2-64.ipk" in r.stderr and "Traceback" not in r.stderr, r.stderr
    objects = project / "state" / "objects"
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))


def test_bad_worker_count_is_one_line(cli, project, tmp_path, monkeypatch):
    """BINDISTRO_WORKERS that is not a number of processes: one line naming it, nothing stored."""
    feed, _ = make_feed(tmp_path, None)
    monkeypatch.setenv("BINDISTRO_WORKERS", "lots")
    r = cli("-C", project, "stage", feed, ok=False)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and "BINDISTRO_WORKERS='lots'" in lines[0], r.stderr
    objects = project / "state" / "objects"
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))


def test_many_packages_staged_in_workers_while_the_disk_writes_them(cli, project, tmp_path, monkeypatch):
    """Stage's workers read the files while a thread of stage has the disk write the copies made so
    far (from WRITE_BACK_FROM bytes to copy; 0 here): that thread starts once the workers are
    forked (a fork would copy the locks it holds into the child), and every package is stored as
    its bytes."""
    import hashlib
    import os
    import threading
    import bindistro.stage as stage
    import bindistro.store.objects as objects_mod
    from bindistro_sample.recipes import Recipe
    feed = tmp_path / "many"
    feed.mkdir()
    for i in range(40):
        r = Recipe(f"many{i:03d}", "1.0", rdepends=[], summary=f"package {i}")
        write_ipk(build_packages(r, "core2-64")[0], feed, 1700000000)
    monkeypatch.setenv("BINDISTRO_WORKERS", "2")
    monkeypatch.setattr(stage, "WRITE_BACK_FROM", 0)
    syncs, real_sync = [], objects_mod.sync_fs
    monkeypatch.setattr(objects_mod, "sync_fs", lambda p: (syncs.append(threading.current_thread().name), real_sync(p)))
    monkeypatch.setattr(objects_mod, "WRITE_BACK_EVERY", 0.001)     # (a stage of 40 files is quick)
    before, at_fork = threading.active_count(), []
    os.register_at_fork(before=lambda: at_fork.append(threading.active_count()))
    out = cli.json("-C", project, "stage", feed)
    assert out["artifacts"] == 40
    assert len(at_fork) == 2 and set(at_fork) == {before}, (before, at_fork)
    assert "writeback" in syncs
    stored = [p for p in (project / "state" / "objects").rglob("*") if p.is_file()]
    assert len(stored) == 40 and all(hashlib.sha256(p.read_bytes()).hexdigest() == p.name for p in stored)
