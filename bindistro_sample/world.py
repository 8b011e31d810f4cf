"""SAMPLE DATA: `bitbake world` scale — thousands of made-up recipes beside the base distro.

A world feed is mostly many small packages from a few big recipes (kernel modules, perl and python
modules, locales) and a long tail of ordinary recipes (library, -dev, -dbg, -doc, locales), sizes
from a few hundred bytes to tens of MB. `world(seed, release, count)` gives the recipes and their
packages so that each machine's feeds (all + tune + machine arch) hold about `count` package names
in all, the base distro's included. About 5 % of the recipes change per release (version or PR).

Deterministic from (seed, release). World recipes are in the feeds only: images, buildhistory, the
PR server, sstate and defect injection keep to the base distro (writing 20,000 packages' buildhistory
per release would be most of the build's time and none of what the gates look at).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path

from . import pkgcache
from .packages import D, File, Pkg
from .recipes import ALL, BRANCH_POINT, MACH, SOC, TUNE, Recipe, jump

CHURN = 0.05
WORDS = ("alsa audio avahi bluez boost cairo cmake coreutils cups curl dbus dnsmasq dropbear eigen elfutils "
         "ethtool evdev expat fftw file findutils flac fontconfig freetype fribidi gawk gdbm gettext glib "
         "gmp gnutls gpgme grep gstreamer gtk harfbuzz hdparm icu iperf iw jansson jpeg json kbd keyutils "
         "lame lcms ldns libevent libgpg libidn libnl libpcap libpng libsoup libtool libusb libyaml lighttpd "
         "lua lzo mesa minicom mpfr mtd nettle nfs nghttp ntp opus orc pango pciutils pcre perl pixman "
         "popt protobuf pulseaudio qt rpcbind ruby sbc screen sed snappy socat speex sudo taglib tcl "
         "tiff uboot usbutils v4l vim wayland webp wget wpa xcb xkb xml xorg yasm zeromq").split()
LOCALES = ("de fr es it pt ru ja zh-cn ko pl nl sv fi da cs hu tr el he ar uk ro bg hr sk sl lt lv "
           "et ca eu gl nb nn is ga cy").split()
# (family, share of the packages, arch kind, packages per recipe): the big one-recipe families
FAMILIES = [("kernel-module", 0.12, MACH, 400), ("perl-module", 0.08, ALL, 250),
            ("python3", 0.10, TUNE, 1), ("glibc-locale", 0.07, ALL, 300)]
RPM_EPOCH = 1735689600       # one SOURCE_DATE_EPOCH for every world package (rpms are built in batches)


@dataclass
class WorldRecipe:
    recipe: Recipe
    family: str          # "" for an ordinary recipe
    npkgs: int
    libs: list[str]      # library packages of earlier recipes it depends on
    first: int = 0       # a family's recipes number their packages on from here


def _rng(*key) -> random.Random:
    return random.Random(hashlib.sha256(repr(key).encode()).digest())


def _name(i: int) -> str:
    w = WORDS[i % len(WORDS)]
    n = i // len(WORDS)
    return f"{w}{n}" if n else w


BASE_NAMES = 170    # package names the base distro puts in each machine's feeds at release 1


def plan(seed: int, count: int) -> list[WorldRecipe]:
    """The world recipes so that each machine's feeds hold ~`count` names with the base distro's.
    It depends on (seed, count) only: were it sized from the base distro of each release, a recipe
    would get other packages at the same version, which release refuses (published bytes never
    change)."""
    want = max(0, count - BASE_NAMES)
    out: list[WorldRecipe] = []
    got = 0
    for fam, share, kind, per in FAMILIES:
        n = int(want * share)
        if fam == "python3":        # python3-<x>: one recipe each, main package + -dbg... kept small
            for i in range(n // 2):
                r = Recipe(f"python3-{_name(i)}", f"{1 + i % 7}.{i % 13}.{i % 5}", kind, summary=f"Python module {_name(i)}")
                out.append(WorldRecipe(r, fam, 2, []))
            got += (n // 2) * 2
            continue
        for j in range(max(1, math.ceil(n / per)) if n else 0):
            size = min(per, n - j * per)
            if size <= 0:
                break
            r = Recipe(f"{fam}s-world{j}" if j else f"{fam}s-world", "6.6.21" if fam == "kernel-module" else "5.38.2",
                       kind, summary=f"{fam} family")
            out.append(WorldRecipe(r, fam, size, [], first=j * per))
            got += size
    i = 0
    rng = _rng(seed, "world-plan")
    libs: list[str] = ["libc6", "libz1", "libssl3", "libcrypto3"]
    while got < want:
        pn = f"{_name(i)}-world"
        kind = ALL if rng.random() < 0.06 else TUNE
        npkgs = min(want - got, rng.choice((2, 3, 3, 4, 4, 4, 5, 6, 8)))
        r = Recipe(pn, f"{1 + rng.randrange(9)}.{rng.randrange(30)}.{rng.randrange(10)}", kind,
                   license=rng.choice(("MIT", "GPL-2.0-only", "LGPL-2.1-or-later", "BSD-3-Clause", "Apache-2.0")),
                   summary=f"{pn.replace('-world', '')} (world sample recipe)")
        deps = rng.sample(libs, k=min(len(libs), rng.choice((0, 1, 1, 2, 3)))) if kind == TUNE else []
        out.append(WorldRecipe(r, "", npkgs, deps))
        if kind == TUNE and npkgs >= 3:
            libs.append(f"lib{pn}1")
        got += npkgs
        i += 1
    return out


def at_release(seed: int, release: int, count: int, series: str | None = None) -> list[WorldRecipe]:
    """The world recipes of `release`: each release bumps ~5 % of them (version or PR). `series`:
    the next branch's, which starts from the first series' recipes at the branch point with every
    version a major number up (above all its later bumps), then churns on its own."""
    if series:
        recipes = at_release(seed, BRANCH_POINT, count)
        for w in recipes:
            w.recipe.pv = jump(w.recipe.pv)
            w.recipe.prauto = w.recipe.rebuild = 0
        seed += 7919
    else:
        recipes = plan(seed, count)
    for n in range(2, release + 1):
        rng = _rng(seed, "world-churn", n)
        for w in rng.sample(recipes, k=max(1, int(len(recipes) * CHURN))) if recipes else ():
            r = w.recipe
            if rng.random() < 0.5:
                head, _, last = r.pv.rpartition(".")
                r.pv = f"{head}.{int(last) + 1}" if head else str(int(r.pv) + 1)
                r.prauto = r.rebuild = 0
            else:
                r.prauto += 1
                r.rebuild += 1
    return recipes


def _size(rng: random.Random, scale: float = 1.0) -> int:
    """Package payload: log-normal, median ~8 KB, mean ~70 KB, 1 in ~100 over 1 MB, capped at 40 MB."""
    return int(min(40 << 20, max(200, rng.lognormvariate(math.log(8000), 2.1) * scale)))


def fill(key: str, size: int) -> bytes:
    """Made-up file bytes that compress about 3:1 as binaries do: each 4 KiB block is 1,400 random
    bytes and text; fast enough for tens of MB."""
    rng = random.Random(key)
    text = (key.encode()[:60] + b" bindistro world sample data\n") * 40
    rand = rng.randbytes(size * 1400 // 4096 + 1400)
    blocks = [rand[i * 1400:(i + 1) * 1400] + text[:2696] for i in range(size // 4096 + 1)]
    return b"".join(blocks)[:size]


def _dirs(path: str) -> list[File]:
    parts = path.strip("/").split("/")
    return [D("/" + "/".join(parts[:i])) for i in range(1, len(parts) + 1)]


def _files(pkgname: str, ident: str, size: int, rng: random.Random, where: str) -> list[File]:
    nfiles = max(1, min(200, int(rng.lognormvariate(math.log(4), 1.0))))
    base = f"{where}/{pkgname}"
    each = max(1, size // nfiles)
    return _dirs(base) + [File(f"{base}/f{k}", lazy=(f"{ident}:{base}/f{k}", each)) for k in range(nfiles)]


def realize(p: Pkg) -> Pkg:
    """`p` with its files' bytes made (they are left out until a package is written: a world's
    worth of payload would not fit in memory)."""
    if not any(f.lazy for f in p.files):
        return p
    files = [dataclasses.replace(f, data=fill(*f.lazy), lazy=None) if f.lazy else f for f in p.files]
    return dataclasses.replace(p, files=files)


def packages(w: WorldRecipe, arch: str) -> list[Pkg]:
    """The binary packages of world recipe `w` built for `arch`."""
    r = w.recipe
    v = r.version
    rng = _rng(r.pn, v, r.rebuild, "pkgs")
    ident = f"{r.pn}:{v}:{r.rebuild}"       # bytes do not depend on the arch: the same payload twice
    out: list[Pkg] = []
    if w.family == "kernel-module":
        for k in range(w.first, w.first + w.npkgs):
            name = f"kernel-module-{_name(k)}-{k}"
            p = Pkg(name, r, arch, "kernel", f"{name} kernel module", depends=["kernel-image"] if k % 5 == 0 else [])
            p.files = _files(name, ident, _size(rng, 0.6), rng, "/usr/lib/modules")
            out.append(p)
    elif w.family in ("perl-module", "glibc-locale"):
        for k in range(w.first, w.first + w.npkgs):
            name = f"{w.family}-{_name(k)}-{k}" if w.family == "perl-module" else \
                f"glibc-locale-{LOCALES[k % len(LOCALES)]}-{k}"
            p = Pkg(name, r, arch, "libs" if w.family == "perl-module" else "base", f"{name} (world sample)")
            p.files = _files(name, ident, _size(rng, 0.3), rng, "/usr/share/world")
            out.append(p)
    elif w.family == "python3":
        m = Pkg(r.pn, r, arch, "devel/python", r.summary, depends=["libc6"])
        m.files = _files(r.pn, ident, _size(rng), rng, "/usr/lib/python3.12")
        dbg = Pkg(f"{r.pn}-dbg", r, arch, "devel", f"{r.summary} - Debugging files")
        dbg.files = _files(f"{r.pn}-dbg", ident, _size(rng, 3), rng, "/usr/lib/debug")
        out += [m, dbg]
    else:
        names = [r.pn, f"{r.pn}-dev", f"{r.pn}-dbg", f"{r.pn}-doc"]
        if w.npkgs >= 3 and r.kind == TUNE:
            names = [f"lib{r.pn}1", *names]
        names += [f"{r.pn}-locale-{loc}" for loc in LOCALES]
        names = names[:w.npkgs]
        lib = names[0] if names[0].startswith("lib") else None
        for name in names:
            suffix = name.rsplit("-", 1)[1] if name != r.pn and not name.startswith(("lib", f"{r.pn}-locale")) else ""
            p = Pkg(name, r, arch, {"dev": "devel", "dbg": "devel", "doc": "doc"}.get(suffix, "utils"),
                    f"{r.summary}{' - ' + suffix if suffix else ''}")
            if name == r.pn:
                p.depends = sorted(set(w.libs) | ({lib} if lib else set()) | ({"libc6"} if r.kind == TUNE else set()))
            elif name == lib:
                p.depends = ["libc6"]
            elif suffix == "dev":
                p.depends = [f"{lib or r.pn} (= {v})"]
            where = {"dbg": "/usr/lib/debug", "doc": "/usr/share/doc", "dev": "/usr/include"}.get(
                suffix, "/usr/share/locale" if "-locale-" in name else "/usr/lib")
            p.files = _files(name, ident, _size(rng, 4 if suffix == "dbg" else 1), rng, where)
            out.append(p)
    return out


def all_packages(recipes: list[WorldRecipe], machines) -> list[Pkg]:
    archs: list[str] = []
    for m in machines:
        archs += [a for a in m.archs if a not in archs]
    out = []
    for w in recipes:
        kinds = {ALL: ["all"], TUNE: [m.tune for m in machines], MACH: [m.arch for m in machines],
                 SOC: [m.soc_arch for m in machines if m.soc]}[w.recipe.kind]
        for a in dict.fromkeys(kinds):
            out += packages(w, a)
    return out


BATCH_PKGS, BATCH_BYTES = 300, 128 << 20


def write_job(d: Path) -> None:
    """Marks a world job in build.write_deploy's list: the job's `what` is a callable of the dir."""


def deploy_jobs(deploy: Path, pkgs: list[Pkg], formats) -> list[tuple]:
    """Jobs writing the world packages (cached like the base distro's, by what they are built from):
    ipk and deb one per package, rpm in batches of the packages the cache does not hold."""
    from .debbuild import write_deb
    from .ipkbuild import write_ipk
    from .rpmbuild import rpm_arch, rpm_filename, write_rpm_batch
    jobs = []

    def one(writer, fn, p):
        return lambda d: pkgcache.built(writer, (p, RPM_EPOCH), d, lambda: fn(realize(p), d))
    for fmt, fn in (("ipk", lambda p, d: write_ipk(p, d, RPM_EPOCH)),
                    ("deb", lambda p, d: write_deb(p, d, RPM_EPOCH, "zstd"))):
        if fmt not in formats:
            continue
        for p in pkgs:
            d = deploy / fmt / p.arch
            d.mkdir(parents=True, exist_ok=True)
            jobs.append((write_job, one(f"world-{fmt}", fn, p), d))
    if "rpm" not in formats:
        return jobs
    by_arch: dict[str, list[Pkg]] = {}
    for p in pkgs:
        by_arch.setdefault(rpm_arch(p.arch), []).append(p)
    for arch, group in sorted(by_arch.items()):
        d = deploy / "rpm" / arch
        d.mkdir(parents=True, exist_ok=True)
        batch: list[Pkg] = []
        size = 0
        for p in group + [None]:
            if p is not None:
                hit = pkgcache.lookup("world-rpm", (p, RPM_EPOCH))
                if hit is not None:
                    jobs.append((write_job, lambda d, hit=hit: pkgcache.copy_out(hit, d), d))
                    continue
                batch.append(p)
                size += p.size
            if batch and (p is None or len(batch) >= BATCH_PKGS or size >= BATCH_BYTES):
                def build(d, batch=batch):
                    made = write_rpm_batch([realize(q) for q in batch], d, RPM_EPOCH)
                    for q in batch:
                        pkgcache.keep("world-rpm", (q, RPM_EPOCH), [made[rpm_filename(q)]])
                jobs.append((write_job, build, d))
                batch, size = [], 0
    return jobs
