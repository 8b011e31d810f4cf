"""Images preconfigured for the feeds (the process page: "Must be preconfigured to use the package
feeds"): each released image whose root filesystem has a package manager points it at this
distro's published feeds for its machine, every one of them and none that does not exist, with
signature checking on and the release key where that package manager reads it:
- opkg: `src`/`src/gz` lines and `option check_signature 1` in /etc/opkg/*.conf, a signature_type
  that fetches what the feeds publish (Packages.asc: gpg-asc, Packages.sig: gpg), the key in its
  gpg_dir with owner trust of full or more (opkg's default gpg_trust_level TrustOnly);
- dnf: /etc/yum.repos.d/*.repo with repo_gpgcheck=1 and a gpgkey file in the image holding the key;
- apt: sources.list(.d) without trusted=yes, Signed-By (or trusted.gpg.d) holding the key.
Key files are read with gpg itself."""
from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

from ... import model
from ...formats import get as get_format
from ...yocto.machines import from_arch_conf
from ...formats.base import ARCHIVE_ERRORS, open_tar
from ...keys import public_gpg, scratch_gnupg
from ..finding import Finding
from ..rootfs import IMAGE_LIMIT, rootfs_artifacts

NAME = "image-feeds"
MANAGERS = {"ipk": ("usr/bin/opkg", "bin/opkg"), "rpm": ("usr/bin/dnf", "usr/bin/dnf-3", "usr/bin/yum"),
            "deb": ("usr/bin/apt-get", "usr/bin/apt")}
CONFIG = re.compile(r"^etc/opkg/[^/]+\.conf$|^etc/yum\.repos\.d/[^/]+\.repo$|^etc/apt/sources\.list$"
                    r"|^etc/apt/sources\.list\.d/[^/]+\.(list|sources)$")
# where the package managers' feed keys live (not all of /etc/pki: an image's CA certificates are there)
KEYFILES = re.compile(r"^(etc/opkg/gpg|etc/pki/rpm-gpg|etc/pki/packagefeed-gpg|usr/share/keyrings|etc/apt/keyrings"
                      r"|etc/apt/trusted\.gpg\.d)/|"
                      r"^etc/apt/trusted\.gpg$")
TEXT_LIMIT, KEY_LIMIT, FILE_COUNT = 64 << 10, 1 << 20, 500
WHERE = {"ipk": "/etc/opkg/*.conf", "rpm": "/etc/yum.repos.d/*.repo", "deb": "/etc/apt/sources.list(.d)"}


def scan(path, name: str) -> dict:
    """Package managers present, their configuration texts and the key files, bounded."""
    out = {"managers": set(), "config": {}, "keys": {}}
    with open(path, "rb") as fh:
        try:
            for m in (tf := open_tar(name, fh, limit=IMAGE_LIMIT)):
                p = m.name.removeprefix("./").lstrip("/")
                for fmt, bins in MANAGERS.items():
                    if p in bins and (m.isfile() or m.issym()):
                        out["managers"].add(fmt)
                if not m.isfile():
                    continue
                if CONFIG.match(p) and len(out["config"]) < FILE_COUNT:
                    out["config"]["/" + p] = tf.extractfile(m).read(TEXT_LIMIT).decode(errors="replace")
                elif KEYFILES.match(p) and m.size <= KEY_LIMIT and len(out["keys"]) < FILE_COUNT:
                    out["keys"]["/" + p] = tf.extractfile(m).read(KEY_LIMIT)
        except ARCHIVE_ERRORS as e:
            out["error"] = str(e)
    return out


def _gpg(home: str, *args, data: bytes | None = None) -> str:
    return subprocess.run(public_gpg(home) + ["--with-colons", *args], input=data,
                          capture_output=True, timeout=60).stdout.decode(errors="replace")


def _fprs(colons: str) -> set[str]:
    # the first fpr record after each pub record is the primary key's
    out, want = set(), False
    for line in colons.splitlines():
        f = line.split(":")
        if f[0] == "pub":
            want = True
        elif f[0] == "fpr" and want and len(f) > 9:
            out.add(f[9])
            want = False
    return out


def key_fprs(data: bytes) -> set[str]:
    """Primary key fingerprints in a key file (armored or binary keyring)."""
    with scratch_gnupg() as home:
        return _fprs(_gpg(home, "--show-keys", data=data))


def opkg_keyring(files: dict[str, bytes], gpg_dir: str) -> dict[str, int]:
    """fingerprint -> owner trust (GnuPG's numbers: 5 full, 6 ultimate) of the keys in opkg's gpg_dir."""
    d = gpg_dir.rstrip("/") + "/"
    with scratch_gnupg() as home:
        for p, data in files.items():
            if p.startswith(d) and "/" not in p[len(d):]:
                Path(home, p[len(d):]).write_bytes(data)
        fprs = _fprs(_gpg(home, "--list-keys"))
        trust = {}
        for line in _gpg(home, "--export-ownertrust").splitlines():
            k, _, v = line.partition(":")
            if v[:1].isdigit():
                trust[k] = int(v.split(":")[0])
    return {k: trust.get(k, 0) for k in fprs}


