"""Channels for testers (issue 21, part 4): a candidate that is not a release, published under
channels/<name>/ with the guarantees of a release (signed, atomic, checked by fsck, crash-safe),
replaced by the next one, removable, never touching a release's bytes."""
from __future__ import annotations

import json
import os
import signal

import pytest

from bindistro.model import LISTINGS
from conftest import link_copy
from httpserve import serve
from test_opkg import installed, opkg
from test_publish import cli_in_child, drop, fsck_ok, tree_view

pytestmark = pytest.mark.slow


def releases_part(view: dict[str, str]) -> dict[str, str]:
    # everything a release published: a channel may change only channels/ and the listing
    # (releases.json, and security.txt and SECURITY.md, which carry the day they were written)
    return {k: v for k, v in view.items() if not k.startswith("channels/") and k.rsplit("/", 1)[-1] not in LISTINGS}


def test_channel_is_published_replaced_and_removed_without_touching_releases(mini_signed, cli, tmp_path):
    proj = link_copy(mini_signed, tmp_path / "p")
    pub = proj / "publish"
    before = tree_view(pub)
    r = cli.json("-C", proj, "publish", 3, "--channel", "nightly")
    assert r["path"] == "channels/nightly" and r["packages"] > 0
    after = tree_view(pub)
    assert releases_part(after) == releases_part(before)          # not one byte of the releases changed
    listing = json.loads((pub / "releases.json").read_text())
    assert [x["release"] for x in listing["releases"]] == ["1.1"]
    (chan,) = listing["channels"]
    assert (chan["channel"], chan["candidate"], chan["not_a_release"]) == ("nightly", 3, True) and chan["verify"]
    manifest = json.loads((pub / "channels/nightly/manifest.json").read_text())
    assert manifest["not_a_release"] and (pub / "channels/nightly/manifest.json.asc").exists()
    assert (pub / "channels/nightly/feeds/ipk/core2-64/Packages.asc").exists()
    assert (pub / "channels/nightly/feeds/rpm/core2_64/repodata/repomd.xml.asc").exists()
    assert (pub / "channels/nightly/feeds/deb/core2-64/InRelease").exists()
    fsck_ok(cli, proj, "--publish")
    assert cli.json("-C", proj, "channels")[0]["candidate"] == 3

    # a test device follows the channel with real opkg: candidate 3's tool, signatures checked
    want = next(a["version"] for a in manifest["artifacts"] if a.get("name") == "tool" and a.get("format") == "ipk"
                and a.get("arch") == "core2-64")
    root = tmp_path / "dev"
    (root / "etc/opkg").mkdir(parents=True)
    (root / "etc/opkg/opkg.conf").write_text("dest root /\noption lists_dir /var/lib/opkg/lists\n")
    with serve(pub, user=None) as url:
        cli("-C", proj, "device-config", "--machine", "qemux86-64", "--format", "ipk", "--url", url,
            "--channel", "nightly", root)
        assert f"{url}/channels/nightly/feeds/ipk/core2-64" in (root / "etc/opkg/base-feeds.conf").read_text()
        r = opkg(root, "update")
        assert "Packages.asc" in r.stdout + r.stderr
        opkg(root, "install", "tool")
        assert installed(root)["tool"] == want

    # the next nightly replaces the channel's content; the releases still do not change
    cli("-C", proj, "publish", 2, "--channel", "nightly")
    assert json.loads((pub / "channels/nightly/manifest.json").read_text())["candidate"] == 2
    listed = {a["path"] for a in json.loads((pub / "channels/nightly/manifest.json").read_text())["artifacts"]}
    on_disk = {k for k in tree_view(pub) if k.startswith("channels/nightly/") and "/feeds/" in k
               and k.endswith((".ipk", ".rpm", ".deb"))}
    assert on_disk == {p for p in listed if p.endswith((".ipk", ".rpm", ".deb"))}
    assert releases_part(tree_view(pub)) == releases_part(before)
    fsck_ok(cli, proj, "--publish")

    cli("-C", proj, "publish", "--remove-channel", "nightly")
    assert not (pub / "channels/nightly").exists()
    assert "channels" not in json.loads((pub / "releases.json").read_text())
    assert releases_part(tree_view(pub)) == releases_part(before)
    fsck_ok(cli, proj, "--publish")
    r = cli("-C", proj, "device-config", "--machine", "qemux86-64", "--channel", "nightly", tmp_path / "d2", ok=False)
    assert r.exit_code == 1 and "no channel 'nightly'" in r.stderr
    assert cli("-C", proj, "publish", "--remove-channel", "nightly", ok=False).exit_code == 1
    assert cli("-C", proj, "publish", 3, "--channel", "Bad/Name", ok=False).exit_code == 1
    drop(proj)


def test_channel_publishing_killed_at_any_point(small_signed, cli, tmp_path):
    """SIGKILL at fault points spread over a channel publish: the tree reads as before each time,
    fsck passes, and the rerun publishes the channel."""
    probe = link_copy(small_signed, tmp_path / "probe")
    log = tmp_path / "points.log"
    assert cli_in_child(probe, ["publish", "2", "--channel", "nightly"], 0, log) == 0
    points = [line.split() for line in log.read_text().splitlines()]
    total = len(points)
    picks = sorted({max(1, round(i * total / 8)) for i in range(1, 9)}
                   | {int(n) for n, what in points if what in ("finished", "committed", "switch")})
    before = tree_view(small_signed / "publish")
    for k in picks:
        proj = link_copy(small_signed, tmp_path / f"k{k}")
        status = cli_in_child(proj, ["publish", "2", "--channel", "nightly"], k)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (k, status)
        view = tree_view(proj / "publish")
        if points[k - 1][1] not in ("committed", "switch"):     # after the commit the next command rolls forward
            assert view == before, f"killed at point {k} ({points[k - 1][1]})"
        fsck_ok(cli, proj, "--publish")
        assert cli.json("-C", proj, "publish", 2, "--channel", "nightly")["candidate"] == 2
        fsck_ok(cli, proj)
        assert releases_part(tree_view(proj / "publish")) == releases_part(before)
        drop(proj)
