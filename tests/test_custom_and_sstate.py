"""Custom feeds signed with the user's own key, and sstate signatures checked at verify."""
import shutil
import json
import subprocess

from bindistro_sample.ipkbuild import write_ipk
from conftest import release_build
from bindistro_sample.packages import build_packages
from bindistro_sample.recipes import Recipe


def gpg_verify(home, sig, data):
    r = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--status-fd", "1", "--verify", str(sig), str(data)],
                       capture_output=True, text=True)
    return next((l.split()[2] for l in r.stdout.splitlines() if "VALIDSIG" in l), None)


def test_custom_feed_signed_with_users_key(cli, project, mini_build, tmp_path):
    distro = cli.json("-C", project, "keys", "generate", "--algorithm", "ed25519")["fingerprint"]
    release_build(cli, project, mini_build(1))
    user = cli.json("-C", project, "keys", "generate", "--uid", "Jane Integrator <jane@example.org>", "--algorithm", "ed25519")["fingerprint"]
    assert user != distro
    mine = tmp_path / "mine"
    mine.mkdir()
    pkg = build_packages(Recipe("my-app", "2.0", rdepends=["libc6"], summary="My own application"), "core2-64")[0]
    write_ipk(pkg, mine, 1700000000)
    r = cli.json("-C", project, "feed", "add-custom", "jane", mine, "--key", user)
    assert r["new_packages"] == 1 and r["feeds"] == ["custom/jane/ipk/core2-64"]
    feed = project / "publish/custom/jane/ipk/core2-64"
    assert "Package: my-app" in (feed / "Packages").read_text()
    home = project / "state" / "gnupg"
    assert gpg_verify(home, feed / "Packages.asc", feed / "Packages") == user
    # the official feed stays signed by the distro key
    off = project / "publish/feeds/ipk/core2-64"
    assert gpg_verify(home, off / "Packages.asc", off / "Packages") == distro
    dev = tmp_path / "dev"
    cli("-C", project, "device-config", "--machine", "qemux86-64", "--custom", "jane", dev)
    feeds = (dev / "etc/opkg/base-feeds.conf").read_text()
    assert "/feeds/ipk/core2-64" in feeds and "src/gz jane-core2-64 " in feeds and "/custom/jane/ipk/core2-64" in feeds
    from test_signing import gpg_dir_keys
    home = tmp_path / "gpg"
    shutil.copytree(dev / "etc/opkg/gpg", home)
    home.chmod(0o700)
    assert gpg_dir_keys(home) == {distro, user}      # the device trusts the distro's and the user's key
    # the same file again is fine; other bytes under the same name are refused
    cli("-C", project, "feed", "add-custom", "jane", mine, "--key", user)
    pkg.files[-1].data += b"changed"
    (mine / pkg.filename).unlink()
    write_ipk(pkg, mine, 1700000000)
    bad = cli("-C", project, "feed", "add-custom", "jane", mine, "--key", user, ok=False)
    assert bad.exit_code == 1 and "would replace published custom/jane/ipk/core2-64/my-app_" in bad.stderr
    assert cli("-C", project, "feed", "add-custom", "x", mine, "--key", "0" * 40, ok=False).exit_code == 1


def test_sstate_signatures(cli, project, sample_build, tmp_path):
    from conftest import copytree
    fpr = cli.json("-C", project, "keys", "generate", "--algorithm", "ed25519")["fingerprint"]
    b = copytree(sample_build(1), tmp_path / "b")
    home = project / "state" / "gnupg"
    objs = sorted(p for p in (b / "sstate-cache").rglob("sstate:*.tar.zst"))
    for o in objs:
        subprocess.run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                        "--local-user", fpr, "--output", str(o) + ".sig", "--detach-sign", str(o)], check=True, capture_output=True)
    spec = project / "bindistro.yml"
    spec.write_text(spec.read_text().replace("  sstate: []\n", "  sstate: []\n  require_signed_sstate: true\n"))
    cand = cli.json("-C", project, "stage", b)["candidate"]
    rep = cli.json("-C", project, "verify", cand, "--gate", "sstate")
    sst = [f for f in rep["findings"] if f["gate"] == "sstate"]
    assert rep["summary"]["error"] == 0 and "signed sstate objects verify" in sst[0]["message"]
    # one object changed after signing, one left unsigned
    objs[0].write_bytes(objs[0].read_bytes() + b"x")
    (objs[1].parent / (objs[1].name + ".sig")).unlink()
    cand = cli.json("-C", project, "stage", b)["candidate"]
    rep = cli.json("-C", project, "verify", cand, "--gate", "sstate", ok=False)
    msgs = [f["message"] for f in rep["findings"] if f["severity"] == "error"]
    assert "bad sstate signature" in msgs and any("carry no .sig" in m for m in msgs)


