"""Verify gates II: real dnf/apt upgrade paths, ABI (abidiff), image security; each injected defect."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from bindistro_sample.build import generate
from conftest import carry_pr, link_copy


@pytest.fixture(scope="session")
def rel1(tmp_path_factory, sample_build):
    """A project (ipk, rpm, deb; no boot gate) with sample release 1 published."""
    from conftest import Cli
    cli = Cli()
    d = tmp_path_factory.mktemp("gates2") / "p"
    cli("-C", d, "init", "--no-boot")
    spec = yaml.safe_load((d / "bindistro.yml").read_text())
    spec["formats"] = ["ipk", "rpm", "deb"]
    (d / "bindistro.yml").write_text(yaml.safe_dump(spec))
    b1 = sample_build(1)
    cand = cli.json("-C", d, "stage", b1)["candidate"]
    cli("-C", d, "release", cand)
    return d, b1


def build2(tmp_path, b1, inject: str | None, formats) -> object:
    """Release 2 of the sample in a build dir that kept release 1's PR database."""
    out = carry_pr(b1, tmp_path / f"b2-{inject or 'clean'}")
    generate(out, 2, 1, inject=[inject] if inject else [], formats=formats)
    return out


def verify(cli, proj, build, gates):
    cand = cli.json("-C", proj, "stage", build)["candidate"]
    args = [x for g in gates for x in ("--gate", g)]
    r = cli("-C", proj, "verify", cand, *args, "--json", ok=None)
    return r.exit_code, json.loads(r.stdout)["findings"]


def errors(findings):
    return [f for f in findings if f["severity"] == "error"]


def test_clean_candidates_pass_every_path_with_dnf_and_apt(demo, cli):
    # the demo verified candidate 3 (release 1.3) with every gate: its stored report is the evidence
    rep = cli.json("-C", demo, "verify", 3, "--last")
    findings = [f for f in rep["findings"] if f["gate"] in ("pm-upgrade", "abi", "image-security")]
    assert {"pm-upgrade", "abi", "image-security"} <= set(rep["gates"]) and not errors(findings), errors(findings)
    passed = {(f["details"]["format"], f["details"]["machine"], f["details"]["path"])
              for f in findings if "upgrade passed" in f["message"]}
    # every format on both machines: aarch64 maintainer scripts run through qemu-user (scripts/setup.sh)
    assert {(fmt, m, p) for fmt in ("ipk", "rpm", "deb") for m in ("qemux86-64", "qemuarm64")
            for p in ("first", "last")} <= passed
    assert not any("solver only" in f["message"] for f in findings)


