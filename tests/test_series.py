"""Series (issue 21): two branches of the sample distro in one tree — the README's `bindistro demo`
run on the tests' one-series demo, as a tree that had one line of releases and opens a second
(kirkstone 1.1-1.3 keep feeds/, scarthgap 2.1 in feeds/scarthgap/, its next build on the nightly
channel) — devices moving from the older to the newer with real opkg, dnf and apt, and the
backport check."""
from __future__ import annotations

import json

import pytest

from bindistro.pm import AptRoot, DnfRoot, can_run
from conftest import Cli, link_copy
from httpserve import serve
from test_opkg import installed, opkg
from test_channels import releases_part
from test_publish import fsck_ok, tree_view

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def series_demo(demo, tmp_path_factory):
    d = link_copy(demo, tmp_path_factory.mktemp("series") / "demo")
    Cli()("demo", "--no-boot", "--out", d)      # the demo's default: it adds the next series and the channel
    return d


def test_demo_tree_holds_two_series_and_a_channel(series_demo, cli):
    demo = series_demo
    pub = demo / "publish"
    rels = cli.json("-C", demo, "releases")
    assert [(r["release"], r["series"]) for r in rels] == [
        ("1.1", "kirkstone"), ("1.2", "kirkstone"), ("1.3", "kirkstone"), ("2.1", "scarthgap")]
    listing = json.loads((pub / "releases.json").read_text())
    assert [(s["series"], s["feeds"]) for s in listing["series"]] == [("kirkstone", "feeds"), ("scarthgap", "feeds/scarthgap")]
    assert [s["upgrade_from"] for s in listing["series"]] == [[], ["kirkstone"]]
    (chan,) = listing["channels"]
    assert (chan["channel"], chan["series"], chan["not_a_release"]) == ("nightly", "scarthgap", True)
    assert chan["manifest"] == "channels/scarthgap/nightly/manifest.json"
    m = json.loads((pub / "releases/2.1/manifest.json").read_text())
    assert (m["series"], m["feed_root"]) == ("scarthgap", "feeds/scarthgap")
    assert all(p.startswith("feeds/scarthgap/") for f in m["feeds"].values() for p in f)
    assert all(a["path"].startswith("feeds/scarthgap/") for a in m["artifacts"] if a["kind"] == "package")
    for fmt in ("ipk", "rpm", "deb"):
        assert (pub / "feeds/scarthgap" / fmt).is_dir() and (pub / "channels/scarthgap/nightly/feeds" / fmt).is_dir()
    # the next branch renamed qemuarm64's SoC feed (its BSP renamed the SoC family)
    assert (pub / "feeds/scarthgap/ipk/cortexa57-qemuvirt/Packages").exists() and not (pub / "feeds/scarthgap/ipk/cortexa57-virt").exists()
    assert m["machines"]["qemuarm64"]["ipk"] == ["all", "cortexa57", "cortexa57-qemuvirt", "qemuarm64"]
    # the older series' feeds hold only its own packages: 2.1's libarchive14 is not there
    assert "libarchive14" not in (pub / "feeds/ipk/core2-64/Packages").read_text()
    assert "Package: libarchive14" in (pub / "feeds/scarthgap/ipk/core2-64/Packages").read_text()
    fsck_ok(cli, demo)

    # from binary to source: a restore or bundle of 2.1 points the next images at scarthgap's feeds
    cli("-C", demo, "restore", demo / "rebuild", "--release", "2.1")
    conf = (demo / "rebuild/conf/bindistro.conf").read_text()
    assert 'PACKAGE_FEED_BASE_PATHS = "feeds/scarthgap/${IMAGE_PKGTYPE}"' in conf
    cli("-C", demo, "bundle", "2.1", demo / "bundle")
    feeds = (demo / "bundle/conf/bindistro/feeds/qemuarm64/ipk/etc/opkg/base-feeds.conf").read_text()
    assert "/feeds/scarthgap/ipk/cortexa57-qemuvirt" in feeds and "/feeds/ipk/" not in feeds

    # verify of 2.1 tested the path from kirkstone's latest release with the solver and the real
    # package managers, and the soname bump and the merged package passed
    rep = cli.json("-C", demo, "verify", str(m["candidate"]), "--last")
    assert rep["summary"]["error"] == 0
    passed = {(f["details"]["format"], f["details"]["machine"]) for f in rep["findings"]
              if f["gate"] == "pm-upgrade" and f["rule"] == "pm-upgrade.passed" and f["details"]["path"] == "series-kirkstone"}
    assert {("ipk", "qemux86-64"), ("rpm", "qemux86-64"), ("deb", "qemux86-64")} <= passed
    if can_run("aarch64"):      # the renamed SoC feed's libdrm2 too (scripts/setup.sh registers qemu-user)
        assert ("ipk", "qemuarm64") in passed
    solved = [f for f in rep["findings"] if f["gate"] == "upgrade" and f["rule"] == "upgrade.clean"
              and f["details"]["path"] == "series-kirkstone"]
    assert len(solved) == 6 and all(f["details"]["from"] == "1.3" for f in solved)

    # a channel of each series, side by side; publishing and removing one never changes a byte of
    # the releases (the tree hashed before and after)
    before = tree_view(pub)
    r = cli.json("-C", demo, "publish", str(rels[2]["candidate"]), "--channel", "nightly")
    assert (r["series"], r["path"]) == ("kirkstone", "channels/kirkstone/nightly")
    assert sorted((c["series"], c["channel"]) for c in cli.json("-C", demo, "channels")) == [
        ("kirkstone", "nightly"), ("scarthgap", "nightly")]
    fsck_ok(cli, demo)
    assert cli("-C", demo, "publish", "--remove-channel", "nightly", ok=False).exit_code == 1    # which series?
    cli("-C", demo, "publish", "--remove-channel", "nightly", "--series", "kirkstone")
    assert releases_part(tree_view(pub)) == releases_part(before)
    assert not (pub / "channels/kirkstone").exists() and (pub / "channels/scarthgap/nightly/manifest.json").exists()
    fsck_ok(cli, demo)


