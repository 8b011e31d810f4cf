"""A hostile corpus: every input an attacker (or a broken disk, or a confused user) could hand a command,
each run as the CLI in a process of its own (zygote.py) in its own copy of a small released project,
under a memory limit.

Each case must end with exit 1 (2 for usage), exactly one `bindistro: error:` line that names the bad
file, no traceback, and the store and the published tree byte-identical before and after. A hostile
payload is staged (stage reads control data only) and refused by `release`: the published tree stays
byte-identical, the store keeps the verify report that says why.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import hostile as H
from conftest import tree_copy
from zygote import Zygotes

BIN = Path(sys.executable).parent / "bindistro"
MEMORY = 2 << 30          # address space per run: a bomb must be refused, not survived with swap


ZYGOTES = Zygotes()


@pytest.fixture(scope="module", autouse=True)
def _zygotes():
    yield
    ZYGOTES.close()


def run(args, cwd: Path, extra_env: dict | None = None, timeout: int = 60) -> subprocess.CompletedProcess:
    """`bindistro ARGS` in a process of its own (forked from a zygote that has the imports done: see
    zygote.py), under the memory limit; anything else as a plain subprocess."""
    env = dict(os.environ, COLUMNS="200", **(extra_env or {}))
    env.pop("BINDISTRO_DEBUG", None)
    if args[0] == BIN:
        return ZYGOTES.get().run(args[1:], cwd, env, MEMORY, timeout)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, preexec_fn=limit,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def released(tiny) -> Path:
    return tiny


def tree_hash(root: Path) -> dict[str, str]:
    """Every entry under `root` (names, types, modes, link targets, bytes); SQLite's WAL side files
    and lock files are not the store's content."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if n.endswith(("-wal", "-shm", ".lock")):
                continue
            st = p.lstat()
            if p.is_symlink():
                out[rel] = "l:" + os.readlink(p)
            elif p.is_file():
                out[rel] = f"f{st.st_mode:o}:" + hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = f"d{st.st_mode:o}"
    return out


def db_dump(db: Path) -> str:
    import sqlite3
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return "\n".join(c.iterdump())
    finally:
        c.close()


# --- the corpus: name -> prepare(work) returning (argv after `bindistro`, text the error line must name) --

CASES: dict[str, object] = {}


def case(name):
    def deco(fn):
        CASES[name] = fn
        return fn
    return deco


def spec_case(name, text: str | bytes, cmd=("releases",)):
    def prep(w: Path):
        p = w / "proj" / "bindistro.yml"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["-C", "proj", *cmd], "bindistro.yml"
    CASES[f"spec/{name}"] = prep


def good_spec(w: Path) -> str:
    return (w / "proj" / "bindistro.yml").read_text()


def spec_edit(name, fn):
    """A change to the real spec (YAML text in, YAML text out)."""
    def prep(w: Path):
        p = w / "proj" / "bindistro.yml"
        p.write_text(fn(p.read_text()))
        return ["-C", "proj", "releases"], "bindistro.yml"
    CASES[f"spec/{name}"] = prep


