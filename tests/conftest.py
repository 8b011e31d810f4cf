"""Shared fixtures: the CLI, sample builds (generated once per session), the real Yocto data."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

try:
    import xdist  # noqa: F401  (provides worker_id)
except ImportError:          # without pytest-xdist: one process, the "master"
    @pytest.fixture(scope="session")
    def worker_id():
        return "master"

from bindistro.cli import main
from bindistro_sample.build import generate

REPO = Path(__file__).resolve().parent.parent
REALDATA = Path(os.environ.get("BINDISTRO_REALDATA", REPO.parent / "shared" / "realdata"))


# the SAMPLE distro built end to end (the demo, sample builds, projects made from them): minutes
SLOW_FIXTURES = {"demo", "sample_build", "mini_build", "ipk_project", "rel1", "signed", "small_signed", "mini_signed"}


# seconds per module on 2 cores (measured with BINDISTRO_TEST_TIMELINE, demo waits left out): the
# order the workers take modules in (longest first, so none is left alone with a long one at the end)
COST = {"test_ipk_upgrade.py": 94, "test_beyond_one_machine.py": 91, "test_series.py": 80, "test_bench.py": 69,
        "test_s3.py": 53, "test_verify.py": 50, "test_publish.py": 49, "test_gates2.py": 41, "test_postgres.py": 25,
        "test_boot.py": 24, "test_restore.py": 23, "test_custom_and_sstate.py": 23, "test_cycle.py": 20,
        "test_property_cumulative.py": 15, "test_hostile.py": 13, "test_publish_crash.py": 12, "test_site.py": 12,
        "test_sample_world.py": 11, "test_signing.py": 10, "test_channels.py": 10, "test_image_feeds.py": 8}
FIRST_UNITS = 4     # what xdist hands out before the first worker finishes a module (2 per worker)


def pytest_configure(config):
    # xdist orders modules by their number of tests unless told not to; the order below is better
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    if not hasattr(config, "workerinput"):
        _tmp_in_ram(config)


WHERE = ["in the temp dir"]      # where the tests' directories are, for the report header
RAM_TMP = 16 << 30      # a run holds up to 11 GB there at once (measured on 2 cores); RAM it needs free


def _tmp_in_ram(config) -> None:
    """The tests' directories in RAM (/dev/shm) when it has room: the suite makes and removes
    millions of files, and on this machine's ext4 a file made costs 150-500 us, more as files are
    removed (the allocator scans past recently deleted inodes), against 17 us on tmpfs. Set before
    pytest picks its base directory; the workers and every process they start inherit it (TMPDIR).
    BINDISTRO_TEST_TMP=disk keeps them on disk."""
    shm = Path("/dev/shm")
    if config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT") or os.environ.get("BINDISTRO_TEST_TMP") == "disk":
        return
    root = shm / "bindistro-tests"
    # an earlier run's directories (pytest would remove them once this run starts): gone first, so
    # that a failed run's ~11 GB do not count against this one; a running one's (its .lock names a
    # live process) stay
    live = False
    for old in root.glob("pytest-of-*/pytest-[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((old / ".lock").read_text()), 0)      # ValueError: empty, or no number
            live = True
            continue
        shutil.rmtree(old, ignore_errors=True)
    with contextlib.suppress(OSError, ValueError):
        mounts = Path("/proc/mounts").read_text().split("\n")
        st = os.statvfs(shm)
        avail = int(next(x for x in Path("/proc/meminfo").read_text().split("\n") if x.startswith("MemAvailable:")).split()[1]) << 10
        if not any(m.split()[1:3] == ["/dev/shm", "tmpfs"] for m in mounts if m) or \
                min(avail, st.f_bavail * st.f_frsize) < RAM_TMP:
            # said in the header: a run on disk takes minutes longer (leftovers in /dev/shm suffice)
            WHERE[0] = (f"on disk: /dev/shm has {st.f_bavail * st.f_frsize / 2**30:.1f} GB free, RAM "
                        f"{avail / 2**30:.1f} GB available, {RAM_TMP >> 30} GB wanted")
            return
        root.mkdir(exist_ok=True)
        root.chmod(0o1777)      # as /tmp: other users (postgres, nobody) make and read their own dirs in it
        os.environ["PYTEST_DEBUG_TEMPROOT"] = os.environ["TMPDIR"] = str(root)
        WHERE[0] = f"in RAM: {root}"
        tempfile.tempdir = str(root)        # this process may have asked for the temp dir already
        # the sample hard-links its kernels from the cache into each build: a copy of them on the
        # same file system (the package cache stays where it is)
        from bindistro.cache import cache_dir
        from bindistro_sample.pkgcache import root as packages
        real, mirror = cache_dir(), root / "cache"
        mirror.mkdir(exist_ok=True)
        packages().mkdir(parents=True, exist_ok=True)      # on disk, kept between runs and boots
        for entry in real.iterdir():
            dst = mirror / entry.name
            if entry.name == "boot":
                if _stamps(dst) != _stamps(entry):      # none yet, or set-up fetched others since
                    tmp = Path(tempfile.mkdtemp(dir=root))
                    shutil.copytree(entry, tmp / "boot", symlinks=True)
                    shutil.rmtree(dst, ignore_errors=True)
                    os.replace(tmp / "boot", dst)
                    tmp.rmdir()
            elif not (dst.is_symlink() and os.readlink(dst) == str(entry)):
                with contextlib.suppress(FileNotFoundError):
                    dst.unlink()
                dst.symlink_to(entry)
        os.environ["BINDISTRO_CACHE"] = str(mirror)
        # the package managers' kept roots (bindistro/pm/roots.py) start empty, as on a fresh machine:
        # the run fills them, not set-up's demo or an earlier run
        pm_roots = root / "pm-roots"
        if not live:
            shutil.rmtree(pm_roots, ignore_errors=True)
        os.environ["BINDISTRO_PM_ROOTS"] = str(pm_roots)


def _stamps(d: Path) -> list:
    return sorted((str(p.relative_to(d)), p.lstat().st_size, p.lstat().st_mtime_ns) for p in d.rglob("*")
                  if not p.is_dir()) if d.is_dir() else []


def pytest_collection_modifyitems(items):
    # the fast layer (`-m "not slow"`) is everything that does not need the sample distro built
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    # longest modules first; the ones that need the demo not among the first handed out: under xdist
    # it is built in the background meanwhile, and no worker waits for it
    def name(i):
        return Path(str(i.fspath)).name
    late = {name(i) for i in items if "demo" in getattr(i, "fixturenames", ())}
    order = sorted(dict.fromkeys(name(i) for i in items), key=lambda n: -COST.get(n, 1))    # stable: xdist
    # workers must all collect the same order
    early = [n for n in order if n not in late][:FIRST_UNITS]
    order = early + [n for n in order if n not in early]
    rank = {n: k for k, n in enumerate(order)}
    items.sort(key=lambda i: rank[name(i)])


def need_realdata(sub: str) -> Path:
    p = REALDATA / sub
    if not p.exists():
        pytest.fail(f"real Yocto data missing: {p} (the tests read ../shared/realdata beside the clone)")
    return p


class Cli:
    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args, ok: bool | None = True):
        r = self.runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        if ok is True:
            assert r.exit_code == 0, f"{args} -> {r.exit_code}\n{r.stdout}\n{r.stderr}"
        return r

    def json(self, *args, ok: bool | None = True):
        r = self(*args, "--json", ok=ok)
        return json.loads(r.stdout)


@pytest.fixture
def cli():
    return Cli()


_BUILDS: dict[tuple[int, int], Path] = {}


def carry_pr(prev_build: Path, out: Path) -> Path:
    """Start a sample build dir the way one build directory lives on between releases: with the
    previous build's PR database."""
    (out / "cache").mkdir(parents=True)
    shutil.copyfile(prev_build / "cache" / "prserv.sqlite3", out / "cache" / "prserv.sqlite3")
    (out / ".bindistro-sample").write_text("carried over\n")
    return out


