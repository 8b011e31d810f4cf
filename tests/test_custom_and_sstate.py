"""Custom feeds signed with the user's own key, and sstate signatures checked at verify."""
import shutil
import json
import subprocess

from bindistro_sample.ipkbuild import write_ipk
from bindistro_sample.packages import build_packages
from bindistro_sample.recipes import Recipe


def gpg_verify(home, sig, data):
    r = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--status-fd", "1", "--verify", str(sig), str(data)],
                       capture_output=True, text=True)
    return next((l.split()[2] for l in r.stdout.splitlines() if "VALIDSIG" in l), None)


def test_custom_feed_signed_with_users_key(cli, project, sample_build, tmp_path):
    distro = cli.json("-C", project, "keys", "generate")["fingerprint"]
    cli("-C", project, "release", cli.json("-C", project, "stage", sample_build(1))["candidate"])
    user = cli.json("-C", project, "keys", "generate", "--uid", "Jane Integrator <jane@example.org>")["fingerprint"]
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
    fpr = cli.json("-C", project, "keys", "generate")["fingerprint"]
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
    fpr = cli.json("-C", project, "keys", "generate")["fingerprint"]
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
    cand = cli.json("-C", project, "stage", b)["candidate"]
    cli("-C", project, "release", cand)
    manifest = json.loads((project / "publish/releases/1.1/manifest.json").read_text())
    assert manifest["restore"]["sstate_keys"] == [fpr]
    cli("-C", project, "restore", tmp_path / "b2")
    conf = (tmp_path / "b2/conf/bindistro.conf").read_text()
    assert 'SSTATE_VERIFY_SIG = "1"' in conf and f'SSTATE_VALID_SIGS = "{fpr}"' in conf


def test_per_ipk_signatures_and_binary_feed_signature(cli, project, sample_build):
    fpr = cli.json("-C", project, "keys", "generate")["fingerprint"]
    spec = project / "bindistro.yml"
    spec.write_text(spec.read_text().replace("sign_ipk_packages: false", "sign_ipk_packages: true")
                    .replace("ipk_feed_signature: asc", "ipk_feed_signature: sig"))
    cli("-C", project, "release", cli.json("-C", project, "stage", sample_build(1))["candidate"])
    feed = project / "publish/feeds/ipk/core2-64"
    home = project / "state" / "gnupg"
    assert gpg_verify(home, feed / "Packages.sig", feed / "Packages") == fpr
    assert not (feed / "Packages.asc").exists()
    ipk = next(feed.glob("htop_*.ipk"))
    assert (ipk.parent / (ipk.name + ".asc")).read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    assert gpg_verify(home, ipk.parent / (ipk.name + ".asc"), ipk) == fpr