def test_sstate_keys_require_signatures_and_restore_checks_them(cli, project, sample_build, tmp_path):
    """keys.sstate alone makes signed sstate required; the release says which keys sign its mirror,
    and restore turns bitbake's signature check on for them."""
    from conftest import copytree
    fpr = cli.json("-C", project, "keys", "generate", "--algorithm", "ed25519")["fingerprint"]
    spec = project / "bindistro.yml"
    text = spec.read_text()
    assert "require_signed_sstate" not in text            # the default is not written: it follows keys.sstate
    spec.write_text(text.replace("sstate: []", f"sstate: [{fpr}]"))
    b = copytree(sample_build(1), tmp_path / "b")
    cand = cli.json("-C", project, "stage", b)["candidate"]
    rep = cli.json("-C", project, "verify", cand, "--gate", "sstate", ok=False)
    assert any(f["severity"] == "error" and "carry no .sig" in f["message"] for f in rep["findings"])
    home = project / "state" / "gnupg"
    for o in sorted((b / "sstate-cache").rglob("sstate:*.tar.zst")):
        subprocess.run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                        "--local-user", fpr, "--output", str(o) + ".sig", "--detach-sign", str(o)], check=True, capture_output=True)
    release_build(cli, project, b, gates=("closure", "sstate"))     # the signed objects now pass
    manifest = json.loads((project / "publish/releases/1.1/manifest.json").read_text())
    assert manifest["restore"]["sstate_keys"] == [fpr]
    cli("-C", project, "restore", tmp_path / "b2")
    conf = (tmp_path / "b2/conf/bindistro.conf").read_text()
    assert 'SSTATE_VERIFY_SIG = "1"' in conf and f'SSTATE_VALID_SIGS = "{fpr}"' in conf


def test_per_ipk_signatures_and_binary_feed_signature(cli, project, mini_build):
    fpr = cli.json("-C", project, "keys", "generate", "--algorithm", "ed25519")["fingerprint"]
    spec = project / "bindistro.yml"
    spec.write_text(spec.read_text().replace("sign_ipk_packages: false", "sign_ipk_packages: true")
                    .replace("ipk_feed_signature: asc", "ipk_feed_signature: sig"))
    release_build(cli, project, mini_build(1))
    feed = project / "publish/feeds/ipk/core2-64"
    home = project / "state" / "gnupg"
    assert gpg_verify(home, feed / "Packages.sig", feed / "Packages") == fpr
    assert not (feed / "Packages.asc").exists()
    ipk = next(feed.glob("tool_*.ipk"))
    assert (ipk.parent / (ipk.name + ".asc")).read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    assert gpg_verify(home, ipk.parent / (ipk.name + ".asc"), ipk) == fpr


