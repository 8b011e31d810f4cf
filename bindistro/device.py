"""`bindistro device-config`: the files a device needs to use the feeds, as OE would write them,
plus a systemd timer for automatic upgrades (off until enabled)."""
from __future__ import annotations

from pathlib import Path

from .formats import get as get_format
from .yocto.machines import arch_conf
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
          customs: list[dict] = (), channel: str | None = None) -> list[str]:
    """`spec`: the view of the series the device follows (its feed directory and machines); moving a
    device to another series is writing these files for that series over the old ones, then an
    upgrade. `channel`: a test device that follows a channel of that series instead of its releases
    (its feeds get their own names, so the files do not collide with a release configuration)."""
    m = next((x for x in spec.machines if x.name == machine), None)
    if m is None:
        raise ValueError(f"{spec.path}: machines: no machine {machine!r} (have: {', '.join(x.name for x in spec.machines)})")
    name, url, root = spec.product, (url or spec.publish_url).rstrip("/"), spec.feed_root
    if channel:
        from .model import check_channel
        base = spec.channel_root(check_channel(channel))
        if not (spec.publish_path / base / "manifest.json").is_file():
            raise ValueError(f"{spec.publish_path / base}: no channel {channel!r} is published "
                             "(bindistro publish CAND --channel NAME)")
        name, url, root = f"{spec.product}-{channel}", f"{url}/{base}", "feeds"
    fprs = list(spec.release_keys)
    customs = [c for c in customs if c["format"] == fmt]
    fprs += [c["key"] for c in customs if c["key"] not in fprs]
    from .keys import Keyring
    kr = Keyring(store.dir / "gnupg") if fprs else None
    # a device that moves here from an older series keeps that series' architectures known
    older = spec.whole.series[:spec.series_names().index(spec.current)] if spec.current else []
    kept = [a for x in older for om in (x.machines or spec.whole.machines) if om.name == machine for a in om.archs]
    files = feed_files(name, url, fmt, m.archs, {k: kr.export(k) for k in fprs}, spec.ipk_feed_signature, customs, root,
                       list(dict.fromkeys(kept)))
    for rel, data in files.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return sorted(files)


def machine_feeds(spec: Spec) -> dict[str, dict[str, list[str]]]:
    """machine -> format -> its feeds' names, most generic first (OE's PACKAGE_FEED_ARCHS order)."""
    return {m.name: {f: [get_format(f).feed_name(a) for a in m.archs] for f in spec.formats} for m in spec.machines}


def feed_files(name: str, url: str, fmt: str, archs: list[str], keys: dict[str, bytes], ipk_signature: str = "asc",
               customs: list[dict] = (), feeds: str = "feeds", kept: list[str] = ()) -> dict[str, bytes]:
    """path in the device's root -> bytes: the feed configuration of one machine (its package
    architectures `archs`, most generic first), the feed keys (fingerprint -> armored public key)
    trusted where its package manager reads them, and the upgrade timer. `restore` puts the same
    files into the build's images (bindistro-feeds.bbclass)."""
    files = config_files(name, url, fmt, archs, list(keys), ipk_signature, customs, feeds, kept)
    if keys and fmt == "ipk":
        # opkg reads keys only from its gpg_dir (/etc/opkg/gpg) and, with its default
        # gpg_trust_level TrustOnly, only keys of full owner trust or more: a prepared keyring
        files.update(opkg_gpg_dir(keys))
    elif keys and fmt == "rpm":
        files.update({p: keys[k] for k, p in zip(keys, rpm_key_paths(name, list(keys)))})
    elif keys:
        files[deb_keyring(name)] = b"".join(dearmor(k) for k in keys.values())
    return files


# the files naming the architectures a package manager accepts: an image has OE's own (its build's
# PACKAGE_ARCHS), so the image class leaves them out
ARCH_FILES = ("etc/opkg/arch.conf", "etc/rpmrc", "etc/rpm/platform", "etc/dnf/vars/arch")


def rpm_arch_files(archs: list[str]) -> dict[str, bytes]:
    """The architectures rpm and dnf accept, as OE's rootfs writes them (RpmPM._configure_rpm and
    _configure_dnf): `archs` lowest priority first, the machine's last. A device whose feeds get
    other architecture names (another series) needs them, or dnf never sees the new packages."""
    own = [a for a in archs if a not in ("all", "any", "noarch")]
    primary = own[-1]
    dnf = ["sdk_provides_dummy_target", *reversed(own), *(["bogusarch"] if len(own) <= 1 else [])]
    return {"etc/rpmrc": f"arch_compat: {primary}: {' '.join(['all', 'any', 'noarch', *own])}\n"
                         f"buildarch_compat: {primary}: noarch\n".encode(),
            "etc/rpm/platform": f"{primary}-pc-linux".encode(),
            "etc/dnf/vars/arch": ":".join(dnf).encode()}


def rpm_key_paths(name: str, fprs: list[str]) -> list[str]:
    return [f"etc/pki/rpm-gpg/RPM-GPG-KEY-{name}-{k[-8:]}" for k in fprs]