BASE = "product: {name: x}\nmachines: {qemux86-64: {archs: [all, core2-64]}}\n"
spec_case("anchor-bomb", "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{','.join('*' + p for _ in range(9))}]\n" for p, c in zip("abcdefgh", "bcdefghi")))
spec_case("deep-nesting", "a: " + "[" * 5000 + "]" * 5000 + "\n")
spec_case("not-utf8", b"product: {name: \xff\xfe}\n")
spec_case("not-a-mapping", "- a\n- b\n")
spec_case("too-large", "# " + "x" * (1 << 20) + "\n" + BASE)
spec_case("int-for-list", BASE + "formats: 3\n")
spec_case("unknown-top-key", BASE + "colour: blue\n")
spec_case("unknown-nested-key", "product: {name: x, verison: 2}\nmachines: {q: {archs: [all]}}\n")
spec_case("keys-typo", BASE + "keys: {signng: ABC}\n")
spec_case("image-security-typo", BASE + "image_security: {allowed_unit: [a.service]}\n")
spec_case("release-name-newline", BASE + 'release_name: "evil\\n"\n')
spec_case("release-name-width", BASE + 'release_name: "{n:>999999999}"\n')
spec_case("release-name-attr", BASE + 'release_name: "{version.__class__}"\n')
spec_case("int-key", "product: {name: x}\nmachines: {1: {archs: [all]}}\n")
spec_case("bad-regex", BASE + "boot: {marker: '(('}\n")
spec_case("url-newline", BASE + 'publish: {url: "http://x/\\nINHERIT += \\"evil\\""}\n')
spec_case("huge-timeout", BASE + "boot: {timeout: 99999999999999999999}\n")
spec_case("nul-in-name", BASE.replace("name: x", 'name: "x\\0y"'))
spec_case("bad-date", BASE + "eol: 2025-13-45\n")
spec_case("bad-fingerprint", BASE + "keys: {signing: 'not-a-key'}\n")
spec_case("arch-slash", "product: {name: x}\nmachines: {q: {archs: [all, ../../etc]}}\n")
spec_case("binary-tag", BASE + "state_dir: !!binary aGVsbG8=\n")


@case("spec/directory")
def _(w):
    p = w / "proj" / "bindistro.yml"
    p.unlink()
    p.mkdir()
    return ["-C", "proj", "releases"], "bindistro.yml"


@case("spec/symlink-loop")
def _(w):
    p = w / "proj" / "bindistro.yml"
    p.unlink()
    p.symlink_to("bindistro.yml")
    return ["-C", "proj", "releases"], "bindistro.yml"


def pkg_case(name, data: bytes | None = None, filename: str = "evil_1.0-r0_all.ipk", make=None):
    """A build dir holding one hostile ipk next to a good one; `stage` must refuse it."""
    def prep(w: Path):
        feed = w / "in" / "build" / "tmp" / "deploy" / "ipk" / "all"
        H.write(feed / "base-files_1.0-r0_all.ipk", H.ipk(H.control("base-files")))
        H.write(feed / filename, make() if make else data)
        return ["-C", "proj", "stage", "in/build"], filename.split("\n")[0]
    CASES[f"package/{name}"] = prep


def payload_case(name, data: bytes | None = None, make=None):
    """A hostile payload: stage reads control data only and accepts it; the payload gate (which
    release runs when the report lacks it) must find it, and `release` refuse it."""
    filename = "evil_1.0-r0_all.ipk"

    def prep(w: Path):
        feed = w / "in" / "build" / "tmp" / "deploy" / "ipk" / "all"
        H.write(feed / "base-files_1.0-r0_all.ipk", H.ipk(H.control("base-files")))
        H.write(feed / filename, make() if make else data)
        r = run([BIN, "-C", "proj", "stage", "in/build", "--json"], w)
        assert r.returncode == 0, r.stderr
        cand = str(json.loads(r.stdout)["candidate"])
        # one cheap gate asked for: the payload gate runs anyway (without a report, release would
        # run every gate, the real package managers' upgrade runs among them)
        run([BIN, "-C", "proj", "verify", cand, "--gate", "logs"], w)
        return ["-C", "proj", "release", cand], filename
    CASES[f"payload/{name}"] = prep