def _versions(pub, release, fmt, name):
    m = json.loads((pub / f"releases/{release}/manifest.json").read_text())
    return {a["version"] for a in m["artifacts"] if a.get("format") == fmt and a.get("name") == name}


def test_device_moves_to_the_next_series_with_real_package_managers(series_demo, cli, tmp_path):
    """A kirkstone device installs from its feeds, gets scarthgap's device-config, upgrades: what
    verify's cross-series path does, done as a user would, with opkg, dnf and apt."""
    demo = series_demo
    pub = demo / "publish"
    (htop_2,) = _versions(pub, "2.1", "ipk", "htop")
    with serve(pub, user=None) as url:
        # opkg (the prototype's format)
        root = tmp_path / "opkg"
        (root / "etc/opkg").mkdir(parents=True)
        (root / "etc/opkg/opkg.conf").write_text("dest root /\noption lists_dir /var/lib/opkg/lists\n")
        cli("-C", demo, "device-config", "--series", "kirkstone", "--machine", "qemux86-64", "--format", "ipk",
            "--url", url, root)
        assert f"{url}/feeds/ipk/core2-64" in (root / "etc/opkg/base-feeds.conf").read_text()
        opkg(root, "update")
        opkg(root, "install", "busybox", "opkg", "formfactor", "htop")
        before = installed(root)
        assert "libarchive13" in before and "formfactor" in before and before["htop"] in _versions(pub, "1.3", "ipk", "htop")
        cli("-C", demo, "device-config", "--series", "scarthgap", "--machine", "qemux86-64", "--format", "ipk",
            "--url", url, root)
        assert f"{url}/feeds/scarthgap/ipk/core2-64" in (root / "etc/opkg/base-feeds.conf").read_text()
        r = opkg(root, "update")
        assert "Packages.asc" in r.stdout + r.stderr          # the new series' feeds are signed and checked
        opkg(root, "upgrade")
        after = installed(root)
        assert after["htop"] == htop_2
        assert "libarchive14" in after and "libarchive13" not in after        # the soname bump replaced it
        assert "formfactor" not in after and after["base-files"] in _versions(pub, "2.1", "ipk", "base-files")  # merged

        # qemuarm64: its SoC feed has another name in scarthgap. opkg ignores an installed package whose
        # architecture arch.conf does not list, so the new config keeps the old name, lowest, without a feed
        arm = tmp_path / "opkg-arm"
        (arm / "etc/opkg").mkdir(parents=True)
        (arm / "etc/opkg/opkg.conf").write_text("dest root /\noption lists_dir /var/lib/opkg/lists\n")
        cfg = ["--machine", "qemuarm64", "--format", "ipk", "--url", url, arm]
        cli("-C", demo, "device-config", "--series", "kirkstone", *cfg)
        opkg(arm, "update")
        opkg(arm, "install", "libdrm2")
        assert installed(arm)["libdrm2"] in _versions(pub, "1.3", "ipk", "libdrm2")
        cli("-C", demo, "device-config", "--series", "scarthgap", *cfg)
        conf = (arm / "etc/opkg/arch.conf").read_text().split()
        assert conf.index("cortexa57-virt") < conf.index("cortexa57") < conf.index("cortexa57-qemuvirt")
        assert "cortexa57-virt" not in (arm / "etc/opkg/base-feeds.conf").read_text()
        opkg(arm, "update")
        opkg(arm, "upgrade")
        assert installed(arm)["libdrm2"] in _versions(pub, "2.1", "ipk", "libdrm2")
        assert "cortexa57-qemuvirt" in opkg(arm, "status", "libdrm2").stdout

        # dnf and apt: the same move, configured only by device-config
        for fmt in ("rpm", "deb"):
            for series in ("kirkstone", "scarthgap"):
                cli("-C", demo, "device-config", "--series", series, "--machine", "qemux86-64", "--format", fmt,
                    "--url", url, tmp_path / f"{fmt}-{series}")
        def repo(series):
            dev = tmp_path / f"rpm-{series}"
            return (dev / "etc/yum.repos.d/sample-distro.repo").read_text().replace("file:///etc/pki", f"file://{dev}/etc/pki")
        dnf = DnfRoot(tmp_path / "dnf", [], ["qemux86_64", "core2_64", "noarch"], repo_text=repo("kirkstone"))
        dnf.dnf("install", "htop", "opkg")
        assert "libarchive13" in dnf.installed()
        (dnf.root / "etc/yum.repos.d/bindistro.repo").write_text(repo("scarthgap"))
        dnf.dnf("distro-sync", "--refresh")          # as the site says a device moves
        got = dnf.installed()
        assert got["htop"] in _versions(pub, "2.1", "rpm", "htop") and "libarchive14" in got and "libarchive13" not in got

        # qemuarm64 on dnf: `upgrade` would leave libdrm2 on its old architecture (measured); distro-sync moves it
        for series in ("kirkstone", "scarthgap"):
            cli("-C", demo, "device-config", "--series", series, "--machine", "qemuarm64", "--format", "rpm",
                "--url", url, tmp_path / f"rpm-arm-{series}")
        def arm_repo(series):
            dev = tmp_path / f"rpm-arm-{series}"
            return (dev / "etc/yum.repos.d/sample-distro.repo").read_text().replace("file:///etc/pki", f"file://{dev}/etc/pki")
        if can_run("aarch64"):
            # the host's rpm accepts every arch; dnf sees what the device's own etc/dnf/vars/arch lists
            archs = ["qemuarm64", "cortexa57_qemuvirt", "cortexa57_virt", "cortexa57", "noarch"]
            dnf = DnfRoot(tmp_path / "dnf-arm", [], archs, repo_text=arm_repo("kirkstone"))
            def arch_var(series):
                data = (tmp_path / f"rpm-arm-{series}/etc/dnf/vars/arch").read_text()
                (dnf.root / "etc/dnf/vars/arch").write_text(data)
                return data
            assert arch_var("kirkstone") == "sdk_provides_dummy_target:qemuarm64:cortexa57-virt:cortexa57".replace("-", "_")
            dnf.dnf("install", "libdrm2")
            (dnf.root / "etc/yum.repos.d/bindistro.repo").write_text(arm_repo("scarthgap"))
            # the repo file alone is not enough: with the old arch list distro-sync keeps libdrm2 (measured)
            dnf.dnf("distro-sync", "--refresh")
            assert dnf.installed()["libdrm2"] in _versions(pub, "1.3", "rpm", "libdrm2")
            assert "cortexa57_virt" in arch_var("scarthgap")          # kept, lowest, beside the new name
            dnf.dnf("distro-sync", "--refresh")
            assert dnf.installed()["libdrm2"] in _versions(pub, "2.1", "rpm", "libdrm2")

        def sources(series):
            dev = tmp_path / f"deb-{series}"
            return (dev / "etc/apt/sources.list.d/sample-distro.sources").read_text().replace(
                "Signed-By: /usr/share", f"Signed-By: {dev}/usr/share")
        apt = AptRoot(tmp_path / "apt", [], sources_text=sources("kirkstone"))
        apt.apt_get("update")
        apt.apt_get("install", "busybox", "htop", "opkg")
        assert "libarchive13" in apt.installed()
        (apt.apt / "etc/apt/sources.list.d/device.sources").write_text(sources("scarthgap"))
        apt.apt_get("update")
        apt.apt_get("dist-upgrade")
        got = apt.installed()
        assert got["htop"] in _versions(pub, "2.1", "deb", "htop") and "libarchive14" in got and "libarchive13" not in got


