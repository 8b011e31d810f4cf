"""Publishing that devices and mirrors can trust: readable by a web server, immutable, atomic,
crash-safe, owned by one project, checkable with `fsck`."""
from __future__ import annotations

import gzip
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest

from bindistro import faults
from bindistro.cli import main
from bindistro.model import rewritten
from bindistro.publish import public_files
from conftest import copytree, link_copy
from httpserve import serve

pytestmark = pytest.mark.slow


def tree_view(pub: Path) -> dict[str, str]:
    """What a reader of the tree sees: every public path and the sha256 of its bytes."""
    return {rel: hashlib.sha256(p.read_bytes()).hexdigest() for rel, p in public_files(pub)} if pub.exists() else {}


def fsck_ok(cli, proj, *what):
    r = cli("-C", proj, "fsck", *what, "--json", ok=None)
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data["ok"], [p for p in data["problems"] if p["severity"] == "error"][:5]
    return data


def drop(proj: Path) -> None:
    """Remove a project copy, and the gpg-agent its signing started (it would outlive the home, and
    a later home at the same path would meet it: "No such file or directory")."""
    subprocess.run(["gpgconf", "--homedir", str(proj / "state" / "gnupg"), "--kill", "all"], capture_output=True)
    shutil.rmtree(proj)


def test_modes_hold_under_a_strict_umask(mini_signed, cli, tmp_path):
    proj = link_copy(mini_signed, tmp_path / "p")
    old = os.umask(0o077)
    try:
        cli("-C", proj, "release", 2)
    finally:
        os.umask(old)
    for rel, p in public_files(proj / "publish"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, rel
    fsck_ok(cli, proj)


def test_writing_the_build_prdb_after_release_changes_nothing_published(cli, project, sample_build, tmp_path):
    build = copytree(sample_build(1), tmp_path / "b1")
    cli("-C", project, "release", cli.json("-C", project, "stage", build)["candidate"])
    pub = project / "publish"
    before = tree_view(pub)
    prdb_pub = next(rel for rel in before if rel.endswith("prserv.sqlite3"))
    # what the PR server does on the next build: one more row into the build's own database
    db = sqlite3.connect(build / "cache" / "prserv.sqlite3")
    table = db.execute("select name from sqlite_master where type='table' and name like 'PRMAIN%'").fetchone()[0]
    cols = [r[1] for r in db.execute(f"pragma table_info({table})")]
    db.execute(f"insert into {table} ({', '.join(cols[:4])}) values ('new-recipe', 'x86_64', 'cafe', 7)")
    db.commit()
    db.close()
    assert tree_view(pub) == before and before[prdb_pub]
    for name, path in ((n, p) for n, p in _objects(project)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        assert os.stat(path).st_nlink == 1 or "/objects/" in str(path)   # never a link into the build dir
    assert not any(os.path.samefile(build / "cache" / "prserv.sqlite3", p) for _n, p in _objects(project))
    fsck_ok(cli, project)


def _objects(proj: Path):
    root = proj / "state" / "objects"
    return [(p.name, p) for p in root.rglob("*") if p.is_file()]


def test_publishing_into_a_tree_owned_by_another_product_is_refused(demo, cli, tmp_path, mini_build):
    other = tmp_path / "other"
    cli("-C", other, "init", "--no-boot", "--product", "someone-else")
    spec = other / "bindistro.yml"
    spec.write_text(spec.read_text().replace("dir: publish", f"dir: {demo / 'publish'}"))
    cand = cli.json("-C", other, "stage", mini_build(1))["candidate"]
    before = tree_view(demo / "publish")
    r = cli("-C", other, "release", cand, ok=False)
    assert r.exit_code == 1
    line = r.stderr.strip().splitlines()[-1]
    assert str(demo / "publish") in line and "'sample-distro'" in line and "someone-else" in line
    assert tree_view(demo / "publish") == before


def _release_in_child(proj: Path, cand: int, kill_at: int = 0, log: Path | None = None) -> int:
    """`bindistro release` in a forked process; returns its wait status."""
    return cli_in_child(proj, ["release", str(cand)], kill_at, log)


def cli_in_child(proj: Path, args: list[str], kill_at: int = 0, log: Path | None = None) -> int:
    """A bindistro command in a forked process, killed at fault point `kill_at`; its wait status."""
    pid = os.fork()
    if pid == 0:     # child: no cleanup of any kind may run after a SIGKILL, so none runs here either
        try:
            os.environ["BINDISTRO_KILL_AT"] = str(kill_at)
            if log:
                os.environ["BINDISTRO_FAULT_LOG"] = str(log)
            faults.reset()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            main.main(["-C", str(proj), *args], standalone_mode=False)
            os._exit(0)
        except BaseException:
            os._exit(3)
    return os.waitpid(pid, 0)[1]


def crash_run(signed, cli, tmp_path, part: int, parts: int) -> None:
    """Kill `release` at fault points spread over a whole run; each time the tree must read as before,
    and the next run must recover and publish. The points are shared out over `parts` tests (so
    xdist runs them side by side); part 0 also takes the first point of every kind and the last ones
    (commit, switch) and checks that every kind was hit."""
    # count the fault points of one whole release
    probe = link_copy(signed, tmp_path / "probe")
    log = tmp_path / "points.log"
    assert _release_in_child(probe, 2, 0, log) == 0
    points = [line.split() for line in log.read_text().splitlines()]
    total = len(points)
    assert total >= 30, total
    first = {}
    for n, what in points:
        first.setdefault(what, int(n))
    spread = sorted({max(1, round(i * total / 30)) for i in range(1, 31)})
    special = set(first.values()) | {int(n) for n, what in points if what in ("finished", "committed", "switch")}
    assert len(set(spread) | special) >= 30
    picks = sorted(set(spread[part::parts]) | (special if part == 0 else set()))
    before = tree_view(signed / "publish")
    kinds = set()
    for k in picks:
        proj = link_copy(signed, tmp_path / f"k{k}")
        status = _release_in_child(proj, 2, k)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (k, status)
        kinds.add(points[k - 1][1])
        assert tree_view(proj / "publish") == before, f"killed at point {k} ({points[k - 1][1]})"
        r = cli.json("-C", proj, "release", 2)
        assert r["release"] == "1.2"
        fsck_ok(cli, proj)      # store (no damaged or half object) and tree, after the recovery and the rerun
        listing = json.loads((proj / "publish" / "releases.json").read_text())
        assert [x["release"] for x in listing["releases"]] == ["1.1", "1.2"]
        drop(proj)
    if part == 0:
        assert {"clone", "file", "write", "index", "finished", "committed", "switch"} <= kinds


def test_release_killed_at_any_point_leaves_the_previous_release(small_signed, cli, tmp_path):
    crash_run(small_signed, cli, tmp_path, 0, 2)      # part 1: test_publish_crash.py


def test_two_concurrent_releases_serialize(mini_signed, cli, tmp_path):
    proj = link_copy(mini_signed, tmp_path / "p")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        statuses = pool.starmap(_release_status, [(proj, 2), (proj, 3)])
    assert statuses == [0, 0]
    rels = cli.json("-C", proj, "releases")
    assert sorted(r["candidate"] for r in rels) == [1, 2, 3]
    assert len({r["release"] for r in rels}) == 3
    fsck_ok(cli, proj)
    # a candidate is released once only
    assert cli("-C", proj, "release", 2, ok=False).exit_code == 1


def test_release_renders_only_new_stanzas_and_never_trusts_a_changed_index(mini_signed, cli, tmp_path):
    """A release copies the stanzas of files already listed from the index the last release wrote
    (when that index is still the one whose hash it recorded) and renders only its new packages':
    every ipk and deb index is the same bytes as a full rendering, release after release, and so is
    every rpm repository's XML. An index changed in the tree since (anyone with write access to it) is
    not copied from: its stanza never reaches the next index."""
    import xml.etree.ElementTree as ET

    def indexes(proj: Path) -> dict[str, bytes]:
        pub = proj / "publish"
        out = {rel: p.read_bytes() for rel, p in public_files(pub) if rel.startswith(("feeds/ipk/", "feeds/deb/"))
               and rel.endswith("/Packages")}
        for md in (pub / "feeds" / "rpm").glob("*/repodata/repomd.xml"):
            for loc in ET.parse(md).getroot().iter("{http://linux.duke.edu/metadata/repo}location"):
                out[f"{md.parent.parent.name}/{loc.get('href').split('-', 1)[1]}"] = gzip.decompress(
                    (md.parent.parent / loc.get("href")).read_bytes())
        return out

    def packages(proj: Path) -> int:
        return sum(1 for f in (proj / "publish" / "feeds").glob("*/*/*") if f.suffix in (".ipk", ".rpm", ".deb"))

    def forget(proj: Path) -> None:      # as a store that never recorded an index: a full rendering
        with sqlite3.connect(proj / "state" / "bindistro.db") as c:
            c.execute("DELETE FROM settings WHERE key LIKE 'index.%'")
    kept, full, tampered = (link_copy(mini_signed, tmp_path / n) for n in ("kept", "full", "tampered"))
    feed = tampered / "publish" / "feeds" / "ipk" / "core2-64" / "Packages"     # (a feed each release adds to)
    text = feed.read_text()
    assert "Description: mini build tool" in text
    fake = feed.with_name("Packages.new")      # replaced, not edited: the copies share their inodes
    fake.write_text(text.replace("Description: mini build tool", "Description: not what was built"))
    fake.replace(feed.resolve())
    repodata = tampered / "publish" / "feeds" / "rpm" / "core2_64" / "repodata"
    primary = next(repodata.glob("*-primary.xml.gz"))
    xml = gzip.decompress(primary.read_bytes()).decode()
    assert "<summary>mini build tool</summary>" in xml
    fake = repodata / "primary.new"
    fake.write_bytes(gzip.compress(xml.replace("mini build tool", "not what was built").encode()))
    fake.replace(primary.resolve())
    for cand in (2, 3):
        forget(full)
        if cand == 3:       # a record covering fewer releases than its index lists: what they published is read again
            with sqlite3.connect(tampered / "state" / "bindistro.db") as c:
                key = "index.feeds/ipk/core2-64"
                rec = json.loads(c.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0])
                assert rec["covers"] == [1, 2]
                c.execute("UPDATE settings SET value = ? WHERE key = ?", (json.dumps(dict(rec, covers=[1])), key))
        before = packages(kept)
        made = {proj.name: cli.json("-C", proj, "release", cand)["index_stanzas"] for proj in (kept, full, tampered)}
        # only the new packages are rendered, in every format's feeds (rpm's chunks too)
        assert made["kept"]["rendered"] == packages(kept) - before, made
        assert indexes(kept) == indexes(full) == indexes(tampered)
        assert made["full"]["kept"] == 0 and made["kept"]["kept"] > 0 and made["kept"]["rendered"] > 0, made
        # the feeds' older packages are listed from their indexes alone: none is read from the store
        assert made["kept"]["history_read"] == 0 < made["full"]["history_read"], made
        assert made["full"]["kept"] + made["full"]["rendered"] == made["kept"]["kept"] + made["kept"]["rendered"]
        if cand == 2:       # its changed index rendered in full, the others copied from
            assert 0 < made["tampered"]["kept"] < made["kept"]["kept"], made
        else:
            assert 0 < made["tampered"]["history_read"] < made["full"]["history_read"], made
    assert not [k for k, v in indexes(tampered).items() if b"not what was built" in v]
    with sqlite3.connect(kept / "state" / "bindistro.db") as c:
        recorded = dict(c.execute("SELECT key, value FROM settings WHERE key LIKE 'index.feeds/%'"))
    assert {k.split("/")[1] for k in recorded} == {"ipk", "rpm", "deb"}
    assert all(json.loads(v)["sha256"] == hashlib.sha256(
        (kept / "publish" / k.removeprefix("index.") / ("repodata/repomd.xml" if "/rpm/" in k else "Packages")).read_bytes()
    ).hexdigest() for k, v in recorded.items())
    for proj in (kept, full, tampered):
        drop(proj)


def _release_status(proj, cand):
    return _release_in_child(proj, cand)


def _probe_deploy(out: Path, k: int) -> Path:
    """A deploy dir holding one new package per format (`publish-probe-0` 1.k), as a build would."""
    from bindistro_sample.churn import write_churn
    return write_churn(out, k, 1, prefix="publish-probe")


OBSERVER = r"""
import gzip, http.client, subprocess, sys, time, xml.etree.ElementTree as ET
host, port, keyring, feeds, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(), sys.argv[5]
conn = http.client.HTTPConnection(host, port, timeout=10)
import os, tempfile
def get(path, head=False):
    conn.request("HEAD" if head else "GET", path)
    r = conn.getresponse(); body = r.read()
    return r.status, body
def verify(data, sig):
    with tempfile.NamedTemporaryFile() as d, tempfile.NamedTemporaryFile() as s:
        d.write(data); d.flush(); s.write(sig); s.flush()
        return subprocess.run(["gpgv", "--keyring", keyring, s.name, d.name], capture_output=True).returncode == 0
def listed(fmt, feed, index):
    if fmt in ("ipk", "deb"):
        return [l.split(": ", 1)[1].removeprefix("./") for l in index.decode().splitlines() if l.startswith("Filename: ")]
    root = ET.fromstring(index)
    ns = {"r": "http://linux.duke.edu/metadata/repo"}
    href = next(d.find("r:location", ns).get("href") for d in root.findall("r:data", ns) if d.get("type") == "primary")
    st, prim = get(f"/{feed}/{href}")
    if st != 200:
        return [href + " (missing)"]
    px = ET.fromstring(gzip.decompress(prim))
    return [href] + [p.find("{http://linux.duke.edu/metadata/common}location").get("href") for p in px]
pairs = straddled = failures = 0
msgs = []
while not os.path.exists(stop) or pairs == 0:
    for feed in feeds:
        fmt = feed.split("/")[1]
        idx, sig = {"ipk": ("Packages", "Packages.asc"), "deb": ("Release", "Release.gpg"),
                    "rpm": ("repodata/repomd.xml", "repodata/repomd.xml.asc")}[fmt]
        _, gen1 = get("/releases.json")
        s1, data = get(f"/{feed}/{idx}")
        s2, sigdata = get(f"/{feed}/{sig}")
        _, gen2 = get("/releases.json")
        if gen1 != gen2:
            straddled += 1      # a release became visible between the two requests: the client retries
            continue
        pairs += 1
        if s1 != 200 or s2 != 200 or not verify(data, sigdata):
            failures += 1; msgs.append(f"{feed}: {idx} {s1} / {sig} {s2}: pair does not verify")
            continue
        if fmt == "deb":
            s3, inrel = get(f"/{feed}/InRelease")
            with tempfile.NamedTemporaryFile() as f:
                f.write(inrel); f.flush()
                if subprocess.run(["gpgv", "--keyring", keyring, f.name], capture_output=True).returncode:
                    _, gen3 = get("/releases.json")
                    if gen3 == gen1:
                        failures += 1; msgs.append(f"{feed}: InRelease does not verify")
            data = get(f"/{feed}/Packages")[1]
        for rel in listed(fmt, feed, data):
            if get(f"/{feed}/{rel}", head=True)[0] != 200:
                failures += 1; msgs.append(f"{feed}: {rel} listed but not served")
print(pairs, straddled, failures)
print("\n".join(msgs[:20]))
"""


def test_observer_never_sees_an_index_without_its_signature(mini_signed, cli, tmp_path):
    """An HTTP client reading every feed's index and signature while ten releases are published
    (on mini builds: every feed of both machines, few packages, so the releases come fast) never
    gets a pair that does not verify, nor an index listing a file it cannot fetch."""
    proj = link_copy(mini_signed, tmp_path / "p")
    pub = proj / "publish"
    deploys = [_probe_deploy(tmp_path / f"d{k}", k) for k in range(1, 11)]
    fpr = cli.json("-C", proj, "keys", "list")[0]["fingerprint"]
    keyring = tmp_path / "trusted.gpg"
    exported = subprocess.run(["gpg", "--homedir", str(proj / "state" / "gnupg"), "--export", fpr],
                              capture_output=True, check=True).stdout
    keyring.write_bytes(exported)
    os.chmod(tmp_path, 0o755)
    feeds = sorted(f"feeds/{f}/{a.name}" for f in ("ipk", "rpm", "deb") for a in (pub / "feeds" / f).iterdir())
    stop = tmp_path / "stop"
    with serve(pub, user=None) as url:
        host, port = url.removeprefix("http://").split(":")
        obs = subprocess.Popen(["/usr/bin/python3", "-c", OBSERVER, host, port, str(keyring), " ".join(feeds), str(stop)],
                               stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        for d in deploys:
            c = cli.json("-C", proj, "stage", d)["candidate"]
            cli("-C", proj, "verify", c, "--gate", "logs")
            cli("-C", proj, "release", c)
        stop.touch()
        out, _ = obs.communicate(timeout=300)
        pairs, straddled, failures = map(int, out.splitlines()[0].split())
        assert failures == 0, out
        assert pairs >= 10 * len(feeds) // 2, out
        print(f"observer: {pairs} index/signature pairs verified, {straddled} straddled a switch, {failures} failures")
        # real package managers install the newest probe from the final tree, over HTTP
        _install_everywhere(cli, proj, url, tmp_path)
    fsck_ok(cli, proj)
    assert len(json.loads((pub / "releases.json").read_text())["releases"]) == 11


def _install_everywhere(cli, proj, url, tmp_path, version="1.10", formats=("rpm", "deb", "ipk")):
    from bindistro.pm import AptRoot, DnfRoot
    dev = tmp_path / "dev"
    for fmt in ("rpm", "deb"):
        cli("-C", proj, "device-config", "--machine", "qemux86-64", "--format", fmt, "--url", url, dev)
    if "rpm" in formats:
        repo = (dev / "etc/yum.repos.d/sample-distro.repo").read_text().replace("file:///etc/pki", f"file://{dev}/etc/pki")
        dnf = DnfRoot(tmp_path / "dnf", [], ["qemux86_64", "core2_64", "noarch"], repo_text=repo)
        dnf.dnf("install", "publish-probe-0")
        assert dnf.installed().get("publish-probe-0", "").startswith(version)
    if "deb" in formats:
        src = (dev / "etc/apt/sources.list.d/sample-distro.sources").read_text().replace(
            "Signed-By: /usr/share", f"Signed-By: {dev}/usr/share")
        apt = AptRoot(tmp_path / "apt", [], sources_text=src)
        apt.apt_get("update")
        apt.apt_get("install", "publish-probe-0")
        assert apt.installed().get("publish-probe-0", "").startswith(version)
    if "ipk" not in formats:
        return
    from test_opkg import device_root, installed, opkg
    root = device_root(cli, proj, url, tmp_path / "opkg-root")
    opkg(root, "update")
    opkg(root, "install", "publish-probe-0")
    assert installed(root)["publish-probe-0"].startswith(version)


def test_fsck_finds_damage_and_repair_restores_only_published_files(demo, cli, tmp_path):
    proj = link_copy(demo, tmp_path / "p")
    pub = proj / "publish"
    before = tree_view(pub)
    pkg = next((pub / "feeds" / "ipk" / "core2-64").glob("busybox_*.ipk"))
    pkg_real = pkg.resolve()
    pkg_real.unlink()
    pkg_real.write_bytes(b"damaged")          # a new inode: the fixture's file stays as it was
    img = next(p for rel, p in public_files(pub) if rel.startswith("images/"))
    img.resolve().unlink()
    sig = pub / "feeds" / "ipk" / "all" / "Packages.asc"
    sig_real = sig.resolve()
    data = sig_real.read_bytes()
    sig_real.unlink()
    sig_real.write_bytes(data.replace(b"\n=", b"\n=A", 1))
    r = cli("-C", proj, "fsck", "--publish", ok=False)
    assert r.exit_code == 1
    lines = [l for l in r.stderr.splitlines() if l.startswith("bindistro: error")]
    assert any(str(pkg) in l and "sha256" in l.lower() or str(pkg) in l and "size" in l for l in lines), lines
    assert any(img.name in l and "missing" in l for l in lines), lines
    assert any("Packages.asc" in l for l in lines), lines
    r = cli("-C", proj, "fsck", "--publish", "--repair", ok=False)
    # the package and the image come back from the store; a bad signature is not the store's to repair
    after = tree_view(pub)
    assert after[str(pkg.relative_to(pub))] == before[str(pkg.relative_to(pub))]
    assert after[str(img.relative_to(pub))] == before[str(img.relative_to(pub))]
    left = [l for l in cli("-C", proj, "fsck", "--publish", ok=False).stderr.splitlines() if "error" in l]
    assert len(left) == 1 and "Packages.asc" in left[0], left
    # the store: a damaged object is reported, naming it
    name, obj = next((n, p) for n, p in _objects(proj) if p.stat().st_size > 0)
    obj.unlink()
    obj.write_bytes(b"x")
    r = cli("-C", proj, "fsck", "--store", ok=False)
    assert r.exit_code == 1 and f"{obj}: object's content does not match its name" in r.stderr


def test_a_tree_published_before_generations_is_adopted(mini_signed, cli, tmp_path):
    proj = link_copy(mini_signed, tmp_path / "p")
    pub = proj / "publish"
    # what an earlier bindistro left: real directories at the top, no generations, no owner record
    flat = tmp_path / "flat"
    shutil.copytree(pub, flat, ignore=shutil.ignore_patterns(".bindistro"))
    drop_tree = tmp_path / "gone"
    pub.rename(drop_tree)
    flat.rename(pub)
    db = sqlite3.connect(proj / "state" / "bindistro.db")
    db.execute("delete from settings where key = 'publish.generation'")
    db.commit()
    db.close()
    before = tree_view(pub)
    cli("-C", proj, "release", 2)
    after = tree_view(pub)
    changed = {k for k, v in before.items() if after.get(k) != v}
    # only indexes, their signatures, the listings and the feed viewer were rewritten; every published file stays
    assert all(rewritten(k) for k in changed), sorted(changed)[:10]
    assert (pub / "feeds").is_symlink() and (pub / "releases.json").is_symlink()
    fsck_ok(cli, proj)
