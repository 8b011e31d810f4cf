"""SAMPLE DATA: the build directory's persistent state — PR server answers, sstate cache, layers."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import zstandard

from bindistro.yocto import layers as layersmod
from bindistro.yocto import prserv
from .recipes import ALL, MACH, SOC, Recipe

NATIVE = ["quilt-native", "pseudo-native", "opkg-utils-native"]


def recipe_archs(r: Recipe, machines) -> list[str]:
    if r.kind == ALL:
        return ["all"]
    if r.kind == MACH:
        return [m.arch for m in machines]
    if r.kind == SOC:
        return [m.soc_arch for m in machines if m.soc]
    return list(dict.fromkeys(m.tune for m in machines))


def checksum(r: Recipe, arch: str) -> str:
    return hashlib.sha256(f"task:{r.pn}:{r.pkgv}:{arch}:{r.rebuild}".encode()).hexdigest()


def assign_pr(db: Path, recipes: dict[str, Recipe], machines) -> None:
    """Ask the build dir's PR database for each recipe's PRAUTO, as bitbake's PR server would.

    A restored database knows every released checksum, so values keep rising; an empty one starts
    again at 0 — the failure `bindistro restore` exists to prevent."""
    con = prserv.ensure(db)
    with con:
        for r in recipes.values():
            values = [prserv.get_value(con, f"{r.pn}-{r.pv}-{r.pr}", a, checksum(r, a)) for a in recipe_archs(r, machines)]
            r.prauto = max(values)
    con.close()


def unihash(r: Recipe, arch: str, task: str) -> str:
    return hashlib.sha256(f"uni:{r.pn}:{r.pkgv}:{arch}:{r.rebuild}:{task}".encode()).hexdigest()


def write_sstate(root: Path, recipes: dict[str, Recipe], machines) -> int:
    """A small sstate cache in OE's layout; unchanged recipes give the same objects every release."""
    n = 0
    zc = zstandard.ZstdCompressor(level=3)
    items = []
    for r in recipes.values():
        for a in recipe_archs(r, machines):
            for task in ("populate_sysroot", "package_write_ipk"):
                h = unihash(r, a, task)
                name = f"sstate:{r.pn}:{a}-poky-linux:{r.pv}:{r.pr}:{a}:11:{h}_{task}.tar.zst"
                items.append((f"{h[:2]}/{h[2:4]}/{name}", f"{r.pn} {r.pkgv} {a} {task} {r.rebuild}"))
    for pn in NATIVE:
        h = hashlib.sha256(f"native:{pn}".encode()).hexdigest()
        name = f"sstate:{pn}:x86_64-linux:1.0:r0:x86_64:11:{h}_populate_sysroot.tar.zst"
        items.append((f"universal/{h[:2]}/{h[2:4]}/{name}", f"{pn} native"))
    for rel, what in items:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
            data = f"bindistro SAMPLE DATA sstate object: {what}\n".encode() * 20
            ti = tarfile.TarInfo("./sample-output")
            ti.size, ti.mtime = len(data), 1700000000
            tf.addfile(ti, io.BytesIO(data))
        p.write_bytes(zc.compress(buf.getvalue()))
        p.with_name(p.name + ".siginfo").write_bytes(zc.compress(f"siginfo of {what}\n".encode()))
        n += 1
    return n


def sample_layers(seed: int, release: int) -> list[layersmod.Layer]:
    def commit(name: str, n: int) -> str:
        return hashlib.sha1(f"layer:{name}:{seed}:{n}".encode()).hexdigest()
    return [layersmod.Layer("poky", "https://git.yoctoproject.org/poky", commit("poky", 1), "scarthgap", "layers/poky"),
            layersmod.Layer("meta-openembedded", "https://git.openembedded.org/meta-openembedded",
                            commit("meta-openembedded", 1), "scarthgap", "layers/meta-openembedded"),
            layersmod.Layer("meta-sample", "https://sample.bindistro.invalid/meta-sample.git",
                            commit("meta-sample", release), "main", "layers/meta-sample")]