def test_backport_newer_than_the_next_series_is_refused(series_demo, cli, tmp_path):
    proj = link_copy(series_demo, tmp_path / "p")
    # a kirkstone update that carries a newer htop than scarthgap has
    cli("-C", proj, "restore", proj / "builds/release-4", "--series", "kirkstone")
    cli("sample-build", proj / "builds/release-4", "--release", "4", "--formats", "ipk", "--inject", "series-backport-newer")
    cand = cli.json("-C", proj, "stage", "--series", "kirkstone", proj / "builds/release-4")["candidate"]
    cli("-C", proj, "verify", str(cand), "--gate", "closure")
    assert cli.json("-C", proj, "release", str(cand))["release"] == "1.4"
    (old,) = _versions(proj / "publish", "1.4", "ipk", "htop")
    # stage without --series is ambiguous now: one line naming the series
    r = cli("-C", proj, "stage", proj / "builds/scarthgap-nightly", ok=False)
    assert r.exit_code == 1 and "several series (kirkstone, scarthgap): say which with --series" in r.stderr
    nxt = cli.json("-C", proj, "stage", "--series", "scarthgap", proj / "builds/scarthgap-nightly")["candidate"]
    r = cli("-C", proj, "verify", str(nxt), "--gate", "upgrade", "--json", ok=False)
    assert r.exit_code == 1
    bad = [f for f in json.loads(r.stdout)["findings"] if f["rule"] == "upgrade.backport-newer"]
    assert {f["subject"] for f in bad} == {"htop", "htop-dev", "htop-dbg"}      # the recipe's packages, nothing else
    f = next(f for f in bad if f["subject"] == "htop")
    new = f["details"]["ours"]
    assert f["details"]["theirs"] == old and old in f["message"] and new in f["message"] and "kirkstone" in f["message"]
    # a kirkstone build staged as scarthgap by mistake: its images point at kirkstone's feeds
    wrong = cli.json("-C", proj, "stage", "--series", "scarthgap", proj / "builds/release-4")["candidate"]
    r = cli("-C", proj, "verify", str(wrong), "--gate", "image-feeds", "--json", ok=False)
    assert r.exit_code == 1
    msgs = [f["message"] for f in json.loads(r.stdout)["findings"] if f["severity"] == "error"]
    # x86: feed lines outside feeds/scarthgap/; arm: an arch (the old SoC feed) scarthgap does not have
    assert any("feeds/scarthgap/ipk/" in m for m in msgs) and any("cortexa57-virt" in m for m in msgs), msgs
    # a series no longer supported is no path (and no backport check) any more
    spec = (proj / "bindistro.yml").read_text()
    (proj / "bindistro.yml").write_text(spec.replace("  kirkstone:\n    path: feeds\n",
                                                     "  kirkstone:\n    path: feeds\n    supported: false\n"))
    rep = cli.json("-C", proj, "verify", str(nxt), "--gate", "upgrade")
    assert not [f for f in rep["findings"] if f["rule"] == "upgrade.backport-newer"]

    # the machines of a next series from a build of it (the renamed SoC feed), as init --from-build reads them
    r = cli.json("-C", proj, "series", "add", "walnascar", "--version", "3", "--from-build", proj / "builds/scarthgap-release-1")
    assert r["machines"]["qemuarm64"] == ["all", "cortexa57", "cortexa57-qemuvirt", "qemuarm64"]
    assert [x["series"] for x in cli.json("-C", proj, "series", "list")] == ["kirkstone", "scarthgap", "walnascar"]