def test_custom_rebuild_sorts_above_the_official_and_never_equals_it(cli, project, sample_build, tmp_path):
    """A user rebuilds the official htop with the revision suffix `bundle` and `restore --custom` set
    up: real opkg upgrades the official htop to it, dpkg and rpm order the versions the same way, and
    a rebuild that kept the official version (other bytes) is refused by feed add-custom."""
    import dataclasses

    import rpm
    from bindistro.pm.upgrade import IpkRoot, find_opkg
    from bindistro_sample.recipes import initial
    user = cli.json("-C", project, "keys", "generate", "--uid", "Jane Integrator <jane@example.org>", "--algorithm", "ed25519")["fingerprint"]
    release_build(cli, project, sample_build(1))
    b = tmp_path / "bundle"
    cli("-C", project, "bundle", "1.1", b, "--custom", "acme")
    assert 'BINDISTRO_CUSTOM = "acme"' in (b / "conf/custom-feed.conf").read_text()
    assert 'PKGR:append = ".${BINDISTRO_CUSTOM}"' in (b / "README.md").read_text()
    cli("-C", project, "restore", tmp_path / "build", "--custom", "acme")
    assert 'BINDISTRO_CUSTOM = "acme"' in (tmp_path / "build/conf/bindistro.conf").read_text()
    assert cli("-C", project, "restore", tmp_path / "x", "--custom", "Bad Name", ok=False).exit_code == 1

    feed = project / "publish/feeds/ipk/core2-64"
    official = next(feed.glob("htop_*.ipk"))
    off_version = official.name.split("_")[1]                       # 3.3.0-r0.0
    base = dataclasses.replace(initial(1)["htop"], prauto=int(off_version.rsplit(".", 1)[1]))  # as the PR server had it
    # what PKGR:append = ".acme" makes of the official revision: the same recipe, rebuilt, r0.0 -> r0.0.acme
    mine = dataclasses.replace(base, prauto=f"{base.prauto}.acme", rebuild=base.rebuild + 1)
    custom_pkg = next(p for p in build_packages(mine, "core2-64") if p.name == "htop")
    assert custom_pkg.version == off_version + ".acme"
    out = tmp_path / "mine"
    out.mkdir()
    custom = write_ipk(custom_pkg, out, 1700000000)
    nxt = off_version.rsplit(".", 1)[0] + ".1"                       # the next official revision, r0.1
    for a, b_, want in ((custom_pkg.version, off_version, ">>"), (nxt, custom_pkg.version, ">>")):
        assert subprocess.run([find_opkg(), "compare-versions", a, want, b_]).returncode == 0
        assert subprocess.run(["dpkg", "--compare-versions", a, "gt", b_]).returncode == 0
        split = lambda v: ("0", *v.rsplit("-", 1))       # noqa: E731
        assert rpm.labelCompare(split(a), split(b_)) == 1
    # real opkg: the official htop (with its dependencies from the official feed), then the custom one
    root = IpkRoot(tmp_path / "dev", feed, ["all", "core2-64", "qemux86_64"], find_opkg())
    root.run("update")
    root.run("install", "busybox")           # /bin/sh for the maintainer scripts, as in an image
    root.install([official])
    assert root.installed()["htop"] == off_version
    root.install([custom])
    assert root.installed()["htop"] == custom_pkg.version
    cli("-C", project, "feed", "add-custom", "acme", out, "--key", user)
    # the official version rebuilt with other bytes: refused, naming the file
    clash_dir = tmp_path / "clash"
    clash_dir.mkdir()
    rebuilt = dataclasses.replace(base, rebuild=base.rebuild + 1)
    clash = write_ipk(next(p for p in build_packages(rebuilt, "core2-64") if p.name == "htop"), clash_dir, 1700000000)
    assert clash.name == official.name
    r = cli("-C", project, "feed", "add-custom", "acme", clash_dir, "--key", user, ok=False)
    assert r.exit_code == 1 and f"{clash}: htop {off_version} (core2-64) is an official package's name, version and arch" in r.stderr


def test_keys_work_in_a_state_directory_too_deep_for_gpg_agents_socket(tmp_path, cli):
    """gpg-agent's socket lives in the GnuPG home when /run/user/UID is missing (containers, CI)
    and its path may not exceed 107 bytes: a deep project must still find and use its keys."""
    d = tmp_path / ("deep-" * 16) / "proj"
    cli("-C", d, "init", "--no-boot")
    assert len(str(d / "state" / "gnupg" / "S.gpg-agent.browser")) > 107
    fpr = cli.json("-C", d, "keys", "generate", "--algorithm", "ed25519")["fingerprint"]
    assert fpr in cli("-C", d, "keys", "list").stdout
    note = d / "note.txt"
    note.write_text("signed\n")
    from bindistro.keys import Keyring, public_gpg
    Keyring(d / "state" / "gnupg").sign_detached(fpr, note, d / "note.txt.sig")
    r = subprocess.run(public_gpg(d / "state" / "gnupg") + ["--verify", str(d / "note.txt.sig"), str(note)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and fpr in r.stderr.replace(" ", ""), r.stderr