payload_case("symlink-then-file-through-it", H.ipk(data=[("./lnk", "symlink", "/tmp"), ("./lnk/pwned", b"x")]))
payload_case("relative-symlink-escape", H.ipk(data=[("./usr/lib/x", "symlink", "../../../../etc/shadow")]))
payload_case("absolute-member", H.ipk(data=[("/etc/passwd", b"root::0:0::/:/bin/sh\n")]))
payload_case("dotdot-member", H.ipk(data=[("./../../outside", b"x")]))
payload_case("hardlink-outside", H.ipk(data=[("./a", "hardlink", "../../etc/shadow")]))
pkg_case("control-bomb", make=lambda: H.ipk(control_tar=H.tar_gz_of_zeros("./control", 24 << 20)))
pkg_case("control-tar-bomb", make=lambda: H.ipk(control_tar=H.tar_gz_of_zeros("./junk", 24 << 20)))
pkg_case("control-small-bomb", make=lambda: H.ipk(control_tar=H.tar_gz_of_zeros("./control", 8 << 20)))
payload_case("data-bomb", make=lambda: H.ipk(data_tar=H.tar_zst_of_zeros("./usr/share/zeros", 1 << 30),
                                             data_name="data.tar.zst"))
pkg_case("newline-in-filename", H.ipk(), filename="evil\nPackage: injected_1.0_all.ipk")
pkg_case("nul-in-field", H.ipk(H.control(extra="Depends: a\x00b\n")))
pkg_case("newline-injected-field", H.ipk(H.control(extra="Depends: a\n\nPackage: injected\nVersion: 1\n")))
pkg_case("dotdot-version", H.ipk(H.control(version="../../1.0")))
pkg_case("slash-arch", H.ipk(H.control(arch="../all")))
pkg_case("not-an-ar", b"this is not a package\n" * 10)
pkg_case("truncated", H.ipk()[:200])
pkg_case("control-latin1", H.ipk(b"Package: h\xe9llo\nVersion: 1\nArchitecture: all\n"))
pkg_case("control-missing-version", H.ipk(b"Package: hello\nArchitecture: all\n"))
pkg_case("no-control-file", H.ipk(control_tar=H.tar([("./other", b"x")])))
pkg_case("control-not-tar", H.ipk(control_tar=b"\x1f\x8b\x08garbage"))
payload_case("data-corrupt", H.ipk(data_tar=b"\x1f\x8b\x08\x00" + os.urandom(200)))
pkg_case("empty-file", b"")


def index_case(name, packages: bytes, gz: bytes | None = None, args=()):
    def prep(w: Path):
        feed = w / "in" / "feed"
        H.write(feed / "base-files_1.0-r0_all.ipk", H.ipk(H.control("base-files")))
        if gz is not None:
            H.write(feed / "Packages.gz", gz)
            target = "Packages.gz"
        else:
            H.write(feed / "Packages", packages)
            target = "Packages"
        return ["feed", "check", "in/feed", *args], target
    CASES[f"index/{name}"] = prep


STANZA = b"Package: base-files\nVersion: 1.0-r0\nArchitecture: all\nFilename: base-files_1.0-r0_all.ipk\n"
index_case("size-not-a-number", STANZA + b"Size: lots\n\n")
index_case("latin1", STANZA.replace(b"base-files\nV", b"b\xe4se\nV") + b"\n")
index_case("truncated-gz", b"", gz=__import__("gzip").compress(STANZA * 100)[:60])
index_case("gz-bomb", b"", gz=H.gz_zeros(300 << 20))
index_case("filename-escapes", STANZA.replace(b"Filename: base", b"Filename: ../../../etc/base") + b"Size: 1\n\n")
index_case("not-gzip", b"", gz=b"plain text, not gzip\n")


@case("index/bad-signature")
def _(w):
    feed = w / "in" / "feed"
    H.write(feed / "base-files_1.0-r0_all.ipk", H.ipk(H.control("base-files")))
    r = run([BIN, "-C", "proj", "feed", "index", "in/feed"], w)
    assert r.returncode == 0, r.stderr
    (feed / "Packages.asc").write_text("-----BEGIN PGP SIGNATURE-----\n\ngarbage\n-----END PGP SIGNATURE-----\n")
    key = next((w / "proj" / "publish" / "keys").iterdir())
    return ["feed", "check", "in/feed", "--keyring", key], "Packages"