def deb_keyring(name: str) -> str:
    return f"usr/share/keyrings/{name}.gpg"


def config_files(name: str, url: str, fmt: str, archs: list[str], fprs: list[str], ipk_signature: str = "asc",
                 customs: list[dict] = (), feed_root: str = "feeds", kept: list[str] = ()) -> dict[str, bytes]:
    """feed_files() without the key material: the text files only (the feed viewer shows them).
    `feed_root`: the series' feed directory under `url`. `kept`: architectures of older series the
    device may have packages of (opkg forgets an installed package whose architecture arch.conf does
    not list: it would never be upgraded or removed); in arch.conf at the lowest priority, no feed."""
    url = url.rstrip("/")
    # (feed name, URL) of every feed the device uses: the distro's per arch, then the custom ones
    feeds = [(f"{name}-{a}", f"{url}/{feed_root}/{fmt}/{a}") for a in [get_format(fmt).feed_name(x) for x in archs]]
    feeds += [(f"{c['name']}-{a}", f"{url}/custom/{c['name']}/{fmt}/{a}") for c in customs for a in c["archs"]]
    files: dict[str, bytes] = {}
    if fmt == "ipk":
        files["etc/opkg/base-feeds.conf"] = "".join(f"src/gz {n} {u}\n" for n, u in feeds).encode()
        # OE's opkg arch.conf: later (more specific) architectures win
        files["etc/opkg/arch.conf"] = arch_conf([a for a in kept if a not in archs] + list(archs)).encode()
        if fprs:
            # opkg's default signature_type `gpg` fetches Packages.sig; the feeds publish Packages.asc
            # unless keys.ipk_feed_signature is `sig` (PACKAGE_FEED_GPG_SIGNATURE_TYPE in OE)
            sigtype = "gpg-asc" if ipk_signature == "asc" else "gpg"
            files[f"etc/opkg/{name}-signature.conf"] = (
                f"option check_signature 1\noption signature_type {sigtype}\n").encode()
    elif fmt == "rpm":
        files.update(rpm_arch_files([get_format(fmt).feed_name(a) for a in [*[a for a in kept if a not in archs], *archs]]))
        check = "1" if fprs else "0"
        keyurls = " ".join("file:///" + p for p in rpm_key_paths(name, fprs))
        files[f"etc/yum.repos.d/{name}.repo"] = "".join(
            f"[{n}]\nname={n}\nbaseurl={u}\nenabled=1\ngpgcheck={check}\n"
            f"repo_gpgcheck={check}\n" + (f"gpgkey={keyurls}\n" if fprs else "") + "\n" for n, u in feeds).encode()
    else:
        # a flat repository per feed; "Suites: /" (not "./") so that every URL apt asks for is the
        # plain key an S3 bucket or CDN serves (they do not fold "/./"; a web server does)
        lines = ["Types: deb", f"URIs: {' '.join(u for _n, u in feeds)}", "Suites: /"]
        lines.append(f"Signed-By: /{deb_keyring(name)}" if fprs else "Trusted: yes")
        files[f"etc/apt/sources.list.d/{name}.sources"] = ("\n".join(lines) + "\n").encode()
    files[f"etc/systemd/system/{name}-upgrade.service"] = SERVICE.format(product=name, command=UPGRADE[fmt]).encode()
    files[f"etc/systemd/system/{name}-upgrade.timer"] = TIMER.format(product=name).encode()
    files[f"usr/share/doc/{name}/UPGRADES"] = (
        f"Automatic upgrades are off by default. Turn them on with:\n\n    systemctl enable --now {name}-upgrade.timer\n\n"
        f"Upgrade by hand at any time with: {UPGRADE[fmt]}\n").encode()
    return files


def dearmor(armored: bytes) -> bytes:
    """Binary OpenPGP packets (apt's Signed-By keyring format) from armored keys."""
    import subprocess
    from .keys import public_gpg, scratch_gnupg
    with scratch_gnupg() as home:
        return subprocess.run(public_gpg(home) + ["--dearmor"], input=armored,
                              capture_output=True, check=True).stdout


def opkg_gpg_dir(keys: dict[str, bytes]) -> dict[str, bytes]:
    """etc/opkg/gpg/: a GnuPG home holding the feed keys with ultimate owner trust, as
    `opkg-key add` + `gpg --import-ownertrust` would leave it on the device."""
    import subprocess
    from .keys import public_gpg, scratch_gnupg
    with scratch_gnupg() as home:
        gpg = public_gpg(home)
        for armored in keys.values():
            subprocess.run(gpg + ["--import"], input=armored, capture_output=True, check=True)
        trust = "".join(f"{k}:6:\n" for k in keys).encode()
        subprocess.run(gpg + ["--import-ownertrust"], input=trust, capture_output=True, check=True)
        subprocess.run(gpg + ["--check-trustdb"], capture_output=True)
        return {f"etc/opkg/gpg/{p.name}": p.read_bytes() for p in sorted(Path(home).iterdir())
                if p.is_file() and p.name in ("pubring.kbx", "trustdb.gpg")}
