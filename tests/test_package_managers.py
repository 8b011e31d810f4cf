"""Published rpm and deb feeds, used by the real dnf and apt: install newest, go back to release 1,
upgrade again. Only the published tree is used."""
import json

from bindistro.pm import AptRoot, DnfRoot


def versions_of(pub, fmt, name):
    out = []
    for rel in json.loads((pub / "releases.json").read_text())["releases"]:
        m = json.loads((pub / rel["manifest"]).read_text())
        out += [a["version"] for a in m["artifacts"]
                if a["kind"] == "package" and a["format"] == fmt and a["name"] == name and a["arch"] in ("core2_64", "core2-64")]
    return out


def test_dnf_install_downgrade_upgrade(demo, tmp_path):
    pub = demo / "publish"
    v = versions_of(pub, "rpm", "htop")
    first, newest = v[0], v[-1]
    assert first != newest
    feeds = [f"file://{pub}/feeds/rpm/{a}" for a in ("noarch", "core2_64", "qemux86_64")]
    root = DnfRoot(tmp_path, feeds, ["qemux86_64", "core2_64", "noarch"])
    root.dnf("install", "htop")
    assert root.installed()["htop"] == newest
    assert "busybox" in root.installed()     # /bin/sh for the scriptlets came from the feed
    root.dnf("downgrade", f"htop-{first}")
    assert root.installed()["htop"] == first
    root.dnf("upgrade")
    assert root.installed()["htop"] == newest


def test_apt_install_old_then_upgrade(demo, tmp_path):
    pub = demo / "publish"
    v = versions_of(pub, "deb", "htop")
    first, newest = v[0], v[-1]
    root = AptRoot(tmp_path, [f"file:{pub}/feeds/deb/{a}" for a in ("all", "core2-64", "qemux86_64")])
    root.apt_get("update")
    root.apt_get("install", "busybox")     # the device's base system: /bin/sh for maintainer scripts
    root.apt_get("install", f"htop={first}")
    assert root.installed()["htop"] == first
    root.apt_get("upgrade")
    assert root.installed()["htop"] == newest


def test_rpm_and_deb_feeds_list_every_released_version(demo):
    from bindistro.formats import get
    pub = demo / "publish"
    for fmt, arch in (("rpm", "core2_64"), ("deb", "core2-64")):
        f = get(fmt)
        feed = pub / "feeds" / fmt / arch
        (idx,) = f.find_indexes(feed)
        listed = {(e.name, e.version) for e in f.read_index(idx)}
        for rel in json.loads((pub / "releases.json").read_text())["releases"]:
            m = json.loads((pub / rel["manifest"]).read_text())
            for a in m["artifacts"]:
                if a["kind"] == "package" and a["format"] == fmt and a["arch"] == arch:
                    assert (a["name"], a["version"]) in listed


def test_kept_roots_are_copies_and_the_least_recently_used_go_first(tmp_path, monkeypatch):
    """bindistro/pm/roots.py: a restored root is a copy (changing it leaves the kept one as it was);
    beyond KEEP roots or KEEP_BYTES the least recently used are removed; a missing root is a miss."""
    import os
    from bindistro.pm import roots
    monkeypatch.setattr(roots, "KEEP", 2)
    kept = roots.Roots(tmp_path / "kept")
    for i in range(3):
        root = tmp_path / f"root{i}"
        (root / "etc").mkdir(parents=True)
        (root / "etc/conf").write_text(f"root {i}\n")
        (root / "bin").mkdir()
        (root / "bin/sh").symlink_to("busybox")
        kept.keep(f"k{i}", root)
        os.utime(tmp_path / "kept" / f"k{i}", (1000 + i, 1000 + i))
        kept.keep(f"k{i}", root)            # kept already: nothing changes
    # keeping k2 pruned k0, the least recently used
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["k1", "k2"]
    assert not kept.restore("k0", tmp_path / "r0") and not (tmp_path / "r0").exists()
    assert kept.restore("k1", tmp_path / "r1")
    assert (tmp_path / "r1/etc/conf").read_text() == "root 1\n" and os.readlink(tmp_path / "r1/bin/sh") == "busybox"
    (tmp_path / "r1/etc/conf").write_text("changed by an upgrade\n")
    assert (tmp_path / "kept/k1/root/etc/conf").read_text() == "root 1\n"
    monkeypatch.setattr(roots, "KEEP_BYTES", 1)      # the newest alone is over: all go
    kept.keep("k3", tmp_path / "root0")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == []
    assert not roots.Roots(None).restore("k1", tmp_path / "r2")      # BINDISTRO_PM_ROOTS=off
