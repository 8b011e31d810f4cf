"""Feed viewer (site/ + api/v1/), device check and deployed SBOM, on the demo tree and real package
managers' own records of what they installed; the browser test drives Debian's Chromium."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from bindistro.manifest import ManifestError, parse
from bindistro.pm.upgrade import DebRoot, IpkRoot, RpmRoot, find_opkg
from bindistro.site.api import shard
from bindistro.site.data import file_paths
from conftest import release_build, tree_copy
from httpserve import free_port

SCHEMA_OF = {"index.json": "index", "cves.json": "cves", "releases/": "release", "packages/": "package",
             "versions/": "versions", "names/": "shard", "provides/": "shard", "files/": "shard", "basenames/": "shard", "cves/": "cve"}


# --- fast: manifest formats ---------------------------------------------------------------------

def test_manifest_formats_told_by_content():
    opkg = "Package: busybox\nVersion: 1.36.1-r0.1\nStatus: install ok installed\nArchitecture: core2-64\nInstalled-Time: 1\n\n" \
           "Package: gone\nVersion: 1\nStatus: deinstall ok not-installed\n"
    m = parse(opkg)
    assert (m.kind, m.format, [(p.name, p.version) for p in m.packages]) == ("opkg-status", "ipk", [("busybox", "1.36.1-r0.1")])
    assert parse(opkg.replace("Installed-Time: 1\n", "")).kind == "dpkg-status"
    m = parse("busybox (none):1.36.1-r0.1 core2_64\nfoo 2:1.0-r0 noarch\n")
    assert m.kind == "rpm-qa" and [p.version for p in m.packages] == ["1.36.1-r0.1", "2:1.0-r0"]
    assert parse("busybox core2-64 1.36.1-r0.1\n").kind == "oe-manifest"
    assert parse("busybox 1.36.1-r0.1\n").kind == "aktualizr"
    for bad, line in (("busybox 1.0\nthis line has four words\n", 2), ("", 1), ("a b c\nd e\n", 2)):
        with pytest.raises(ManifestError, match=f"line {line}"):
            parse(bad)


def test_payload_paths_leave_out_exactly_the_directories_that_hold_something():
    # foo holds bar although foo.so and foo-2 sort between them; a member named like a dotfile keeps its dot
    members = [".", "./usr", "./usr/lib", "./usr/lib/foo", "./usr/lib/foo-2/", "./usr/lib/foo.so", "./usr/lib/foo/bar",
               "./.profile", "./var/empty/", "etc/a", "/etc/b"]
    assert file_paths(members) == ["/.profile", "/etc/a", "/etc/b", "/usr/lib/foo-2", "/usr/lib/foo.so",
                                   "/usr/lib/foo/bar", "/var/empty"]


@pytest.mark.parametrize("bad", [{"a": 1}, [["nested"]], 7, None])
def test_a_memo_with_a_value_no_details_hold_is_not_used(tmp_path, bad):
    """A memo is a cache: one whose details values are not text or lists of names (damaged) only
    costs a full build, never a page showing them or a build that stops on them."""
    import base64
    from array import array
    from bindistro.site.memo import FILE, Memo, code_key
    ids = base64.b64encode(array("I", [0, 1]).tobytes()).decode()       # (a little-endian machine)
    doc = {"code": code_key(), "docs": {}, "manifests": [], "files": ["a"], "staged": ["sha"], "width": 2, "ids": ids,
           "values": ["text", ["a", "b"]]}
    (tmp_path / FILE).write_text(json.dumps(doc))
    m = Memo.load(tmp_path, tmp_path)
    assert m.values == ["text", ("a", "b")] and (m.staged, m.ids) == (["sha"], array("I", [0, 1]))
    m.details_of(2, keep=True)
    assert (m.staged, m.ids) == (["sha"], array("I", [0, 1]))
    out_of_range = base64.b64encode(array("I", [0, 2]).tobytes()).decode()      # (values has 2)
    (tmp_path / FILE).write_text(json.dumps(doc | {"ids": out_of_range}))
    m = Memo.load(tmp_path, tmp_path)
    m.details_of(2, keep=True)
    assert (m.staged, list(m.ids)) == ([], [])
    for damaged in ({"values": doc["values"] + [bad]}, {"width": 3}, {"ids": ids[:-4]}, {"staged": [1]}):
        (tmp_path / FILE).write_text(json.dumps(doc | damaged))
        m = Memo.load(tmp_path, tmp_path)
        assert (m.values, m.staged, list(m.ids), m.files) == ([], [], [], []), damaged


def test_a_temporary_left_with_this_process_name_is_not_in_the_way(tmp_path, monkeypatch):
    """Site files are written beside and renamed, under a name of the writing process's own; a file
    of that name left by a killed run (a reused pid) is neither overwritten nor in the way, and the
    file written has its mode whatever the umask."""
    import itertools
    import os
    import stat
    from bindistro.site import Writer
    from bindistro.store import objects
    monkeypatch.setattr(objects, "_SEQ", itertools.count(7))
    (tmp_path / "site").mkdir()
    left = tmp_path / "site" / f".tmp-{os.getpid()}-7"
    left.write_bytes(b"a killed run's")
    old = os.umask(0o077)
    try:
        assert Writer(tmp_path).put("site/page.html", b"<p>page") is True
    finally:
        os.umask(old)
    assert (tmp_path / "site/page.html").read_bytes() == b"<p>page" and left.read_bytes() == b"a killed run's"
    assert stat.S_IMODE((tmp_path / "site/page.html").stat().st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == [left.name, "page.html"]


def test_templates_compiled_once_and_without_a_writable_cache(tmp_path, monkeypatch):
    from bindistro import site
    try:
        monkeypatch.setenv("BINDISTRO_CACHE", str(tmp_path / "cache"))
        site._env.cache_clear()
        html = site._env().get_template("search.html").render(product="p", latest=None, top="", root="../", index={})
        assert list((tmp_path / "cache" / "templates").iterdir())       # compiled once, kept for the next run
        site._env.cache_clear()
        assert site._env().get_template("search.html").render(product="p", latest=None, top="", root="../", index={}) == html
        (tmp_path / "file").write_text("")
        monkeypatch.setenv("BINDISTRO_CACHE", str(tmp_path / "file"))     # no cache can be made: compiled each time
        site._env.cache_clear()
        assert site._env().get_template("search.html").render(product="p", latest=None, top="", root="../", index={}) == html
    finally:
        site._env.cache_clear()

def test_device_check_refuses_an_unknown_manifest(project, cli, tmp_path):
    f = tmp_path / "odd.txt"
    f.write_text("just some words on a line\n")
    r = cli("-C", project, "device", "check", f, ok=False)
    assert r.exit_code == 1 and "odd.txt: line 1: not a line of a known manifest format" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


# --- the demo tree ------------------------------------------------------------------------------

def test_release_site_equals_a_full_rebuild(project, cli, mini_build):
    """A release makes only the documents whose inputs changed (site memo); `site build` makes every
    one again and finds nothing to write. Mini builds: libmini<n> replaces libmini<n-1> (whose
    required_by empties), `tool` moves on, `extra` is dropped and comes back. The memo of release 1
    put back before release 3 vouches only for the files it wrote that are still there."""
    import base64
    from array import array
    memo = project / "state" / "site-memo.json"
    kept = None
    for n in (1, 2, 3, 4):
        if n == 3:
            memo.write_bytes(kept)
        if n == 2:      # details rows naming values out of range
            doc = json.loads(memo.read_text())
            ids = array("I", base64.b64decode(doc["ids"]))
            ids[doc["width"] + 2] = ids[2 * doc["width"] + 3] = ids[3 * doc["width"] + 4] = 10 ** 9
            doc["ids"] = base64.b64encode(ids.tobytes()).decode()
            memo.write_text(json.dumps(doc))
        if n == 4:      # a memo of this code naming a file id out of range, its details cut short
            doc = json.loads(memo.read_text())
            doc["manifests"][0][3] = [10 ** 9]
            doc["ids"] = base64.b64encode(base64.b64decode(doc["ids"])[:-4]).decode()
            memo.write_text(json.dumps(doc))
        release_build(cli, project, mini_build(n))
        if n == 1:
            kept = memo.read_bytes()
            continue
        r = cli.json("-C", project, "site", "build")
        assert r["files_written"] == 0 and r["files_unchanged"] > 50, (n, r)
    pub = project / "publish"
    lib1 = json.loads((pub / "api/v1/packages/libmini1.json").read_text())
    assert lib1["required_by"] == [] and {v["last"] for v in lib1["versions"]} == {"1.1"}
    assert json.loads((pub / "api/v1/packages/libmini4.json").read_text())["required_by"] == ["tool"]
    extra = json.loads((pub / "api/v1/packages/extra.json").read_text())
    assert sorted((v["first"], v["last"]) for v in extra["versions"] if v["arch"] == "core2-64") == [("1.1", "1.1"), ("1.3", "1.3")]
    cli("-C", project, "fsck", "--publish")


def test_release_patches_the_path_shards_a_full_build_makes(project, cli, mini_build):
    """Each release after the first patches the last build's files/ and basenames/ shards with the
    packages whose files came or went (site/paths.py), `eol` after them keeps them; `site build`
    makes them whole and writes nothing new. Mini builds: libmini<n> replaces libmini<n-1>, `tool`
    moves on, `extra` is dropped and comes back."""
    pub = project / "publish"
    for n in (1, 2, 3, 4):
        r = release_build(cli, project, mini_build(n))
        assert r["site"]["path_shards"] == ("made" if n == 1 else "patched"), (n, r["site"])
        assert cli.json("-C", project, "site", "build")["files_written"] == 0, n
    # a new listing with no release since (eol) keeps the shards as they are: what a whole build makes
    assert cli.json("-C", project, "eol")["site"]["path_shards"] == "kept"
    assert cli.json("-C", project, "site", "build")["files_written"] == 0
    files = [json.loads(p.read_text())["entries"] for p in (pub / "api/v1/files").glob("*.json")]
    assert sum(len(e) for e in files) > 10      # (the mini builds' packages have payloads)


def test_site_build_refuses_a_manifest_entry_with_a_control_character(project, cli, mini_build):
    """The site reads the manifests of the tree it is built on; an entry no stage could have written
    (a unit separator in its path) is one line naming the manifest, not a site of garbled rows."""
    release_build(cli, project, mini_build(1))
    man = next((project / "publish" / "releases").glob("*/manifest.json")).resolve()
    doc = json.loads(man.read_text())
    entry = next(a for a in doc["artifacts"] if a["kind"] == "package")
    entry["path"] = entry["path"].replace("/", "/\x1f", 1)
    os.unlink(man)                # (a hard link shared with older generations: replace it, do not edit it)
    man.write_text(json.dumps(doc))
    r = cli("-C", project, "site", "build", ok=False)
    shown = project / "publish" / man.relative_to(man.parents[2])      # the tree's name, not a generation's
    assert r.exit_code == 1 and str(shown) in r.stderr and "control character" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def api_docs(pub: Path):
    for p in sorted((pub / "api/v1").rglob("*.json")):
        rel = str(p.relative_to(pub / "api/v1"))
        if rel.startswith("schema/"):
            continue
        kind = next(v for k, v in SCHEMA_OF.items() if rel == k or (k.endswith("/") and rel.startswith(k)))
        yield rel, kind, json.loads(p.read_text())


def test_release_publishes_site_and_api(demo, cli, tmp_path):
    pub = demo / "publish"
    schemas = {p.name.split(".")[0]: json.loads(p.read_text()) for p in (pub / "api/v1/schema").glob("*.json")}
    n = 0
    for rel, kind, doc in api_docs(pub):
        jsonschema.Draft202012Validator(schemas[kind]).validate(doc)
        n += 1
    assert n > 200
    idx = json.loads((pub / "api/v1/index.json").read_text())
    assert [r["release"] for r in idx["releases"]] == ["1.1", "1.2", "1.3"] and idx["latest"] == "1.3"
    htop = json.loads((pub / "api/v1/packages/htop.json").read_text())
    assert {v["version"] for v in htop["versions"]} == {"3.3.0-r0.0", "3.3.1-r0.0"}
    assert {v["format"] for v in htop["versions"]} == {"ipk", "rpm", "deb"}
    v = next(v for v in htop["versions"] if v["version"] == "3.3.0-r0.0" and v["format"] == "ipk" and v["arch"] == "core2-64")
    assert (v["first"], v["last"]) == ("1.1", "1.2")
    assert {w["last"] for w in htop["versions"] if w["version"] == "3.3.1-r0.0"} == {None}     # still shipped
    assert (pub / v["path"]).is_file() and htop["newest"]["ipk"]["files"] == ["/usr/bin/htop"]
    assert htop["license"] and "libc6" in htop["newest"]["ipk"]["depends"]
    r13 = json.loads((pub / "api/v1/releases/1.3.json").read_text())
    assert {"name": "htop", "format": "ipk", "arch": "core2-64", "from": "3.3.0-r0.0", "version": "3.3.1-r0.0"} in r13["changes"]["upgraded"]
    gone = [c for c in r13["changes"]["removed"] if c["name"] == "ifupdown"]
    assert gone and all(c["replaced_by"] == ["iproute2"] for c in gone)
    assert r13["cve"]["counts"]["fixed"] >= 2 and r13["images"] and (pub / r13["verify"]["report"]).is_file()
    # release 1.3 carries the build's sources and SDKs (installer + host and target manifests per machine)
    assert {s["recipe"] for s in r13["sources"]} >= {"busybox-1.36.1-r0", "bash-5.2.21-r1"}
    assert sorted((s["machine"], s["name"].rsplit("-5.0", 1)[-1]) for s in r13["sdk"]) == [
        (m, ext) for m in ("qemuarm64", "qemux86-64") for ext in (".host.manifest", ".sh", ".target.manifest")]
    assert all((pub / x["path"]).is_file() for x in r13["sdk"] + r13["sources"])
    digits = idx["shards"]["files"]
    files = json.loads((pub / f"api/v1/files/{shard('/bin/busybox', digits)}.json").read_text())["entries"]
    assert ["busybox", "ipk", "feeds/ipk/core2-64", "1.36.1-r0.0", "1.1", "1.36.1-r0.1", None] in files["/bin/busybox"]
    named = json.loads((pub / f"api/v1/basenames/{shard('busybox', idx['shards']['basenames'])}.json").read_text())["entries"]["busybox"]
    assert named["total"] == 12 and ["/bin/busybox", "busybox", "ipk", "feeds/ipk/core2-64", "1.36.1-r0.0", "1.1",
                                     "1.36.1-r0.1", None] in named["rows"]      # /bin and /usr/bin, 6 feeds
    prov = json.loads((pub / f"api/v1/provides/{shard('ifupdown', idx['shards']['provides'])}.json").read_text())["entries"]
    assert ["iproute2", "ipk"] in prov["ifupdown"]
    for page in ("index.html", "search.html", "device.html", "releases/1.3.html", "packages/htop.html",
                 "packages/index.html", "cves/CVE-2022-28391.html", "releases/1.3/verify.html", "releases/1.3/notes.md"):
        assert (pub / "site" / page).is_file(), page
    # rebuilt with nothing new (once more: other tests of this worker scan and verify the demo again):
    # not one byte differs, so the new generation shares every page's inode
    cli("-C", demo, "site", "build")
    old = (pub / "site/packages/htop.html").resolve().stat().st_ino
    r = cli.json("-C", demo, "site", "build")
    assert r["files_written"] == 0 and r["files_unchanged"] > 400
    assert (pub / "site/packages/htop.html").resolve().stat().st_ino == old
    cli("-C", demo, "fsck", "--publish")          # exit 0: the tree as a reader sees it is whole
    # a viewer that does not describe the listed releases is an error of the tree (fsck names it)
    copy = tree_copy(pub, tmp_path / "copy")
    (copy / "site" / "releases" / "1.2.html").unlink()
    r = cli("-C", demo, "fsck", "--publish", copy, "--json", ok=None)
    assert r.exit_code == 1 and "release 1.2 has no page or API document" in r.stdout


def image_manifest(pub: Path, rel: str, machine: str = "qemux86-64") -> Path:
    return next((pub / "images" / rel / machine).glob("*.manifest"))


def files_for(pub: Path, fmt: str, entries: list[tuple[str, str]], feeds: tuple[str, ...]) -> list[Path]:
    out = []
    for name, version in entries:
        doc = json.loads((pub / f"api/v1/packages/{name}.json").read_text())
        v = next(v for v in doc["versions"] if v["format"] == fmt and v["version"] == version
                 and v["feed"].rsplit("/", 1)[-1] in feeds)
        out.append(pub / v["path"])
    return out


def check(cli, demo, manifest: Path, *args) -> dict:
    r = cli("-C", demo, "device", "check", manifest, *args, "--json", ok=None)
    d = json.loads(r.stdout)
    assert r.exit_code == (0 if d["ok"] else 1), r.stderr
    return d


def test_device_check_every_manifest_format(demo, cli, tmp_path):
    """Release 1.2's x86 image installed by real opkg, dpkg and rpm; their own records name it."""
    pub = demo / "publish"
    oe = image_manifest(pub, "1.2")
    entries = [(n, v) for n, _a, v in (l.split() for l in oe.read_text().splitlines())]
    made = {"oe-manifest": oe}
    akt = tmp_path / "package.manifest"
    akt.write_text("".join(f"{n} {v}\n" for n, v in entries))
    made["aktualizr"] = akt
    ipk = IpkRoot(tmp_path / "ipk", pub / "feeds/ipk/core2-64", ["all", "core2-64", "qemux86_64"], find_opkg())
    ipk.install(files_for(pub, "ipk", entries, ("all", "core2-64", "qemux86_64")))
    made["opkg-status"] = ipk.root / "var/lib/opkg/status"
    deb = DebRoot(tmp_path / "deb", pub / "feeds/deb/core2-64")
    deb.install(files_for(pub, "deb", entries, ("all", "core2-64", "qemux86_64")))
    made["dpkg-status"] = deb.root / "var/lib/dpkg/status"
    rpm = RpmRoot(tmp_path / "rpm", pub / "feeds/rpm/core2_64", ["noarch", "core2_64", "qemux86_64"])
    rpm.install(files_for(pub, "rpm", entries, ("noarch", "core2_64", "qemux86_64")))
    qa = rpm._rpm("-qa", "--qf", "%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE} %{ARCH}\n")
    made["rpm-qa"] = tmp_path / "rpm-qa.txt"
    made["rpm-qa"].write_text(qa.stdout)
    # dpkg notes the file-less packagegroup as "disappeared" (replaced by the others' files): its record
    # lacks it, and the device still matches the release exactly
    count = {k: len(entries) for k in made} | {"dpkg-status": len(deb.installed())}
    assert count["dpkg-status"] >= len(entries) - 1
    for kind, path in made.items():
        d = check(cli, demo, path)
        assert (d["manifest"], d["release"], d["exact"], d["packages"]) == (kind, "1.2", True, count[kind]), (kind, d)
        assert [u["name"] for u in d["upgrades"]] == ["libz1"]
        assert d["ok"] == (d["open_cves"] == 0)         # (other tests of this worker may import NVD records)
    assert check(cli, demo, made["dpkg-status"])["format"] == "deb"
    assert check(cli, demo, made["oe-manifest"], "--release", "1.1")["release"] == "1.1"