def _norm(url: str) -> str:
    return url.strip().rstrip("/")


def feeds_ipk(cfg: dict[str, str]) -> tuple[list[tuple[str, str]], dict]:
    feeds, opts = [], {}
    for path, text in sorted(cfg.items()):
        if not path.startswith("/etc/opkg/"):
            continue
        for line in text.splitlines():
            w = line.split()
            if len(w) >= 3 and w[0] in ("src", "src/gz"):
                feeds.append((_norm(w[2]), path))
            elif len(w) >= 3 and w[0] == "option":
                opts[w[1]] = (w[2], path)
    return feeds, opts


def feeds_rpm(cfg: dict[str, str]) -> list[tuple[str, str, dict]]:
    out = []
    for path, text in sorted(cfg.items()):
        if not path.startswith("/etc/yum.repos.d/"):
            continue
        cp = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            cp.read_string(text)
        except configparser.Error:
            continue
        for sec in cp.sections():
            s = cp[sec]
            if s.get("enabled", "1").strip() in ("0", "false", "no"):
                continue
            for url in s.get("baseurl", "").split():
                out.append((_norm(url), path, {k: s.get(k, "").strip() for k in ("repo_gpgcheck", "gpgkey")}))
    return out


def feeds_deb(cfg: dict[str, str]) -> list[tuple[str, str, dict]]:
    from ...formats.control import read_paragraphs
    out = []
    for path, text in sorted(cfg.items()):
        if path.endswith(".sources"):
            for para in read_paragraphs(text.encode()):
                if "deb" not in para.get("Types", "").split() or para.get("Enabled", "yes").lower() == "no":
                    continue
                for uri in para.get("URIs", "").split():
                    for suite in para.get("Suites", "").split() or ["./"]:
                        out.append((_flat(uri, suite), path, {"trusted": para.get("Trusted", "").lower() == "yes",
                                                              "signed-by": para.get("Signed-By", "").strip()}))
        elif path.startswith("/etc/apt/sources.list"):
            for line in text.splitlines():
                m = re.match(r"^\s*deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)", line)
                if m:
                    opts = dict(o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o)
                    out.append((_flat(m.group(2), m.group(3)), path, {"trusted": opts.get("trusted") == "yes",
                                                                      "signed-by": opts.get("signed-by", "")}))
    return out


def _flat(uri: str, suite: str) -> str:
    # a flat repository (suite ending in /): its files are at URI/suite
    return _norm(uri if suite.strip("/.") == "" else f"{uri.rstrip('/')}/{suite.strip('/')}")


