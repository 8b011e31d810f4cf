#!/usr/bin/env python3
"""Benchmark `bindistro feed index` on N generated ipks (default 5,000), then re-indexing after 1 %
new packages. Prints the ratio against opkg-make-index when that tool is on PATH (same tree, same run).

    .venv/bin/python bench/index_ipk.py [N] [--smoke]

--smoke: 200 packages (does it run? CI runs this; figures are printed, never judged there).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _opkg import make_index, present
from bindistro import feed
from bindistro.formats import get
from bindistro_sample.ipkbuild import write_ipk
from bindistro_sample.packages import build_packages
from bindistro_sample.recipes import Recipe


def make(d: Path, start: int, count: int) -> None:
    def one(i: int) -> None:
        r = Recipe(f"bench{i:05d}", f"1.{i % 7}.{i % 13}", rdepends=["libc6"], summary=f"bench package {i}")
        write_ipk(build_packages(r, "core2-64")[0], d, 1700000000)
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(one, range(start, start + count)))


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=5000)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    n = 200 if a.smoke else a.n
    extra = max(1, n // 100)
    ipk = get("ipk")
    opkg = present()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "feed"
        d.mkdir()
        print(f"generating {n} ipks ...", file=sys.stderr)
        make(d, 0, n)
        full = timed(lambda: feed.index(ipk, d))
        ref_full = ref_incr = None
        if opkg:
            ref = Path(tmp) / "ref"
            shutil.copytree(d, ref)
            for f in ref.glob("Packages*"):
                f.unlink()
            ref_full = timed(lambda: subprocess.run(make_index(ref), check=True, capture_output=True))
        unchanged = timed(lambda: feed.index(ipk, d))
        make(d, n, extra)
        incr = timed(lambda: feed.index(ipk, d))
        if opkg:
            make(ref, n, extra)
            ref_incr = timed(lambda: subprocess.run(make_index(ref), check=True, capture_output=True))
    print(f"packages: {n}, added: {extra}")
    print(f"bindistro feed index, full:        {full:8.2f} s  ({n / full:,.0f} pkg/s)")
    print(f"bindistro feed index, unchanged:   {unchanged:8.2f} s")
    print(f"bindistro feed index, +1 %:        {incr:8.2f} s")
    if opkg:
        print(f"opkg-make-index, full:             {ref_full:8.2f} s   ratio {full / ref_full:.2f}x")
        print(f"opkg-make-index, +1 %:             {ref_incr:8.2f} s   ratio {incr / ref_incr:.2f}x")
    else:
        print("opkg-make-index: not on PATH (opkg-utils is not packaged for Debian 12); no ratio printed")


if __name__ == "__main__":
    main()
