#!/usr/bin/env python3
"""Incremental rpm publish: a 5,000-package cumulative feed gets a release of 250 new packages (release
2's build holds release 1's files and the new ones, as a build dir does).
Prints bindistro's publish time, whole and by step, next to `createrepo_c --update` on the same
tree, in the same run (goal: the index step <= 0.5x; the whole release also writes the manifest,
the listing and the feed viewer's pages of what changed).

    .venv/bin/python bench/publish_rpm.py [N] [NEW] [--smoke]

--smoke: 20 + 2 packages (does it run? CI runs this; figures are printed, never judged there).
The candidates are verified with the closure gate only: the bench measures publishing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bindistro import spec as specmod
from bindistro import verify
from bindistro.release import release
from bindistro_sample.packages import build_packages
from bindistro_sample.recipes import Recipe
from bindistro_sample.rpmbuild import write_rpms
from bindistro.stage import stage
from bindistro.store import Store

PER_SPEC = 100   # packages per rpmbuild run (subpackages of one synthetic recipe)


def make(d: Path, start: int, count: int, base: bool = False) -> None:
    d.mkdir(parents=True, exist_ok=True)
    if base:      # what every package depends on, so the candidates are installable (closure gate)
        write_rpms(build_packages(Recipe("libc6", "2.39"), "core2-64")[:1], d, 1700000000)

    def group(g: int) -> None:
        r = Recipe(f"grp{g:04d}", "1.0", summary=f"bench group {g}")
        pkgs = []
        for i in range(start + g * PER_SPEC, min(start + count, start + (g + 1) * PER_SPEC)):
            p = build_packages(Recipe(f"bench{i:05d}", "1.0", rdepends=["libc6"]), "core2-64")[0]
            p.recipe = r
            pkgs.append(p)
        write_rpms(pkgs, d, 1700000000)
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(group, range((count + PER_SPEC - 1) // PER_SPEC)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=5000)
    ap.add_argument("new", nargs="?", type=int, default=250)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    n, new = (20, 2) if a.smoke else (a.n, a.new)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        print(f"building {n} + {new} rpms with rpmbuild ...", file=sys.stderr)
        make(t / "r1" / "core2_64", 0, n, base=True)
        make(t / "new" / "core2_64", n, new)
        # release 2's build dir holds release 1's files (as a build dir keeps its deploy files: same
        # inodes) and the new ones: a candidate is the whole build, not only what changed
        shutil.copytree(t / "r1", t / "r2", copy_function=os.link)
        for f in (t / "new" / "core2_64").iterdir():
            os.link(f, t / "r2" / "core2_64" / f.name)
        sp = specmod.default_spec("bench")
        sp.formats = ["rpm"]
        sp.path = t / "proj" / "bindistro.yml"
        sp.path.parent.mkdir()
        specmod.dump(sp, sp.path)
        sp = specmod.load(sp.path)
        store = Store(sp.state_path)
        c1 = stage(store, t / "r1", sp)["candidate"]
        verify.run(sp, store, c1, ["closure"])
        t0 = time.perf_counter()
        release(sp, store, c1, "r1")
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        c2 = stage(store, t / "r2", sp)["candidate"]
        staged = time.perf_counter() - t0
        verify.run(sp, store, c2, ["closure"])
        t0 = time.perf_counter()
        steps = release(sp, store, c2, "r2")["seconds"]
        ours = time.perf_counter() - t0
        # the reference: the same cumulative tree before release 2, plus the new files, then --update
        ref = t / "ref"
        shutil.copytree(t / "r1" / "core2_64", ref)
        subprocess.run(["createrepo_c", "-q", str(ref)], check=True)
        for f in (t / "new" / "core2_64").glob("*.rpm"):
            shutil.copy2(f, ref / f.name)
        t0 = time.perf_counter()
        subprocess.run(["createrepo_c", "--update", "-q", str(ref)], check=True)
        theirs = time.perf_counter() - t0
    print(f"packages: {n} published, {new} new")
    print(f"bindistro release, first ({n}):          {first:7.2f} s")
    print(f"bindistro stage of the new release:        {staged:7.2f} s  (reads and checks only the {new} new files)")
    print(f"bindistro release, incremental:            {ours:7.2f} s  ({', '.join(f'{k} {v:.2f}' for k, v in steps.items())})")
    print(f"createrepo_c --update, same tree:          {theirs:7.2f} s")
    print(f"ratio, the release's index step:           {steps['index'] / theirs:7.2f}x  (goal <= 0.5x: the work createrepo_c does)")
    print(f"ratio, the whole release:                  {ours / theirs:7.2f}x  (signing, manifest, listing, site, commit besides)")


if __name__ == "__main__":
    main()
