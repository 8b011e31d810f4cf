#!/usr/bin/env python3
"""Stage of a real-size ipk feed against its floor. The sample's packages are small (36 KB on
average); a real `bitbake world` feed's are not (a Kirkstone raspberrypi3-64 feed: 5,021 ipks,
438 MB, 87 KB on average, a long tail up to tens of MB). This takes the sample's x86 ipk feeds (real
control data, real names and dependencies), gives each package a payload of random bytes with a
lognormal size, scaled to that total, indexes each feed as a deploy directory has it, then stages
it into a new project (the real CLI, 3 runs). Stage never unpacks a payload, so random bytes
stand for one; nothing else reads these packages.

Floor: sha256 + md5 of the packages' bytes at this machine's rates, measured just before each stage
(this machine's speed drifts by a quarter within minutes), on one core and over the cores stage
uses. Goal (issue 17): stage <= 1.5 x floor + 0.5 s; both readings of the floor are reported.

Then `feed index` of the same feeds (full on a fresh copy, then unchanged), against opkg-make-index
(--checksum md5 --checksum sha256) on another copy when it is on PATH (issue 17: full <= 0.5 x).
opkg-utils is not packaged for Debian 12: a build has it as opkg-utils-native, or put a checkout
of opkg-utils (its Python 3 opkg-make-index, opkg.py, arfile.py) on PATH.

    .venv/bin/python bench/stage_realsize.py [--packages 5000] [--mb 438] [--runs 3] [--smoke] [--json]

--smoke: 300 packages, 10 MB, one run (does it run? CI runs this; figures are printed, never judged).

On an ext4 without a journal (this machine's root), a file created within minutes of a mass
deletion is slow: inode allocation skips the inodes freed meanwhile (ext4's recently_deleted),
measured 0.6-0.7 s of system time for 5,000 creates against 0.04 s. A run right after deleting a
big tree (an earlier project, a build's work dirs) shows that in stage's workers, not stage's own
cost; the median of the runs is the figure.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from debian import arfile

from _opkg import make_index, present
from bindistro_sample.ipkbuild import ar_archive

BIN = Path(sys.executable).parent / "bindistro"
FEEDS = ("all", "core2-64", "qemux86_64")       # the x86 machine's ipk feeds


def run(*args: str, cwd: Path | None = None) -> float:
    t = time.perf_counter()
    subprocess.run([str(BIN), *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def make_feed(build: Path, out: Path, total: int, seed: int) -> list[Path]:
    """The sample's x86 ipks with lognormal random payloads summing to about `total` bytes."""
    src = sorted(p for f in FEEDS for p in (build / "tmp/deploy/ipk" / f).glob("*.ipk"))
    rng = random.Random(seed)
    sigma = 1.7                         # median ~ a quarter of the mean, as in the real feed
    raw = [rng.lognormvariate(math.log(total / len(src)) - sigma ** 2 / 2, sigma) for _ in src]
    scale = total / sum(raw)
    pool = os.urandom(32 << 20)
    files = []
    for p, r in zip(src, raw):
        n = max(200, min(int(r * scale), 40 << 20))
        data = (pool * (n // len(pool) + 1))[:n] if n > len(pool) else pool[(k := rng.randrange(len(pool) - n + 1)):k + n]
        a = arfile.ArFile(str(p))
        members = [(m.name, data if m.name.startswith("data.tar") else a.getmember(m.name).read()) for m in a.getmembers()]
        dst = out / p.parent.name / p.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(ar_archive(members))
        files.append(dst)
    for f in FEEDS:
        if (out / f).is_dir():
            run("feed", "index", str(out / f))
    return files


def rates(files: list[Path]) -> dict:
    """sha256 and md5 over these very files (bytes/s, one core)."""
    data = [f.read_bytes() for f in files]
    n = sum(map(len, data))
    out = {}
    for name in ("sha256", "md5"):
        t = time.perf_counter()
        for d in data:
            hashlib.new(name, d).digest()
        out[name] = n / (time.perf_counter() - t)
    return out


def index_times(feed: Path, tmp: Path) -> dict:
    """`feed index` of each feed dir of `feed`, full (a fresh copy: nothing known) and unchanged (again),
    and opkg-make-index's (md5 and sha256, as the index has both) on another copy when it is on PATH."""
    ref_tool = present()
    ours, ref = tmp / "index-ours", tmp / "index-ref"
    for f in FEEDS:
        for d in (ours, ref) if ref_tool else (ours,):
            (d / f).mkdir(parents=True)
            for p in (feed / f).glob("*.ipk"):
                shutil.copyfile(p, d / f / p.name)

    def timed(cmds: list[list[str]]) -> float:
        t = time.perf_counter()
        for c in cmds:
            subprocess.run(c, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t
    mine = [[str(BIN), "feed", "index", str(ours / f)] for f in FEEDS]
    out = {"index_full_s": round(timed(mine), 2), "index_unchanged_s": round(timed(mine), 2)}
    if ref_tool:
        theirs = [make_index(ref / f) for f in FEEDS]
        out["opkg_make_index_full_s"] = round(timed(theirs), 2)
        out["opkg_make_index_unchanged_s"] = round(timed(theirs), 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packages", type=int, default=5000)
    ap.add_argument("--mb", type=float, default=438)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.packages, a.mb, a.runs = 300, 10, 1
    with tempfile.TemporaryDirectory(prefix="bench-stage-") as tmp:
        tmp = Path(tmp)
        print(f"sample build of {a.packages} names ...", file=sys.stderr)
        run("sample-build", "--release", "1", "--formats", "ipk", "--packages", str(a.packages), str(tmp / "build"))
        feed = tmp / "feed"
        files = make_feed(tmp / "build", feed, int(a.mb * 1e6), 17)
        size = sum(f.stat().st_size for f in files)
        cores = min(os.cpu_count() or 1, 8)
        times, floors, rs = [], [], []
        for k in range(a.runs):
            r = rates(files)        # beside each run: the ratio compares like with like
            rs.append(r)
            floors.append(size / r["sha256"] + size / r["md5"])
            proj = tmp / f"p{k}"
            proj.mkdir()
            run("init", "--no-boot", cwd=proj)
            times.append(run("stage", str(feed), cwd=proj))
        index = index_times(feed, tmp)
        med, floor1 = statistics.median(times), statistics.median(floors)
        floor = floor1 / cores
        ratios = [t / f for t, f in zip(times, floors)]
        res = {"packages": len(files), "mb": round(size / 1e6, 1), "runs": [round(t, 2) for t in times],
               "floors_one_core": [round(f, 2) for f in floors], "stage_s": round(med, 2),
               "sha256_gbps": round(statistics.median(x["sha256"] for x in rs) / 1e9, 2),
               "md5_gbps": round(statistics.median(x["md5"] for x in rs) / 1e9, 2),
               "cores": cores, "floor_one_core_s": round(floor1, 2), "floor_s": round(floor, 2),
               "goal_s": round(1.5 * floor + 0.5, 2), "goal_one_core_floor_s": round(1.5 * floor1 + 0.5, 2),
               "runs_over_one_core_floor": [round(x, 2) for x in ratios], **index}
        ref = (f"; opkg-make-index {index['opkg_make_index_full_s']:.2f} s, "
               f"{index['opkg_make_index_unchanged_s']:.2f} s (ratio {index['index_full_s'] / index['opkg_make_index_full_s']:.2f})"
               if "opkg_make_index_full_s" in index else "; opkg-make-index: not on PATH")
        print(json.dumps(res, indent=1) if a.json else
              f"stage of a real-size feed: {len(files)} ipks, {size / 1e6:.0f} MB: {med:.2f} s (runs: "
              f"{', '.join(f'{t:.2f}' for t in times)}); floor {floor:.2f} s over {cores} cores ({floor1:.2f} s on "
              f"one; sha256 {res['sha256_gbps']:.2f}, md5 {res['md5_gbps']:.2f} GB/s; each run / its floor on one "
              f"core: {', '.join(f'{x:.2f}' for x in ratios)}); goal 1.5 x floor + 0.5 = {1.5 * floor + 0.5:.2f} s "
              f"({1.5 * floor1 + 0.5:.2f} s with the one-core floor)\n"
              f"feed index of the same feed: {index['index_full_s']:.2f} s full, {index['index_unchanged_s']:.2f} s "
              f"unchanged{ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
