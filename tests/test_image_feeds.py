"""Images preconfigured for their feeds (issue 20): `restore` (before the first release too) makes
the build's images carry feed lines, signature checking and the release key; the image-feeds gate
reads them back out of each rootfs and refuses an image a device could not upgrade from safely."""
from __future__ import annotations

import io
import json
import os
import tarfile

import pytest

from bindistro.device import feed_files
from bindistro.keys import Keyring
from bindistro.verify.gates import image_feeds as G


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    from conftest import Cli
    cli = Cli()
    d = tmp_path_factory.mktemp("image-feeds")
    os.environ.setdefault("BINDISTRO_KEY_PASSPHRASE", "")
    cli("-C", d / "p", "init", "--no-boot")
    fpr = cli.json("-C", d / "p", "keys", "generate", "--uid", "t <t@bindistro.invalid>", "--algorithm", "ed25519")["fingerprint"]
    return cli, d, fpr


def gate(cli, proj, build):
    cand = cli.json("-C", proj, "stage", build)["candidate"]
    r = cli("-C", proj, "verify", cand, "--gate", "image-feeds", "--json", ok=None)
    return r.exit_code, [f for f in json.loads(r.stdout)["findings"] if f["gate"] == "image-feeds"]


@pytest.mark.slow
def test_restored_build_makes_preconfigured_images_and_the_gate_says_which_are_not(signed):
    cli, d, fpr = signed
    # before the first release, restore writes the feed settings alone
    assert "no release yet" in cli("-C", d / "p", "restore", d / "b1").stdout
    conf = (d / "b1/conf/bindistro.conf").read_text()
    assert 'INHERIT += "bindistro-feeds"' in conf and 'PACKAGE_FEED_ARCHS:qemuarm64 = "all cortexa57 cortexa57-virt qemuarm64"' in conf
    assert "ROOTFS_POSTPROCESS_COMMAND" in (d / "b1/classes/bindistro-feeds.bbclass").read_text()
    cli("sample-build", d / "b1", "--release", 1, "--formats", "ipk")
    code, fs = gate(cli, d / "p", d / "b1")
    assert code == 0 and sorted(f["rule"] for f in fs) == ["image-feeds.summary"] * 2, fs

    # the same build with the inject: no feed configuration at all; exit 1 naming image and file
    cli("sample-build", d / "b1", "--release", 1, "--formats", "ipk", "--inject", "image-not-preconfigured")
    code, fs = gate(cli, d / "p", d / "b1")
    errs = [f for f in fs if f["severity"] == "error"]
    assert code == 1 and {f["rule"] for f in errs} == {"image-feeds.not-preconfigured"} and len(errs) == 2
    assert all("rootfs" in f["subject"] and "/etc/opkg/*.conf" in f["message"] for f in errs)

    # a build configured the way OE alone does it (PACKAGE_FEED_URIS): feed lines, but opkg checks
    # no signature and has no key
    cli("sample-build", d / "plain", "--release", 1, "--formats", "ipk")
    code, fs = gate(cli, d / "p", d / "plain")
    assert code == 1 and {f["rule"] for f in fs if f["severity"] == "error"} == {
        "image-feeds.no-signature-check", "image-feeds.no-key"}


def rootfs(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for p, data in files.items():
            ti = tarfile.TarInfo("./" + p)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["rpm", "deb"])
def test_dnf_and_apt_configuration_as_device_config_writes_it_reads_back(signed, tmp_path, fmt):
    """What device-config (and so the image class) writes for dnf and apt is what the gate reads as
    signed feeds of this distro; OE's own apt lines (`deb [trusted=yes]`) are unchecked."""
    _cli, d, fpr = signed
    key = Keyring(d / "p/state/gnupg").export(fpr)
    files = feed_files("distro", "http://feeds.example.org/", fmt, ["all", "core2-64", "qemux86_64"], {fpr: key})
    files["usr/bin/dnf" if fmt == "rpm" else "usr/bin/apt-get"] = b"#!/bin/sh\n"
    (tmp_path / "img.tar").write_bytes(rootfs(files))
    s = G.scan(tmp_path / "img.tar", "img.tar")
    assert s["managers"] == {fmt}
    feeds = G.feeds_rpm(s["config"]) if fmt == "rpm" else G.feeds_deb(s["config"])
    urls = [u for u, _p, _o in feeds]
    names = ["noarch", "core2_64", "qemux86_64"] if fmt == "rpm" else ["all", "core2-64", "qemux86_64"]
    assert urls == [f"http://feeds.example.org/feeds/{fmt}/{n}" for n in names]
    for _u, _p, o in feeds:
        if fmt == "rpm":
            assert o["repo_gpgcheck"] == "1"
            keyfiles = [k.removeprefix("file://") for k in o["gpgkey"].split()]
        else:
            assert not o["trusted"]
            keyfiles = [o["signed-by"]]
        assert fpr in set().union(*(G.key_fprs(s["keys"][k]) for k in keyfiles))
    oe = G.feeds_deb({"/etc/apt/sources.list": "deb [trusted=yes] http://feeds.example.org/feeds/deb/all ./\n"})
    assert oe == [("http://feeds.example.org/feeds/deb/all", "/etc/apt/sources.list", {"trusted": True, "signed-by": ""})]


