"""`bindistro device-config`: the files a device needs to use the feeds, as OE would write them,
plus a systemd timer for automatic upgrades (off until enabled)."""
from __future__ import annotations

from pathlib import Path

from .formats import get as get_format
from .spec import Spec
from .store import Store

SERVICE = """[Unit]
Description=Upgrade {product} packages from its feeds
Documentation=file:///usr/share/doc/{product}/UPGRADES
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c '{command}'
"""
TIMER = """[Unit]
Description=Daily upgrade of {product} packages (enable with: systemctl enable --now {product}-upgrade.timer)

[Timer]
OnCalendar=daily
RandomizedDelaySec=4h
Persistent=true

[Install]
WantedBy=timers.target
"""
UPGRADE = {"ipk": "opkg update && opkg upgrade", "rpm": "dnf -y upgrade --refresh",
           "deb": "apt-get update && apt-get -y upgrade"}


def write(spec: Spec, store: Store, machine: str, fmt: str, out: Path, url: str | None = None,
          customs: list[dict] = ()) -> list[str]:
    m = next((x for x in spec.machines if x.name == machine), None)
    if m is None:
        raise ValueError(f"{spec.path}: machines: no machine {machine!r} (have: {', '.join(x.name for x in spec.machines)})")
    url = (url or spec.publish_url).rstrip("/")
    fprs = [k for k in [spec.signing_key, *spec.previous_keys] if k]
    customs = [c for c in customs if c["format"] == fmt]
    fprs += [c["key"] for c in customs if c["key"] not in fprs]
    # (feed name, URL) of every feed the device uses: the distro's per arch, then the custom ones
    feeds = [(f"{spec.product}-{a}", f"{url}/feeds/{fmt}/{a}") for a in [get_format(fmt).feed_name(x) for x in m.archs]]
    feeds += [(f"{c['name']}-{a}", f"{url}/custom/{c['name']}/{fmt}/{a}") for c in customs for a in c["archs"]]
    files: dict[str, bytes] = {}
    from .keys import Keyring
    kr = Keyring(store.dir / "gnupg") if fprs else None
    name = spec.product
    if fmt == "ipk":
        files["etc/opkg/base-feeds.conf"] = "".join(f"src/gz {n} {u}\n" for n, u in feeds).encode()
        # OE's opkg arch.conf: later (more specific) architectures win
        files["etc/opkg/arch.conf"] = "".join(f"arch {a} {1 + 5 * i}\n" for i, a in enumerate(m.archs)).encode()
        if fprs:
            # opkg's default signature_type `gpg` fetches Packages.sig; the feeds publish Packages.asc
            # unless keys.ipk_feed_signature is `sig` (PACKAGE_FEED_GPG_SIGNATURE_TYPE in OE)
            sigtype = "gpg-asc" if spec.ipk_feed_signature == "asc" else "gpg"
            files[f"etc/opkg/{name}-signature.conf"] = (
                f"option check_signature 1\noption signature_type {sigtype}\n").encode()
            # opkg reads keys only from its gpg_dir (/etc/opkg/gpg) and, with its default
            # gpg_trust_level TrustOnly, only keys of full owner trust or more: a prepared keyring
            files.update(opkg_gpg_dir(kr, fprs))
    elif fmt == "rpm":
        keypaths = [f"/etc/pki/rpm-gpg/RPM-GPG-KEY-{name}-{k[-8:]}" for k in fprs]
        check = "1" if fprs else "0"
        files[f"etc/yum.repos.d/{name}.repo"] = "".join(
            f"[{n}]\nname={n}\nbaseurl={u}\nenabled=1\ngpgcheck={check}\n"
            f"repo_gpgcheck={check}\n" + (f"gpgkey={' '.join('file://' + p for p in keypaths)}\n" if fprs else "") + "\n"
            for n, u in feeds).encode()
        for k, p in zip(fprs, keypaths):
            files[p.lstrip("/")] = kr.export(k)
    else:
        keyring = f"usr/share/keyrings/{name}.gpg"
        lines = ["Types: deb", f"URIs: {' '.join(u + '/' for _n, u in feeds)}", "Suites: ./"]
        if fprs:
            lines.append(f"Signed-By: /{keyring}")
            files[keyring] = b"".join(kr.export(k, armor=False) for k in fprs)
        else:
            lines.append("Trusted: yes")
        files[f"etc/apt/sources.list.d/{name}.sources"] = ("\n".join(lines) + "\n").encode()
    files[f"etc/systemd/system/{name}-upgrade.service"] = SERVICE.format(product=name, command=UPGRADE[fmt]).encode()
    files[f"etc/systemd/system/{name}-upgrade.timer"] = TIMER.format(product=name).encode()
    files[f"usr/share/doc/{name}/UPGRADES"] = (
        f"Automatic upgrades are off by default. Turn them on with:\n\n    systemctl enable --now {name}-upgrade.timer\n\n"
        f"Upgrade by hand at any time with: {UPGRADE[fmt]}\n").encode()
    for rel, data in files.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return sorted(files)


def opkg_gpg_dir(kr, fprs: list[str]) -> dict[str, bytes]:
    """etc/opkg/gpg/: a GnuPG home holding the feed keys with ultimate owner trust, as
    `opkg-key add` + `gpg --import-ownertrust` would leave it on the device."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as home:
        gpg = ["gpg", "--homedir", home, "--batch", "--no-tty"]
        for k in fprs:
            subprocess.run(gpg + ["--import"], input=kr.export(k), capture_output=True, check=True)
        trust = "".join(f"{k}:6:\n" for k in fprs).encode()
        subprocess.run(gpg + ["--import-ownertrust"], input=trust, capture_output=True, check=True)
        subprocess.run(gpg + ["--check-trustdb"], capture_output=True)
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
        return {f"etc/opkg/gpg/{p.name}": p.read_bytes() for p in sorted(Path(home).iterdir())
                if p.is_file() and p.name in ("pubring.kbx", "trustdb.gpg")}