def link_copy(src: Path, dst: Path) -> Path:
    """A copy of a project whose immutable files (store objects, tree generations, build outputs) are
    hard links: seconds instead of minutes; never write through one of those."""
    def cp(s, d):
        if any(k in s for k in ("/objects/", "/snapshots/", "/builds/")):
            os.link(s, d)
        else:
            shutil.copy2(s, d)
    shutil.copytree(src, dst, symlinks=True, copy_function=cp,
                    ignore=shutil.ignore_patterns("S.gpg-agent*", "*.lock"))
    return dst


def _shared(config) -> Path:
    # the directory above every xdist worker's basetemp (pytest-of-USER/pytest-N/)
    return config._tmp_path_factory.getbasetemp().parent


def gpg_agents() -> dict[int, str]:
    """pid -> --homedir of each running gpg-agent."""
    out = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args[0].endswith(b"gpg-agent") and b"--homedir" in args[:-1]:
            out[int(cmdline.parent.name)] = os.fsdecode(args[args.index(b"--homedir") + 1])
    return out


_AGENTS_BEFORE: set[int] = set()        # the agents running when the run started (not its own)


def _stop_gpg_agents(under: Path, orphans_only: bool) -> None:
    """gpg starts an agent per home and it outlives the test; one whose home is gone answers a
    later home made at the same path (pytest reuses pytest-0 once a run left nothing behind) with
    "key generation failed: No such file or directory". At the end of a run (not orphans_only) the
    agents it started for homes now gone go too: dnf's librepo checks repomd.xml.asc in a
    throw-away home of its own (/tmp/tmpdir.*) and leaves its agent running."""
    links = {Path(d, f"bindistro-{os.getuid()}") for d in (tempfile.gettempdir(), "/tmp")}
    for pid, named in gpg_agents().items():
        # a long home is named to gpg through a link (keys.Keyring.gpg_home): it names the test's
        # home, or is gone with it (and the same path again gets the same link name)
        home = Path(os.path.realpath(named))
        ours = home.is_relative_to(under) or (orphans_only and Path(named).parent in links) \
            or (not orphans_only and pid not in _AGENTS_BEFORE and not home.exists())
        if ours and not (orphans_only and home.exists()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):      # once per run, before any worker starts
        _stop_gpg_agents(session.config._tmp_path_factory.getbasetemp().parent, orphans_only=True)
        _AGENTS_BEFORE.update(gpg_agents())
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter and WHERE[0].startswith("on disk"):     # said even with -q
            reporter.write_line(f"bindistro: the tests' directories are {WHERE[0]}")


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return
    base = session.config._tmp_path_factory.getbasetemp()
    _stop_gpg_agents(base, orphans_only=False)
    # a passing run leaves nothing (~14 GB otherwise), removed after the run, not test by test: on
    # ext4 without a journal every file made soon after many were deleted scans past them
    # (recently_deleted(), seen with perf): deleting each test's directory as it passed made the
    # suite ~110 s slower on 2 cores
    if exitstatus == 0:
        subprocess.Popen(["rm", "-rf", str(base)], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# the tests' demo: releases 1..3 of the first series, every gate but the boots, an Ed25519 key
DEMO_ARGS = ("demo", "--no-boot", "--one-series", "--key-algorithm", "ed25519")


def pytest_collection_finish(session):
    """Under xdist, the first worker starts the demo in the background as soon as the tests are
    collected, when any selected test needs it: by the time the modules that need it run (they are
    ordered last), it is built, and no worker waits idle. (The fast layer needs none.)"""
    if getattr(session.config, "workerinput", {}).get("workerid") != "gw0":
        return
    if not any("demo" in getattr(i, "fixturenames", ()) for i in session.items):
        return
    shared = _shared(session.config) / "demo-shared"
    shared.mkdir(parents=True, exist_ok=True)
    bindistro = Path(sys.executable).parent / "bindistro"
    script = f'"{bindistro}" {" ".join(DEMO_ARGS)} --out "{shared}/demo" > "{shared}/demo.log" 2>&1 && touch "{shared}/.done" ' \
             f'|| touch "{shared}/.failed"'
    subprocess.Popen(["sh", "-c", script], start_new_session=True)


@pytest.fixture(scope="session")
def demo(tmp_path_factory, worker_id) -> Path:
    """`bindistro demo --no-boot --one-series --key-algorithm ed25519 --out DIR` (releases 1..3 of seed
    1, all formats, every gate but the QEMU boots: those are test_boot.py's and test_ipk_upgrade.py's; the next series is
    test_series.py's, on top of a copy), run once per session. Under pytest-xdist it is built in the background from the session's start (see
    pytest_sessionstart) and each worker gets its own hard-linked copy."""
    if worker_id == "master":
        out = tmp_path_factory.mktemp("demo") / "demo"
        Cli()(*DEMO_ARGS, "--out", out)
        return out
    shared = tmp_path_factory.getbasetemp().parent / "demo-shared"
    deadline = time.monotonic() + 1800
    while not (shared / ".done").exists():
        if (shared / ".failed").exists() or time.monotonic() > deadline:
            log = (shared / "demo.log").read_text()[-3000:] if (shared / "demo.log").exists() else "no log"
            pytest.fail(f"the shared demo build failed:\n{log}")
        time.sleep(1)
    return link_copy(shared / "demo", tmp_path_factory.mktemp("demo") / "demo")


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory):
    """sample_build(release, seed=1) -> build dir, generated once per session (independent of the demo,
    so tests on sample builds need not wait for it; built packages come from the package cache)."""
    builds = tmp_path_factory.mktemp("sample-builds")

    def get(release: int, seed: int = 1) -> Path:
        key = (seed, release)
        if key not in _BUILDS:
            out = builds / f"s{seed}-r{release}"
            if release > 1:
                carry_pr(get(release - 1, seed), out)
            generate(out, release, seed)
            _BUILDS[key] = out
        return _BUILDS[key]
    return get


