#!/usr/bin/env python3
"""The real package-manager upgrade matrix on the SAMPLE distro: releases 1..4 published, release 5
as the candidate, every path (first, last, random, n-2) for rpm (dnf) and deb (apt), qemux86-64.
Prints the matrix's wall time next to the sum of its paths run one after another (what the parallel
roots save) and the goal (<= 60 s on 2 cores for ~300 packages, 4 paths, 2 formats).

    .venv/bin/python bench/upgrade_matrix.py [WORKDIR]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bindistro import spec as specmod
from bindistro import verify
from bindistro.release import release
from bindistro.restore import restore
from bindistro.sample.build import generate
from bindistro.stage import stage
from bindistro.store import Store

GOAL = 60.0


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="bench-upgrade-"))
    proj = work / "proj"
    proj.mkdir(parents=True, exist_ok=True)
    sp = specmod.default_spec("bench", boot=False)
    sp.formats = ["rpm", "deb"]
    specmod.dump(sp, proj / specmod.SPEC_FILE)
    sp = specmod.load(proj / specmod.SPEC_FILE)
    store = Store(sp.state_path)
    cand = None
    for n in range(1, 6):
        build = work / f"build-{n}"
        if n > 1:
            restore(build, sp.publish_path, None, sp.publish_url)
        g = generate(build, n, 1, formats=("rpm", "deb"))
        cand = stage(store, build, sp)["candidate"]
        if n < 5:
            verify.run(sp, store, cand, ["closure"])
            release(sp, store, cand, sp.format_release_name(n))
        print(f"release {n}: {g['packages']} packages per format", file=sys.stderr)
    t0 = time.monotonic()
    rep = verify.run(sp, store, cand, ["pm-upgrade"])
    wall = time.monotonic() - t0
    paths = [f for f in rep["findings"] if f["details"].get("seconds") is not None and "upgrade passed" in f["message"]]
    errors = [f for f in rep["findings"] if f["severity"] == "error"]
    serial = sum(f["details"]["seconds"] for f in paths)
    for f in paths:
        print(f"  {f['subject']}: {f['details']['seconds']:.1f} s")
    print(f"upgrade matrix: {len(paths)} paths passed, {len(errors)} errors")
    print(f"wall time {wall:.1f} s; paths one after another {serial:.1f} s (parallel/serial = {wall / serial:.2f}x); "
          f"goal {GOAL:.0f} s (wall/goal = {wall / GOAL:.2f}x)")


if __name__ == "__main__":
    main()