def cve_case(name, data: bytes | str | dict, cmd="import"):
    def prep(w: Path):
        body = json.dumps(data).encode() if isinstance(data, dict) else data if isinstance(data, bytes) else data.encode()
        f = H.write(w / "in" / f"{name}.json", body)
        if cmd == "import":
            return ["-C", "proj", "cve", "import", f], f.name
        return ["-C", "proj", "cve", "scan", "--sbom", f], f.name
    CASES[f"{'cve' if cmd == 'import' else 'sbom'}/{name}"] = prep


def nvd(**cve):
    base = {"id": "CVE-2024-0001", "vulnStatus": "Analyzed", "published": "2024-01-01", "lastModified": "2024-01-02",
            "descriptions": [{"lang": "en", "value": "x"}], "metrics": {}, "configurations": []}
    return {"cve": base | cve}


CRIT = {"nodes": [{"operator": "OR", "cpeMatch": [{"vulnerable": True, "criteria": ["cpe", "list"]}]}]}
cve_case("deep-nesting", '{"cve": ' + "[" * 100000 + "]" * 100000 + "}")
cve_case("poisoned-criteria", nvd(configurations=[CRIT]))
cve_case("criteria-not-cpe", nvd(configurations=[{"nodes": [{"cpeMatch": [{"criteria": "not a cpe"}]}]}]))
cve_case("missing-id", {"cve": {"descriptions": [], "vulnStatus": "x"}})
cve_case("score-as-string", nvd(metrics={"cvssMetricV31": [{"type": "Primary", "cvssData": {"baseScore": "high"}}]}))
cve_case("configurations-as-object", nvd(configurations={"nodes": []}))
cve_case("version-digits", nvd(configurations=[{"nodes": [{"cpeMatch": [
    {"vulnerable": True, "criteria": "cpe:2.3:a:busybox:busybox:*:*:*:*:*:*:*:*", "versionEndExcluding": "1" * 5000}]}]}]))
cve_case("not-json", "{not json")
cve_case("neither-format", {"hello": "world"})
cve_case("cve5-affected-string", {"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-2024-0002", "state": "PUBLISHED"},
                                  "containers": {"cna": {"affected": "everything"}}})
cve_case("descriptions-not-list", nvd(descriptions="x"))
cve_case("bad-id", nvd(id="CVE-../../etc"))


@case("cve/too-large")
def _(w):
    f = H.write(w / "in" / "huge.json", b"")
    with open(f, "wb") as fh:
        fh.truncate(65 << 20)        # sparse: the size alone must refuse it
    return ["-C", "proj", "cve", "import", f], "huge.json"


cve_case("deep-nesting", '{"@graph": ' + "[" * 100000 + "]" * 100000 + "}", cmd="sbom")
cve_case("graph-a-string", {"@graph": "x"}, cmd="sbom")
cve_case("graph-items-lists", {"@graph": [[1], [2]]}, cmd="sbom")
cve_case("spdx22-relationships-wrong", {"spdxVersion": "SPDX-2.2", "packages": [{"SPDXID": "SPDXRef-Image-x"}],
                                        "relationships": "all"}, cmd="sbom")
cve_case("not-json", "]]", cmd="sbom")


@case("sbom/archive-bomb")
def _(w):
    import zstandard
    f = w / "in" / "image.spdx.tar.zst"
    f.parent.mkdir(parents=True, exist_ok=True)
    with open(f, "wb") as fh, zstandard.ZstdCompressor(level=3).stream_writer(fh) as z:
        import tarfile
        ti = tarfile.TarInfo("index.json")
        ti.size = 1 << 30
        z.write(ti.tobuf(format=tarfile.GNU_FORMAT))
        chunk = bytes(1 << 20)
        for _ in range(1 << 10):
            z.write(chunk)
    return ["-C", "proj", "cve", "scan", "--sbom", f], "image.spdx.tar.zst"