def _mini(out: Path, seed: int, rel: int) -> Path:
    from bindistro_sample.build import write_deploy
    from bindistro_sample.packages import File, Pkg
    from bindistro_sample.recipes import Recipe

    def pkg(name, ver, arch, files, **kw):
        return Pkg(name=name, recipe=Recipe(pn=name, pv=ver), arch=arch, section="base",
                   description=f"mini build {name}", files=files, **kw)
    pkgs = [pkg("base-files", "1.0", "all", [File("/etc/issue", data=b"mini\n")], conffiles=["/etc/issue"])]
    for arch, mach in (("core2-64", "qemux86_64"), ("cortexa57", "qemuarm64")):
        lib = f"libmini{rel}"
        pkgs += [pkg(lib, f"1.{rel}", arch, [File(f"/usr/lib/{lib}.so.{rel}", data=f"{arch} {rel}".encode()),
                                             File(f"/usr/lib/{lib}.so", kind="symlink", target=f"{lib}.so.{rel}")]),
                 pkg("tool", f"1.{rel}", arch, [File("/usr/bin/tool", data=f"{arch} {rel} {seed}".encode(), mode=0o755)],
                     depends=[lib, "base-files"] + (["libnowhere1"] if seed == 2 else [])),
                 pkg("machine-conf", f"1.{rel}", mach, [File("/etc/machine", data=mach.encode())])]
        if rel % 2:
            pkgs.append(pkg("extra", f"1.{rel}", arch, [File("/usr/share/extra", data=b"x")]))
    write_deploy(out, pkgs, rel)
    return out