def test_device_check_reports_each_difference(demo, cli, tmp_path):
    pub = demo / "publish"
    lines = image_manifest(pub, "1.3").read_text().splitlines()
    out = []
    for l in lines:
        n, a, v = l.split()
        out.append(f"{n} {a} {'1.3.1-r0.0' if n == 'libz1' else '1.36.1-r9' if n == 'busybox' else v}")
    f = tmp_path / "odd.manifest"
    f.write_text("\n".join(out + ["my-own-tool core2-64 1.0-r0"]) + "\n")
    d = check(cli, demo, f)
    assert d["release"] == "1.3" and not d["exact"] and not d["ok"]
    assert d["older"] == [{"name": "libz1", "installed": "1.3.1-r0.0", "release": "1.3.2-r0.0"}]
    assert d["newer"] == [{"name": "busybox", "installed": "1.36.1-r9", "release": "1.36.1-r0.1"}]
    assert d["foreign"] == [{"name": "my-own-tool", "installed": "1.0-r0"}]
    assert d["unpublished"] == [{"name": "busybox", "installed": "1.36.1-r9"}]
    r = cli("-C", demo, "device", "check", f, ok=False)
    assert r.exit_code == 1 and "not from this distribution: my-own-tool 1.0-r0" in r.stdout


def test_deployed_sbom_of_a_device_with_one_more_package(demo, cli, tmp_path):
    pub = demo / "publish"
    f = tmp_path / "device.manifest"
    f.write_text(image_manifest(pub, "1.2").read_text() + "htop core2-64 3.3.0-r0.0\n")
    out = tmp_path / "device.spdx.json"
    cli("-C", demo, "device", "sbom", f, "-o", out)
    doc = json.loads(out.read_text())
    sbom = next(e for e in doc["@graph"] if e["type"] == "software_Sbom")
    assert sbom["software_sbomType"] == ["deployed"]
    pkgs = {e["name"]: e for e in doc["@graph"] if e["type"] == "software_Package"}
    assert len(pkgs) == len(f.read_text().splitlines())
    htop = pkgs["htop"]
    assert "3.3.0-r0.0" in htop["software_packageUrl"] and htop["software_primaryPurpose"] == "install"
    lic = [e for e in doc["@graph"] if e.get("relationshipType") == "hasDeclaredLicense" and e["from"] == htop["spdxId"]]
    expr = next(e for e in doc["@graph"] if e.get("spdxId") == lic[0]["to"][0])
    assert expr["simplelicensing_licenseExpression"] == "GPL-2.0-only"
    assert pkgs["busybox"].get("externalIdentifier")           # CPE from the release's image SBOM
    scan = cli.json("-C", demo, "cve", "scan", "--sbom", out)
    dev = check(cli, demo, f)
    key = lambda fs: sorted((x["cve"], x["package"], x["status"]) for x in fs)   # noqa: E731
    assert key(scan["findings"]) == key(dev["cves"]) and ("CVE-2022-28391", "busybox", "fixed") in key(dev["cves"])


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def bindistro_serve(proj: Path):
    """`bindistro serve` on a free port, until the block ends."""
    port = free_port()
    p = subprocess.Popen([str(Path(sys.executable).parent / "bindistro"), "-C", str(proj), "serve", "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert f"http://127.0.0.1:{port}/site/index.html" in p.stdout.readline()
        yield f"http://127.0.0.1:{port}"
    finally:
        p.terminate()
        p.wait(5)


def test_browser_walk_search_and_device_check(demo, tmp_path):
    from playwright import sync_api          # scripts/setup.sh installs it; it drives Debian's chromium
    pub = demo / "publish"
    # screenshots are the test's artifacts: test-artifacts/site/ of the clone (or $BINDISTRO_ARTIFACTS)
    shots = Path(os.environ.get("BINDISTRO_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts")) / "site"
    shots.mkdir(parents=True, exist_ok=True)
    problems = []
    with bindistro_serve(demo) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(f"{url}/site/index.html")
        page.screenshot(path=str(shots / "home.png"), full_page=True)
        page.click("a[href='releases/1.3.html']")
        assert page.url.endswith("/site/releases/1.3.html")
        page.click("a[href$='packages/htop.html'] >> nth=0")
        assert page.url.endswith("/site/packages/htop.html")
        page.screenshot(path=str(shots / "package-htop.png"), full_page=True)
        href = page.get_attribute("a.dl >> nth=0", "href")
        got = page.request.get(page.url.rsplit("/", 1)[0] + "/" + href)
        assert got.status == 200 and got.body() == (pub / "site/packages" / href).resolve().read_bytes()

        def search(q: str) -> str:
            page.goto(f"{url}/site/search.html?q={q}")
            page.wait_for_selector("#timing")
            page.screenshot(path=str(shots / f"search-{q.strip('/').replace('/', '_')}.png"), full_page=True)
            return page.inner_text("#results")
        text = search("htop")
        assert "every version of htop (12)" in text and "3.3.0-r0.0" in text and "3.3.1-r0.0" in text
        text = search("/bin/busybox")
        assert "/bin/busybox\tbusybox\tfeeds/ipk/core2-64\t1.36.1-r0.0 (1.1)\t1.36.1-r0.1 (current)" in text
        text = search("busybox")           # a file name: every path of that name, and the package itself
        assert "files named busybox (12)" in text and "every version of busybox" in text
        assert "provides ifupdown" in search("ifupdown") and "iproute2" in search("ifupdown")
        text = search("CVE-2022-28391")
        assert all(f"{r}\tbusybox\t1.36.1\tfixed" in text for r in ("1.1", "1.2", "1.3"))
        page.goto(f"{url}/site/device.html")
        page.set_input_files("#manifest", str(image_manifest(pub, "1.2")))
        page.wait_for_selector("#verdict")
        verdict = page.inner_text("#verdict")
        page.screenshot(path=str(shots / "device-check.png"), full_page=True)
        assert "release 1.2, 1 upgrades available" in verdict, verdict
        browser.close()
    assert problems == []