def tree_case(name, change):
    """A copy of the published tree, changed; `restore --from` it must refuse."""
    def prep(w: Path):
        src = w / "proj" / "publish"
        tree = w / "in" / "tree"
        tree_copy(src, tree)
        man = tree / "releases" / "1.1" / "manifest.json"
        target = change(tree, man) or "manifest.json"
        return ["-C", "proj", "restore", "--from", tree, w / "in" / "rb"], target
    CASES[f"tree/{name}"] = prep


def _detach(p: Path) -> Path:
    # the tree's files are hard links into an immutable generation: write a new file, never through
    real = p.resolve()
    data = real.read_bytes()
    real.unlink()
    real.write_bytes(data)
    return real


def _tamper(tree, man):
    real = _detach(man)
    m = json.loads(real.read_text())
    m["release"] = "1.1"
    m["product"] = "evil"
    real.write_text(json.dumps(m))


def _unsigned(tree, man):
    man.with_name("manifest.json.asc").resolve().unlink()


def _escape(tree, man):
    real = _detach(man)
    m = json.loads(real.read_text())
    m.setdefault("artifacts", []).append({"path": "../../../outside/x", "sha256": "0" * 64, "size": 1, "kind": "conf"})
    real.write_text(json.dumps(m))


def _garbage_sig(tree, man):
    sig = _detach(man.with_name("manifest.json.asc"))
    sig.write_text("-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n")


tree_case("tampered-manifest", _tamper)
tree_case("unsigned", _unsigned)
tree_case("manifest-path-escape", _escape)
tree_case("garbage-signature", _garbage_sig)


@case("tree/not-a-tree")
def _(w):
    (w / "in" / "empty").mkdir(parents=True)
    return ["-C", "proj", "restore", "--from", w / "in" / "empty", w / "in" / "rb"], "empty"


@case("keys/import-garbage")
def _(w):
    f = H.write(w / "in" / "key.asc", b"not a key at all\n")
    return ["-C", "proj", "keys", "import", f], "key.asc"


@case("usage/unknown-defect")
def _(w):
    return ["sample-build", "in/x", "--release", "1", "--inject", "nope"], "nope"


@case("usage/release-zero")
def _(w):
    return ["sample-build", "in/x", "--release", "0"], "release"


@case("candidate/no-such")
def _(w):
    return ["-C", "proj", "verify", "99"], "99"


@case("stage/not-a-directory")
def _(w):
    H.write(w / "in" / "file", b"x")
    return ["-C", "proj", "stage", "in/file"], "in/file"


def test_corpus_is_large_enough():
    assert len(CASES) >= 60, len(CASES)


def _one(base: Path, name: str, prep) -> str | None:
    """Run one case in its own copy of the project; the problem found, or None."""
    w = base / name.replace("/", "__")
    tree_copy(released_dir, w)
    argv, must_name = prep(w)
    before = (tree_hash(w / "proj" / "state"), tree_hash(w / "proj" / "publish"),
              db_dump(w / "proj" / "state" / "bindistro.db"))
    r = run([BIN, *argv], w)
    after = (tree_hash(w / "proj" / "state"), tree_hash(w / "proj" / "publish"),
             db_dump(w / "proj" / "state" / "bindistro.db"))
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("bindistro: error:") or l.startswith("Error:")]
    problems = []
    if r.returncode not in (1, 2):
        problems.append(f"exit {r.returncode}")
    if "Traceback" in r.stderr or "internal error" in r.stderr:
        problems.append("traceback / internal error")
    payload = name.startswith("payload/")
    if payload:     # release names each unwaived finding, then says it refused: one line more
        lines = [l for l in lines if "refused: fix the build" not in l]
        errors = [l for l in errors if l in lines]
    if len(errors) != 1:
        problems.append(f"{len(errors)} error lines")
    elif must_name not in errors[0]:
        problems.append(f"error line does not name {must_name!r}")
    if len(errors[0] if errors else "") > 400:
        problems.append("error line longer than 400 characters")
    others = [l for l in lines if l not in errors and not l.startswith("bindistro: warning:")
              and not l.startswith(("Usage:", "Try "))]
    if others:
        problems.append(f"other output on stderr: {others[:2]}")
    for what, a, b in zip(("state dir", "publish tree", "database"), before, after):
        if payload and what != "publish tree":
            continue    # the verify report and the payload gate's cache are kept: that is verify's work
        if a != b:
            changed = sorted(set(a) ^ set(b)) if isinstance(a, dict) else []
            changed += sorted(k for k in (set(a) & set(b) if isinstance(a, dict) else []) if a[k] != b[k])
            problems.append(f"{what} changed: {changed[:5]}")
    outside = w / "outside"
    if outside.exists() or Path("/tmp/pwned").exists():
        problems.append("wrote outside its directories")
    if problems:
        return f"{name}: {'; '.join(problems)}\n    stderr: {r.stderr.strip()[:600]}"
    shutil.rmtree(w, ignore_errors=True)
    return None