@pytest.fixture(scope="session")
def mini_build(tmp_path_factory):
    """mini_build(release, seed=1) -> a deploy dir (tmp/deploy shape, indexed) of a dozen real packages
    per format on every feed of both machines (all, tune, machine arch), made once per session: for
    tests of publishing, signing and keys, where the 340-package sample adds time, not cases. Per
    release: `base-files` never changes (same bytes), `libmini<rel>` and `tool` move to 1.<rel>,
    `extra` is only in odd releases (a dropped package). Seed 2 gives `tool` other bytes under the same
    version and a dependency nothing provides (a closure error)."""
    base = tmp_path_factory.mktemp("mini-builds")
    made: dict[tuple[int, int], Path] = {}

    def get(release: int, seed: int = 1) -> Path:
        if (seed, release) not in made:
            made[(seed, release)] = _mini(base / f"s{seed}-r{release}", seed, release)
        return made[(seed, release)]
    return get


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """A project with one signed release of two tiny hand-made ipks (seconds, not minutes): DIR/proj,
    its build DIR/build. Copy it before changing it."""
    import hostile as H
    d = tmp_path_factory.mktemp("tiny")
    b = d / "build" / "tmp" / "deploy" / "ipk"
    H.write(b / "all" / "base-files_1.0-r0_all.ipk", H.ipk(H.control("base-files")))
    H.write(b / "core2-64" / "hello_1.0-r0_core2-64.ipk",
            H.ipk(H.control("hello", arch="core2-64", extra="Depends: base-files\n")))
    cli = Cli()
    for args in (["init", "--no-boot"], ["keys", "generate"], ["stage", d / "build"],
                 ["verify", "1", "--gate", "closure"], ["release", "1"]):
        cli("-C", d / "proj", *args)
    import sqlite3      # fold the WAL into the DB file, so a copy's bytes are what a reader leaves
    c = sqlite3.connect(d / "proj" / "state" / "bindistro.db")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return d