def test_left_behind_names_what_the_package_manager_kept_old():
    """The pm-upgrade gate's check after a path: a package older than the feeds' newest, with the
    package manager silent about it (dnf `upgrade` across a renamed architecture does exactly that)."""
    from bindistro.pm.upgrade import PathResult
    from bindistro.formats import get as get_format
    from bindistro.model import Artifact
    from bindistro.verify.gates.pm_upgrade import left_behind
    feed = [Artifact(f"{n}.rpm", "package", "0" * 64, 1, format="rpm", name=n, version=v, arch="cortexa57")
            for n, v in (("libdrm2", "2.4.120-r0.0"), ("libdrm2", "3.0.0-r0.0"), ("busybox", "1:2.0.0-r0.0"))]
    res = PathResult("rpm", "qemuarm64", "series-kirkstone", "1.3", after={"libdrm2": "2.4.120-r0.0", "busybox": "1:2.0.0-r0.0"})
    newest = get_format("rpm").newest((a.name, a.version) for a in feed)
    (f,) = left_behind(res, newest)
    assert (f.rule, f.subject, f.severity) == ("pm-upgrade.left-behind", "libdrm2", "error") and "3.0.0-r0.0" in f.message
    res.after["libdrm2"] = "3.0.0-r0.0"
    assert left_behind(res, newest) == []