@pytest.mark.slow
def test_soc_family_feeds_come_from_the_build(signed, tmp_path):
    """qemuarm64's SoC family feed (cortexa57-virt, like meta-freescale's aarch64-mx8qxp) is read from
    the build: `init --from-build` takes it, and a spec that leaves it out fails verify naming it."""
    from bindistro.yocto.machines import from_buildhistory
    from conftest import need_realdata
    cli, d, _fpr = signed
    b = d / "soc"
    cli("-C", d / "p", "restore", b)                  # configured for the project's feeds and key
    cli("sample-build", b, "--release", 1, "--formats", "ipk")
    cli("-C", tmp_path / "q", "init", "--no-boot", "--from-build", b)
    spec = (tmp_path / "q/bindistro.yml").read_text()
    assert "qemuarm64:\n    archs:\n    - all\n    - cortexa57\n    - cortexa57-virt\n    - qemuarm64\n" in spec

    text = (d / "p/bindistro.yml").read_text()
    (d / "p/bindistro.yml").write_text(text.replace("    - cortexa57-virt\n", ""))
    try:
        code, fs = gate(cli, d / "p", b)
    finally:
        (d / "p/bindistro.yml").write_text(text)
    errs = [f for f in fs if f["severity"] == "error"]
    # the image (built for the feeds) also points at the feed this spec would not publish
    assert code == 1 and sorted(f["rule"] for f in errs) == ["image-feeds.arch-not-in-spec", "image-feeds.wrong-feed"]
    assert all("cortexa57-virt" in f["message"] for f in errs)
    assert "/etc/opkg/arch.conf" in next(f["message"] for f in errs if f["rule"].endswith("arch-not-in-spec"))

    # a real build's buildhistory (balenaOS on an i.MX8X: SoC arch aarch64-mx8qxp)
    import subprocess
    bundle = need_realdata("buildhistory") / "balena-dunfell-ccimx8x-ipk.bundle"
    subprocess.run(["git", "clone", "-q", str(bundle), str(tmp_path / "bh")], check=True)
    assert from_buildhistory(tmp_path / "bh/images") == {
        "ccimx8x-sbc-pro": ["all", "aarch64", "aarch64-mx8qxp", "ccimx8x_sbc_pro"]}


def test_a_manifest_without_machine_feeds_writes_no_class(tmp_path):
    """Older release manifests name no per-machine feeds: restore must not write the class, whose
    rootfs step would stop every image build for want of a machine's files."""
    from bindistro.restore import image_feeds
    (tmp_path / "classes").mkdir()
    (tmp_path / "classes/bindistro-feeds.bbclass").write_text("left by an earlier restore\n")
    lines = image_feeds.write(tmp_path, "distro", "http://feeds.example.org", {}, {}, "asc")
    assert not any("INHERIT" in l for l in lines) and not (tmp_path / "classes/bindistro-feeds.bbclass").exists()


def test_the_class_rootfs_step_runs_as_bitbake_would_run_it(tmp_path):
    """bindistro-feeds.bbclass's shell function, run by sh with the variables bitbake would expand:
    OE's own unchecked apt lines and dnf repo files go, the machine's files come in; a machine
    without files stops the build with bbfatal."""
    import re
    import subprocess
    from bindistro.restore import image_feeds
    body = re.search(r"bindistro_feed_files \(\) \{\n(.*)\n\}", image_feeds.CLASS, re.S).group(1)
    files = tmp_path / "feeds"
    (files / "qemux86-64/deb/etc/apt/sources.list.d").mkdir(parents=True)
    (files / "qemux86-64/deb/etc/apt/sources.list.d/distro.sources").write_text("Types: deb\n")
    root = tmp_path / "rootfs"
    (root / "etc/apt").mkdir(parents=True)
    (root / "etc/yum.repos.d").mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text("deb [trusted=yes] http://x/feeds/deb/all ./\ndeb http://mirror/debian stable main\n")
    (root / "etc/yum.repos.d/oe-remote-repo-feeds-rpm.repo").write_text("[oe]\n")

    def run(machine):
        env = {"BINDISTRO_FEED_FILES": str(files), "MACHINE": machine, "IMAGE_PKGTYPE": "deb",
               "IMAGE_ROOTFS": str(root), "sysconfdir": "/etc", "PATH": "/usr/bin:/bin"}
        return subprocess.run(["sh", "-ec", 'bbfatal() { echo "FATAL: $*" >&2; exit 1; }\n' + body], env=env,
                              capture_output=True, text=True)
    r = run("qemux86-64")
    assert r.returncode == 0, r.stderr
    assert (root / "etc/apt/sources.list").read_text() == "deb http://mirror/debian stable main\n"
    assert not (root / "etc/yum.repos.d/oe-remote-repo-feeds-rpm.repo").exists()
    assert (root / "etc/apt/sources.list.d/distro.sources").read_text() == "Types: deb\n"
    r = run("qemuarm64")
    assert r.returncode == 1 and "no feed configuration for qemuarm64" in r.stderr