def release_build(cli, proj: Path, build: Path, gates=("closure",)) -> dict:
    """stage, verify with the closure gate only, release: for tests of publishing and signing on the
    shared sample builds, whose images are not configured for the test project's own key (that is
    the image-feeds gate's business, tests/test_image_feeds.py)."""
    cand = cli.json("-C", proj, "stage", build)["candidate"]
    cli("-C", proj, "verify", cand, *[x for g in gates for x in ("--gate", g)])
    return cli.json("-C", proj, "release", cand)


def signed_project(d: Path, builds) -> Path:
    """All three formats, signed; release 1 published from builds[0], the others staged and verified
    (closure gate: publishing is under test, not the gates), their rpm signatures made ahead (they
    are made once per package and kept, release/sign.py), so the crash test's many runs spend their
    time in the publishing it kills."""
    cli = Cli()
    cli("-C", d, "init", "--no-boot")
    spec = d / "bindistro.yml"
    spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n"))
    os.environ.setdefault("BINDISTRO_KEY_PASSPHRASE", "")
    # Ed25519: these projects sign hundreds of rpms and indexes (RSA keys: the tiny project, test_signing.py)
    cli("-C", d, "keys", "generate", "--uid", "bindistro test <test@bindistro.invalid>", "--algorithm", "ed25519")
    for n, build in enumerate(builds, 1):
        c = cli.json("-C", d, "stage", build)["candidate"]
        cli("-C", d, "verify", c, "--gate", "closure")
        if n == 1:
            cli("-C", d, "release", c)
    from bindistro import spec as specmod
    from bindistro.release.sign import Signer
    from bindistro.store import Store
    sp = specmod.load(d / "bindistro.yml")
    st = Store(sp.state_path)
    for c in range(2, len(builds) + 1):
        Signer(sp, st).published_forms([a for a in st.db.candidate(c)[1] if a.kind == "package"])
    return d


def once_per_run(tmp_path_factory, worker_id: str, name: str, make) -> Path:
    """`make(dir)` run once for the whole run, not once per xdist worker (the first worker to ask
    makes it, under a lock; the others wait for it or find it made); each worker gets a hard-linked
    copy (link_copy), so what one worker's tests do to it is not seen by another's."""
    if worker_id == "master":
        return make(tmp_path_factory.mktemp(name))
    import fcntl
    shared = tmp_path_factory.getbasetemp().parent / "shared"
    shared.mkdir(exist_ok=True)
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / f"{name}.done"
        if not done.exists():
            shutil.rmtree(shared / name, ignore_errors=True)
            done.write_text(str(make(shared / name)))
        made = Path(done.read_text())
    return link_copy(made, tmp_path_factory.mktemp(name) / made.name)