released_dir: Path


def test_hostile_corpus(released, tmp_path):
    """Every case keeps the contract; all cases run in parallel over the machine's cores."""
    global released_dir
    released_dir = released
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(lambda kv: _one(tmp_path, *kv), CASES.items()))
    failed = [r for r in results if r]
    assert not failed, f"{len(failed)} of {len(CASES)} cases broke the contract:\n" + "\n".join(failed)


def _in_mount_ns(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace (tmpfs and read-only mounts vanish with it)."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_disk_full_during_stage_leaves_no_orphans(released, tmp_path):
    """ENOSPC while objects are stored: one line naming the store, exit 1, no candidate, and every
    object this run had added is gone again."""
    w = tmp_path / "w"
    tree_copy(released, w)
    feed = w / "in" / "build" / "tmp" / "deploy" / "ipk" / "all"
    H.write(feed / "a-small_1.0-r0_all.ipk", H.ipk(H.control("a-small"), data=[("./a", os.urandom(20_000))]))
    H.write(feed / "b-big_1.0-r0_all.ipk", H.ipk(H.control("b-big"), data=[("./b", os.urandom(600_000))]))
    objects = w / "proj" / "state" / "objects"
    db_before = db_dump(w / "proj" / "state" / "bindistro.db")
    r = _in_mount_ns(f"""set -e
        cp -a {objects} {w}/objects.real
        mount -t tmpfs -o size=400k tmpfs {objects}
        cp -a {w}/objects.real/. {objects}/
        (cd {objects} && find . -type f | sort) > {w}/before.txt
        set +e
        {BIN} -C {w}/proj stage {w}/in/build 2> {w}/stderr.txt
        echo $? > {w}/rc.txt
        (cd {objects} && find . | sort | grep -v '^\\.$') > {w}/after-all.txt
        (cd {objects} && find . -type f | sort) > {w}/after.txt
    """, w)
    assert r.returncode == 0, r.stderr
    err = (w / "stderr.txt").read_text()
    assert (w / "rc.txt").read_text().strip() == "1", err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "No space left on device" in lines[0] and str(objects) in lines[0], err
    assert "Traceback" not in err
    assert (w / "after.txt").read_text() == (w / "before.txt").read_text()      # no orphans
    assert ".tmp-" not in (w / "after-all.txt").read_text()
    assert db_dump(w / "proj" / "state" / "bindistro.db") == db_before            # no candidate
    assert not list((w / "proj" / "state").glob("tmp*"))


def _failing_disk(w: Path, target: Path) -> str:
    """Shell lines (for _in_mount_ns): `target`, its content kept, on an ext4 without a journal (as
    this machine's root) over a loop device whose backing file lives in a 16 MB tmpfs. Once
    _fill_backing has filled that tmpfs, writes to `target` still succeed in the page cache and
    fail when the kernel writes them out (EIO, or ENOSPC)."""
    return f"""mkdir {w}/back
        mount -t tmpfs -o size=16m tmpfs {w}/back
        truncate -s 256M {w}/back/img
        mkfs.ext4 -q -F -O ^has_journal -E lazy_itable_init=0 {w}/back/img
        loop=$(losetup -f --show {w}/back/img)
        trap 'umount {target}; losetup -d $loop' EXIT
        cp -a {target} {w}/real
        mount $loop {target}
        cp -a {w}/real/. {target}/
        sync"""


def _fill_backing(w: Path) -> str:
    return f"head -c $(( $(stat -f -c '%a*%S' {w}/back) - (1 << 20) )) /dev/zero > {w}/back/filler"


def _reported_disk_error(w: Path, r: subprocess.CompletedProcess, where: Path) -> None:
    """The command of a _failing_disk script failed as it should: exit 1, one line naming `where`,
    the disk's error (which one depends on where the loop device's write failed), no traceback."""
    assert r.returncode == 0, r.stderr
    err = (w / "stderr.txt").read_text()
    assert (w / "rc.txt").read_text().strip() == "1", err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and str(where) in lines[0], err
    assert "Input/output error" in lines[0] or "No space left on device" in lines[0], err
    assert "Traceback" not in err


def _loop_devices() -> bool:
    return os.geteuid() == 0 and shutil.which("losetup") is not None and Path("/dev/loop-control").exists()


@pytest.mark.parametrize("new_mb", [8, 70])
def test_disk_failing_writes_during_stage_is_reported(released, tmp_path, new_mb):
    """The store's disk fails the copies' writes once they leave the page cache (ext4 on a loop
    device whose backing file has no room left: EIO at writeback): one line naming the store,
    exit 1, no candidate and no object; not a stage that reports success for objects whose bytes
    are lost. 70 MB: past WRITE_BACK_FROM, where a thread of stage syncs while the copies are made
    and meets the error first."""
    if not _loop_devices():
        pytest.skip("needs root and loop devices")
    w = tmp_path / "w"
    tree_copy(released, w)
    feed = w / "in" / "build" / "tmp" / "deploy" / "ipk" / "all"
    H.write(feed / "c-big_1.0-r0_all.ipk", H.ipk(H.control("c-big"), data=[("./c", os.urandom(new_mb << 20))]))
    objects = w / "proj" / "state" / "objects"
    db_before = db_dump(w / "proj" / "state" / "bindistro.db")
    r = _in_mount_ns(f"""set -e
        {_failing_disk(w, objects)}
        (cd {objects} && find . -type f -not -path './.tmp-*' | sort) > {w}/before.txt
        {_fill_backing(w)}
        set +e
        {BIN} -C {w}/proj stage {w}/in/build 2> {w}/stderr.txt
        echo $? > {w}/rc.txt
        (cd {objects} && find . -type f -not -path './.tmp-*' | sort) > {w}/after.txt
    """, w)
    _reported_disk_error(w, r, objects)
    assert (w / "after.txt").read_text() == (w / "before.txt").read_text()      # no object added
    assert db_dump(w / "proj" / "state" / "bindistro.db") == db_before            # no candidate


def test_read_only_build_dir_on_restore(released, tmp_path):
    """EROFS: one line naming where, exit 1, nothing half-written."""
    w = tmp_path / "w"
    tree_copy(released, w)
    rb = w / "rb"
    rb.mkdir()
    _fails_read_only(w, rb, f"restore {rb}")
    assert not any(rb.iterdir())


def _fails_read_only(w: Path, ro: Path, command: str) -> None:
    """`bindistro -C w/proj COMMAND` with `ro` mounted read-only: exit 1, one line naming it."""
    r = _in_mount_ns(f"""set -e
        mount --bind {ro} {ro}
        mount -o remount,bind,ro {ro}
        set +e
        {BIN} -C {w}/proj {command} 2> {w}/stderr.txt
        echo $? > {w}/rc.txt
    """, w)
    assert r.returncode == 0, r.stderr
    err = (w / "stderr.txt").read_text()
    lines = [l for l in err.splitlines() if l.strip()]
    assert (w / "rc.txt").read_text().strip() == "1", err
    assert len(lines) == 1 and "Read-only file system" in lines[0] and str(ro) in lines[0], err


def test_read_only_generations_on_release(released, tmp_path):
    """EROFS where the next generation is copied (in a thread beside the release's planning and
    signing): one line naming where, exit 1, the published tree as it was."""
    w = tmp_path / "w"
    tree_copy(released, w)
    H.write(w / "build" / "tmp" / "deploy" / "ipk" / "core2-64" / "hello_1.1-r0_core2-64.ipk",
            H.ipk(H.control("hello", version="1.1-r0", arch="core2-64", extra="Depends: base-files\n")))
    cand = json.loads(run([BIN, "-C", "proj", "stage", "build", "--json"], w).stdout)["candidate"]
    run([BIN, "-C", "proj", "verify", str(cand), "--gate", "closure"], w)
    snaps = w / "proj" / "publish" / ".bindistro" / "snapshots"
    before = tree_hash(w / "proj" / "publish")
    _fails_read_only(w, snaps, f"release {cand}")
    assert tree_hash(w / "proj" / "publish") == before


def test_disk_failing_writes_during_release_is_reported(released, tmp_path):
    """The publish tree's disk fails the new generation's writes once they leave the page cache
    (ext4 on a loop device whose backing file has no room left): one line naming the tree, exit 1,
    no release recorded, and what the tree serves is what it served (a generation whose bytes the
    disk lost is never switched to)."""
    if not _loop_devices():
        pytest.skip("needs root and loop devices")
    w = tmp_path / "w"
    tree_copy(released, w)
    H.write(w / "build" / "tmp" / "deploy" / "ipk" / "core2-64" / "hello_1.1-r0_core2-64.ipk",
            H.ipk(H.control("hello", version="1.1-r0", arch="core2-64", extra="Depends: base-files\n"),
                  data=[("./usr/share/hello/blob", os.urandom(8 << 20))]))
    cand = json.loads(run([BIN, "-C", "proj", "stage", "build", "--json"], w).stdout)["candidate"]
    run([BIN, "-C", "proj", "verify", str(cand), "--gate", "closure"], w)
    pub = w / "proj" / "publish"
    db_before = db_dump(w / "proj" / "state" / "bindistro.db")
    served = f"(cd {pub} && find -L . -path ./.bindistro -prune -o -type f -print | sort | xargs -d '\\n' sha256sum)"
    r = _in_mount_ns(f"""set -e
        {_failing_disk(w, pub)}
        {served} > {w}/before.txt
        {_fill_backing(w)}
        set +e
        {BIN} -C {w}/proj release {cand} 2> {w}/stderr.txt
        echo $? > {w}/rc.txt
        {served} > {w}/after.txt
    """, w)
    _reported_disk_error(w, r, pub)
    before = (w / "before.txt").read_text()
    assert "hello_1.0-r0" in before and (w / "after.txt").read_text() == before
    assert db_dump(w / "proj" / "state" / "bindistro.db") == db_before            # no release


def test_internal_error_is_one_line_and_debug_shows_the_trace(released, tmp_path):
    """An unexpected error (here: a damaged row the code cannot read) is our bug: one line asking for
    a report; --debug shows the trace."""
    w = tmp_path / "w"
    tree_copy(released, w)
    import sqlite3
    c = sqlite3.connect(w / "proj" / "state" / "bindistro.db")
    c.execute("UPDATE candidates SET warnings = '{not json'")
    c.commit()
    c.close()
    r = run([BIN, "-C", "proj", "show", "1"], w)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and "internal error" in lines[0] and "please report" in lines[0], r.stderr
    r = run([BIN, "-C", "proj", "--debug", "show", "1"], w)
    assert r.returncode != 0 and "Traceback" in r.stderr
