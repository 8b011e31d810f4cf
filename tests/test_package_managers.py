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