@pytest.fixture(scope="session")
def mini_signed(tmp_path_factory, worker_id, mini_build):
    """All three formats, signed, on mini builds (every feed of both machines, a dozen packages per
    format): release 1 published, candidates 2 and 3 ready (signed_project); made once per run.
    Shared by the publishing tests, which work on hard-linked copies (those that need images or the
    sample's packages use a copy of the demo)."""
    return once_per_run(tmp_path_factory, worker_id, "publish-mini",
                        lambda d: signed_project(d / "p", [mini_build(n) for n in (1, 2, 3)]))


@pytest.fixture(scope="session")
def small_signed(tmp_path_factory, worker_id):
    """Like `mini_signed`, with a dozen packages per format all in the `all` feeds: for the crash
    test, which releases it some forty times and needs every kind of step, not many packages."""
    from bindistro_sample.churn import write_churn

    def make(base: Path) -> Path:
        return signed_project(base / "p", [write_churn(base / f"deploy-{n}", n, 12, prefix="crash") for n in (1, 2, 3)])
    return once_per_run(tmp_path_factory, worker_id, "publish-small", make)


@pytest.fixture(scope="module")
def pg():
    """A throw-away PostgreSQL server (Debian's binaries, pg_ctl in a temp dir, no TCP port)."""
    from pgserver import PgServer, available
    if not available():
        pytest.fail("PostgreSQL's server binaries are missing (scripts/setup.sh installs postgresql)")
    server = PgServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3server():
    """An S3 API on 127.0.0.1 (moto's S3 back end, served from a thread of this process): its
    endpoint URL. Not moto's own server: its dispatcher finds the service of every request by
    listing moto's ~150 service packages and matching ~1,000 URL patterns under one lock (2/3 of the
    server's CPU in the S3 tests, measured with py-spy), and werkzeug under it opens a connection
    per request (tests/wsgiserve.py); the tests speak only S3."""
    from moto.moto_server.werkzeug_app import create_backend_app
    from wsgiserve import start
    server, url = start(create_backend_app("s3"))
    yield url
    server.shutdown()


def s3_env(monkeypatch, endpoint: str) -> None:
    """The S3 endpoint and test credentials, from the environment as for a user (never the spec)."""
    for k, v in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1", "BINDISTRO_KEY_PASSPHRASE": ""}.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def project(tmp_path, cli):
    d = tmp_path / "proj"
    cli("-C", d, "init", "--no-boot")
    return d


def tree_copy(src: Path, dst: Path) -> Path:
    """A writable copy of a publish tree: `cp -a` keeps its generations' hard links and its symlinks
    (shutil.copytree made every generation a full copy: 1.4 GB for the demo's 350 MB tree)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    return dst


def copytree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("S.gpg-agent*"))
    for p in [dst, *dst.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o200)
    return dst


def _timeline(event: str, nodeid: str) -> None:
    """BINDISTRO_TEST_TIMELINE=FILE: when each test starts and ends on which worker (to see idle
    workers), with the worker's CPU and blocks written so far, its reaped children's included."""
    path = os.environ.get("BINDISTRO_TEST_TIMELINE")
    if path:
        import resource
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        sys_ = me.ru_stime + kids.ru_stime
        with open(path, "a") as f:
            f.write(f"{time.time():.1f} {os.environ.get('PYTEST_XDIST_WORKER', 'master')} {event} {nodeid} "
                    f"cpu={cpu:.1f} sys={sys_:.1f} out={me.ru_oublock + kids.ru_oublock}\n")


def pytest_runtest_logstart(nodeid, location):
    _timeline("start", nodeid)


def pytest_runtest_logfinish(nodeid, location):
    _timeline("end", nodeid)
