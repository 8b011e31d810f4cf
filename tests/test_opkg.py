"""Real opkg 0.6.3 (OE scarthgap's) against the published feeds, configured only by `device-config`."""
from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest

from bindistro.pm.upgrade import find_opkg
from conftest import tree_copy
from httpserve import serve

pytestmark = pytest.mark.slow


def opkg_bin() -> str:
    o = find_opkg()
    if not o:
        pytest.fail("no opkg: run `bash scripts/build-opkg.sh` (scripts/setup.sh does) with ../shared/tools beside the clone")
    return o


def device_root(cli, proj, url, root: Path) -> Path:
    """A root holding only OE's default opkg.conf, then what device-config writes."""
    (root / "etc/opkg").mkdir(parents=True)
    (root / "etc/opkg/opkg.conf").write_text("dest root /\noption lists_dir /var/lib/opkg/lists\n")
    cli("-C", proj, "device-config", "--machine", "qemux86-64", "--format", "ipk", "--url", url, root)
    return root


def opkg(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    # as on the device: the confs under /etc/opkg of the root, nothing given on the command line
    env = dict(os.environ, OPKG_CONF_DIR="/etc/opkg")
    r = subprocess.run([opkg_bin(), "-o", str(root), *args], capture_output=True, text=True, env=env)
    if ok:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def installed(root: Path) -> dict[str, str]:
    out = opkg(root, "list-installed").stdout
    return {l.split(" - ")[0]: l.split(" - ")[1] for l in out.splitlines() if " - " in l}


def test_device_config_works_with_real_opkg(demo, cli, tmp_path):
    with serve(demo / "publish", user=None) as url:
        root = device_root(cli, demo, url, tmp_path / "root")
        conf = (root / "etc/opkg/sample-distro-signature.conf").read_text()
        assert "option check_signature 1" in conf and "option signature_type gpg-asc" in conf
        assert (root / "etc/opkg/gpg/pubring.kbx").exists() and not (root / "etc/opkg/keys").exists()
        r = opkg(root, "update")
        assert "Packages.asc" in r.stdout + r.stderr            # the signatures were fetched and checked
        versions = sorted(l.split(" - ")[1] for l in opkg(root, "list", "htop").stdout.splitlines())
        assert len(versions) >= 2                                # release 1's and the newest
        old, new = versions[0], versions[-1]
        opkg(root, "install", f"htop={old}")
        assert installed(root)["htop"] == old
        opkg(root, "upgrade")
        assert installed(root)["htop"] == new
        opkg(root, "install", "--force-downgrade", f"htop={old}")    # revert: the feed keeps every version
        assert installed(root)["htop"] == old


def test_opkg_refuses_an_index_changed_after_signing(demo, cli, tmp_path):
    pub = tmp_path / "publish"
    tree_copy(demo / "publish", pub)
    feed = (pub / "feeds/ipk/core2-64").resolve()
    text = (feed / "Packages").read_bytes().replace(b"Interactive process viewer", b"Interactive process viewer!")
    for name, data in (("Packages", text), ("Packages.gz", gzip.compress(text, 9, mtime=0))):
        (feed / name).unlink()                    # a new file: the copy's generations keep theirs
        (feed / name).write_bytes(data)
    with serve(pub, user=None) as url:
        root = device_root(cli, demo, url, tmp_path / "root")
        r = opkg(root, "update", ok=False)
        assert r.returncode != 0 and "signature" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


def test_a_released_image_upgrades_with_its_own_feed_configuration(demo, tmp_path):
    """The image is preconfigured (issue 20): release 1.1's rootfs, with only what it carries under
    /etc/opkg (feeds, signature checking, keyring), updates from the published tree with real opkg,
    checking the signatures with the key baked into the image, and upgrades a package."""
    import tarfile
    import zstandard
    img = next((demo / "builds/release-1/tmp/deploy/images/qemux86-64").glob("*.rootfs-*.tar.zst"))
    root = tmp_path / "root"
    with open(img, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as z, tarfile.open(fileobj=z, mode="r|") as tf:
        for m in tf:
            if m.name.startswith("./etc/opkg/") and m.isfile():
                dest = root / m.name[2:]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(tf.extractfile(m).read())
    with serve(demo / "publish", user=None) as url:
        feeds = root / "etc/opkg/base-feeds.conf"
        assert "http://localhost:8000/feeds/ipk/core2-64" in feeds.read_text()
        feeds.write_text(feeds.read_text().replace("http://localhost:8000", url))    # where this test serves it
        r = opkg(root, "update")
        assert "Packages.asc" in r.stdout + r.stderr
        versions = sorted(l.split(" - ")[1] for l in opkg(root, "list", "htop").stdout.splitlines())
        opkg(root, "install", f"htop={versions[0]}")
        opkg(root, "upgrade")
        assert installed(root)["htop"] == versions[-1]