def test_cumulative_feeds_from_released_files_are_the_releases_own(series_demo):
    """The store keeps each package file's first release per series (released_files, schema 0008):
    the cumulative feeds read from it are those a query over every release's whole build gives,
    for the whole store and for each series."""
    from sqlalchemy import func, select
    from bindistro.store import Store
    from bindistro.store.schema import artifacts, releases
    store = Store(series_demo / "state")

    def over_every_build(cands):
        first = (select(func.min(artifacts.c.id)).join(releases, releases.c.candidate == artifacts.c.candidate)
                 .where(artifacts.c.kind == "package").group_by(artifacts.c.format, artifacts.c.arch, artifacts.c.sha256))
        if cands is not None:
            first = first.where(artifacts.c.candidate.in_(cands))
        with store.db.engine.connect() as c:
            return [tuple(r) for r in c.execute(select(artifacts.c.path, artifacts.c.sha256)
                                                .where(artifacts.c.id.in_(first)).order_by(artifacts.c.id))]
    rels = store.db.releases()
    kirkstone = [r.candidate for r in rels if r.series in (None, "kirkstone")]
    scarthgap = [r.candidate for r in rels if r.series == "scarthgap"]
    assert kirkstone and scarthgap
    for cands in (None, kirkstone, scarthgap):
        want = over_every_build(cands)
        assert len(want) > 1000 and [(a.path, a.sha256) for a in store.db.released_packages(cands)] == want
    store.close()