def check(ctx, fmt: str, machine, subj: str, s: dict) -> list[Finding]:
    out = []
    def F(sev, code, msg, scope=""):
        return Finding(sev, NAME, f"{NAME}.{code}", subj, f"{machine.name}: {msg}", scope=f"{fmt}:{scope}")
    base = _norm(ctx.spec.publish_url) + f"/{ctx.spec.feed_root}/{fmt}/"    # the series' feeds
    published = ctx.feed_archs(fmt, machine)
    mine = [get_format(fmt).feed_name(a) for a in machine.archs]
    want = {base + n: n for n in mine if n in published}
    if fmt == "ipk":
        feeds, opts = feeds_ipk(s["config"])
        configured = [(u, p, {}) for u, p in feeds]
    else:
        configured = feeds_rpm(s["config"]) if fmt == "rpm" else feeds_deb(s["config"])
        opts = {}
    ours = [(u, p, o) for u, p, o in configured if u.startswith(base)]
    if not ours:
        return [F("error", "not-preconfigured", f"the image's package manager has no feed of this distro "
                  f"configured ({WHERE[fmt]}; expected {', '.join(sorted(want)) or base + '…'})", scope=WHERE[fmt])]
    have = {u for u, _p, _o in ours}
    for url in sorted(set(want) - have):
        out.append(F("error", "missing-feed", f"feed {want[url]} of this machine is not configured in {WHERE[fmt]} "
                     f"(expected {url})", scope=url))
    for url, path in sorted({(u, p) for u, p, _o in ours if u not in want}):
        name = url[len(base):]
        why = ("is not published by this release: the package manager's update fails on it" if name not in published
               else "belongs to another machine")
        out.append(F("error" if name not in published else "warning", "wrong-feed",
                     f"{path}: feed {url} {why}", scope=url))
    fpr = ctx.spec.signing_key
    if not fpr:
        out.append(F("info", "unsigned", "the feeds are not signed (keys.signing is not set): the image cannot check them"))
        return out
    short = fpr[-16:]
    if fmt == "ipk":
        cs, where = opts.get("check_signature", ("0", WHERE[fmt]))
        if cs != "1":
            out.append(F("error", "no-signature-check", f"{where}: opkg does not check feed signatures "
                         "(no `option check_signature 1`)", scope="check_signature"))
        want_type = "gpg-asc" if ctx.spec.ipk_feed_signature == "asc" else "gpg"
        st, where = opts.get("signature_type", ("gpg", WHERE[fmt]))
        if cs == "1" and st != want_type:
            out.append(F("error", "signature-type", f"{where}: opkg's signature_type {st} fetches "
                         f"Packages.{'sig' if st == 'gpg' else 'asc'}, the feeds publish Packages."
                         f"{'asc' if want_type == 'gpg-asc' else 'sig'} (set signature_type {want_type})", scope="signature_type"))
        gdir = opts.get("gpg_dir", ("/etc/opkg/gpg", ""))[0]
        trust = opkg_keyring(s["keys"], gdir)
        if fpr not in trust:
            out.append(F("error", "no-key", f"{gdir}: the release key {short} is not in opkg's keyring", scope="key"))
        elif trust[fpr] < 5:
            out.append(F("error", "key-not-trusted", f"{gdir}: the release key {short} has owner trust below full: "
                         "opkg (gpg_trust_level TrustOnly) ignores it", scope="key"))
    else:
        for url, path, o in ours:
            if fmt == "rpm":
                paths = [k.removeprefix("file://") for k in o.get("gpgkey", "").split()]
                if o.get("repo_gpgcheck") not in ("1", "True", "true", "yes"):
                    out.append(F("error", "no-signature-check", f"{path}: {url}: repo_gpgcheck is not 1 "
                                 "(dnf does not check the feed's signed repomd.xml)", scope=url))
            else:
                if o.get("trusted"):
                    out.append(F("error", "no-signature-check", f"{path}: {url}: trusted=yes turns apt's signature "
                                 "check off", scope=url))
                    continue
                paths = [o["signed-by"]] if o.get("signed-by") else \
                    [p for p in s["keys"] if p.startswith("/etc/apt/trusted.gpg")]
            found = set().union(*[key_fprs(s["keys"][p]) for p in paths if p in s["keys"]]) if paths else set()
            if fpr not in found:
                out.append(F("error", "no-key", f"{path}: {url}: the release key {short} is not in "
                             f"{', '.join(paths) or 'any key file the package manager reads'}", scope=url))
    if not any(f.severity == "error" for f in out):
        out.append(F("info", "summary", f"{len(ours)} feed(s) of this distro configured in {WHERE[fmt]}, "
                     f"signatures checked with key {short}"))
    return out


def _key(arch: str) -> str:
    return "all" if arch == "noarch" else arch.replace("-", "_")     # rpm's names and the others' alike


def spec_archs(ctx, machine, subj: str, s: dict) -> list[Finding]:
    """The build's PACKAGE_ARCHS for the machine (opkg-arch-config's arch.conf in the image) against
    the spec's: an architecture with packages in this candidate that the machine's feeds leave out
    (a SoC family feed, typically) would reach none of its devices."""
    text = s["config"].get("/etc/opkg/arch.conf")
    if not text:
        return []
    built = {_key(a.arch) for a in ctx.artifacts if a.kind == model.PACKAGE}
    spec = {_key(a) for a in machine.archs}
    return [Finding("error", NAME, f"{NAME}.arch-not-in-spec", subj,
                    f"{machine.name}: the build's PACKAGE_ARCHS (/etc/opkg/arch.conf) include {a}, which has packages "
                    f"in this candidate, but machines.{machine.name}.archs does not: no device of {machine.name} gets "
                    f"that feed (add it there; `bindistro init --from-build` shows what the build has)", scope=a)
            for a in from_arch_conf(text) if _key(a) in built and _key(a) not in spec]


def run(ctx) -> list[Finding]:
    images = rootfs_artifacts(ctx.artifacts)
    machines = {m.name: m for m in ctx.machines()}
    out = []
    for name, a in sorted(images.items()):
        if name not in machines:
            continue
        s = scan(ctx.store.objects.path(a.sha256), a.name)
        if "error" in s:
            out.append(Finding("error", NAME, f"{NAME}.unreadable", a.path, f"{name}: root filesystem archive unreadable: {s['error']}"))
            continue
        out += spec_archs(ctx, machines[name], a.path, s)
        fmts = [f for f in ctx.formats() if f in s["managers"]]
        if not fmts:
            out.append(Finding("info", NAME, f"{NAME}.no-package-manager", a.path,
                               f"{name}: no package manager of a published format in the image: it is updated as a whole"))
        for fmt in fmts:
            out += check(ctx, fmt, machines[name], a.path, s)
    return out