def test_paths_from_kept_roots_find_what_fresh_installs_find(demo, cli, tmp_path, monkeypatch):
    """verify keeps each earlier release's installed root (bindistro/pm/roots.py) and starts the next
    paths from copies of it: what they find is what paths from fresh installs find. deb: the kept
    root holds dpkg's foreign architecture (qemuarm64) and what arm64 maintainer scripts did."""
    proj = link_copy(demo, tmp_path / "p")
    spec = yaml.safe_load((proj / "bindistro.yml").read_text())
    spec["formats"] = ["deb"]
    (proj / "bindistro.yml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("BINDISTRO_PM_ROOTS", str(tmp_path / "roots"))

    def run():
        rep = cli.json("-C", proj, "verify", 3, "--gate", "pm-upgrade")
        paths = [f for f in rep["findings"] if f["gate"] == "pm-upgrade"]
        kept = [f["details"].pop("kept_root") for f in paths]
        for f in paths:
            f["details"].pop("seconds")
            f["message"] = re.sub(r" in [0-9.]+ s", "", f["message"])
        return kept, sorted(json.dumps(f, sort_keys=True) for f in paths)
    kept, fresh = run()
    assert len(fresh) == 4 and not any(kept)        # first and last release, both machines
    assert len(list((tmp_path / "roots").iterdir())) == 4
    kept, again = run()
    assert all(kept) and again == fresh


CASES = [
    # (defect, formats to build, gate, (subject, words in the message))
    # ipk: the same defects on both machines, with boot after upgrade, are test_ipk_upgrade.py's
    ("postinst-fails-on-upgrade", ("rpm", "deb"), "pm-upgrade",
     [("bindistro-hello", f"{f}/{m}") for f in ("rpm", "deb") for m in ("qemux86-64", "qemuarm64")]),
    ("conffile-not-noreplace", ("rpm", "deb"), "pm-upgrade",
     [("/etc/login.defs", "configuration changes lost"), ("/etc/login.defs", ".rpmsave")] +
     [("/etc/login.defs", f"{f}/{m}") for f in ("rpm", "deb") for m in ("qemux86-64", "qemuarm64")]),
    ("file-conflict", ("rpm", "deb"), "pm-upgrade",
     [("/usr/bin/dbus", f"{f}/{m}") for f in ("rpm", "deb") for m in ("qemux86-64", "qemuarm64")]),
    ("abi-break", ("deb",), "abi",
     [("libhello.so.1 (bindistro-hello)", "removed hello_greet"), ("libhello.so.1 (bindistro-hello)", "changed hello_count")]),
    ("root-password", ("ipk",), "image-security", [("qemux86-64", "user root has a preset password")]),
    ("host-keys", ("ipk",), "image-security", [("qemux86-64", "/etc/ssh/ssh_host_ed25519_key")]),
    ("extra-service", ("ipk",), "image-security", [("qemux86-64", "telnetd.service is enabled by default")]),
    ("no-first-boot-keys", ("ipk",), "image-security",
     [("qemux86-64", "/usr/sbin/sshd is installed but nothing makes SSH host keys on first boot")]),
]


@pytest.mark.parametrize("defect,formats,gate,expect", CASES, ids=[c[0] for c in CASES])
def test_injected_defect_is_caught(rel1, cli, tmp_path, defect, formats, gate, expect):
    proj, b1 = rel1
    code, findings = verify(cli, proj, build2(tmp_path, b1, defect, formats), [gate])
    errs = errors(findings)
    assert code == 1 and errs
    assert all(f["gate"] == gate for f in errs)
    for subject, words in expect:
        assert any(subject in (f["subject"] + " " + f["message"]) and words in f["message"] for f in errs), \
            (subject, words, [f["subject"] + ": " + f["message"] for f in errs])


def test_missing_sources_of_a_gpl_recipe(rel1, cli, tmp_path):
    """busybox's archiver output left out: refused on a first release; a later build of the same
    recipe version may rely on the sources an earlier release published."""
    cli("sample-build", tmp_path / "b", "--release", 1, "--formats", "ipk", "--inject", "missing-sources")
    cli("-C", tmp_path / "p", "init", "--no-boot")
    code, findings = verify(cli, tmp_path / "p", tmp_path / "b", ["sources"])
    errs = errors(findings)
    assert code == 1 and [f["subject"] for f in errs] == ["busybox"]
    assert "recipe busybox 1.36.1 (GPL-2.0-only, e.g. package busybox" in errs[0]["message"]
    assert "no archiver output (tmp/deploy/sources/*/busybox-1.36.1-*/)" in errs[0]["message"]
    proj, _b1 = rel1          # release 1 published busybox 1.36.1's sources: enough for this build
    code, findings = verify(cli, proj, tmp_path / "b", ["sources"])
    assert code == 0 and not errors(findings)


def test_compatible_abi_addition_is_info(rel1, cli, tmp_path):
    proj, b1 = rel1
    out = carry_pr(b1, tmp_path / "b2")
    # bindistro-hello's next git revision adds hello_version() to libhello.so.1
    from bindistro_sample import recipes
    orig = recipes.evolve

    def evolve(rs, seed, release):
        new, ch = orig(rs, seed, release)
        r = new["bindistro-hello"]
        if r.autoinc == rs["bindistro-hello"].autoinc:
            r.autoinc += 1
            r.srcrev = recipes._srcrev(seed, r.pn, r.autoinc)
        return new, ch
    recipes.evolve = evolve
    try:
        generate(out, 2, 1, formats=("deb",))
    finally:
        recipes.evolve = orig
    code, findings = verify(cli, proj, out, ["abi"])
    assert code == 0
    info = [f for f in findings if f["gate"] == "abi"]
    assert any("compatible ABI change" in f["message"] and "added hello_version" in f["message"] for f in info), info
    assert all(f["details"]["debug_info"] for f in info)      # the -dbg package's DWARF was used


def test_image_scan_finds_setuid_world_writable_and_units(tmp_path):
    import io
    import tarfile
    import zstandard
    from bindistro.verify.gates.image_security import scan, template

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        def add(name, mode=0o644, kind=tarfile.REGTYPE, data=b"", link=""):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.linkname, ti.size = kind, mode, link, len(data)
            tf.addfile(ti, io.BytesIO(data) if data else None)
        add("./etc/shadow", 0o600, data=b"root::19000:0:99999:7:::\nbin:*:19000::::::\n")
        add("./usr/bin/su", 0o4755, data=b"x")
        add("./tmp", 0o1777, tarfile.DIRTYPE)
        add("./var/spool", 0o777, tarfile.DIRTYPE)
        add("./etc/motd", 0o666, data=b"hi")
        add("./etc/systemd/system/getty.target.wants/getty@tty1.service", 0o777, tarfile.SYMTYPE,
            link="/usr/lib/systemd/system/getty@.service")
    p = tmp_path / "core-image-minimal-qemux86-64.rootfs.tar.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress(buf.getvalue()))
    s = scan(p, p.name)
    assert s["shadow"].startswith("root::")
    assert s["setuid"] == ["/usr/bin/su"]
    assert s["world_writable"] == ["/var/spool", "/etc/motd"]      # /tmp has the sticky bit
    assert s["units"] == ["getty@tty1.service"] and template("getty@tty1.service") == "getty@.service"
