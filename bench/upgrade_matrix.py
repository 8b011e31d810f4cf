#!/usr/bin/env python3
"""The real package-manager upgrade matrix on the SAMPLE distro, boot after upgrade included:
releases 1..4 published, release 5 as the candidate, every path (first, last, random, n-2) for ipk
(opkg), rpm (dnf) and deb (apt) on qemux86-64 and qemuarm64 (maintainer scripts through qemu-user),
each upgraded root booted in QEMU with the candidate's kernel. Prints the matrix's wall time next
to the sum of its parts run one after another, and the goal (<= 300 s on 2 cores).

    .venv/bin/python bench/upgrade_matrix.py [--smoke] [WORKDIR]

--smoke: ipk only, release 1 published (no baseline boots), release 2 as the candidate, verified on
qemux86-64 only (one path and the boot after upgrade, no fresh boot).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bindistro import spec as specmod
from bindistro import verify
from bindistro.release import release
from bindistro.restore import project_trust, restore
from bindistro_sample.build import generate
from bindistro.stage import stage
from bindistro.store import Store

GOAL = 300.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir", nargs="?")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="bench-upgrade-"))
    formats = ("ipk",) if a.smoke else ("ipk", "rpm", "deb")
    last = 2 if a.smoke else 5
    proj = work / "proj"
    proj.mkdir(parents=True, exist_ok=True)
    sp = specmod.default_spec("bench", sample=True)
    sp.formats = list(formats)
    specmod.dump(sp, proj / specmod.SPEC_FILE)
    sp = specmod.load(proj / specmod.SPEC_FILE)
    store = Store(sp.state_path)
    cand = None
    for n in range(1, last + 1):
        build = work / f"build-{n}"
        if n > 1:
            restore(build, sp.publish_path, None, sp.publish_url, trust=project_trust(sp, own_tree=True))
        g = generate(build, n, 1, formats=formats)
        cand = stage(store, build, sp)["candidate"]
        if n < last:
            # the boot results are a baseline (the smoke runs the code paths, not a comparison)
            verify.run(sp, store, cand, ["closure"] if a.smoke else ["closure", "boot"])
            release(sp, store, cand, sp.format_release_name(n))
        print(f"release {n}: {g['packages']} packages per format", file=sys.stderr)
    if a.smoke:     # the code paths on one machine: the boots of both are test_ipk_upgrade.py's
        sp.machines = sp.machines[:1]
    t0 = time.monotonic()
    # the smoke boots only the upgraded system (fresh boots: test_boot.py and test_ipk_upgrade.py)
    rep = verify.run(sp, store, cand, ["pm-upgrade"] if a.smoke else ["boot", "pm-upgrade"])
    wall = time.monotonic() - t0
    upgrades = [f for f in rep["findings"] if "upgrade passed" in f["message"]]
    boots = [f for f in rep["findings"] if f["gate"] == "pm-upgrade" and "boot" in f["details"]
             and f["details"].get("verdict") == "PASS"]
    fresh = [f for f in rep["findings"] if f["gate"] == "boot" and "seconds" in f["details"]]
    errors = [f for f in rep["findings"] if f["severity"] == "error"]
    serial = (sum(f["details"]["seconds"] for f in upgrades) + sum(f["details"]["boot"]["seconds"] for f in boots)
              + sum(f["details"]["seconds"] for f in fresh))
    for f in upgrades:
        print(f"  {f['subject']}: upgrade {f['details']['seconds']:.1f} s")
    for f in boots:
        print(f"  {f['subject']}: boot after upgrade {f['details']['boot']['seconds']:.1f} s")
    print(f"upgrade matrix: {len(upgrades)} paths upgraded, {len(boots)} upgraded systems booted, "
          f"{len(fresh)} fresh images booted, {len(errors)} errors")
    for f in errors[:10]:
        print(f"  error: {f['subject']}: {f['message']}")
    print(f"wall time {wall:.1f} s; parts one after another {serial:.1f} s (parallel/serial = "
          f"{wall / max(serial, 0.1):.2f}x); goal {GOAL:.0f} s (wall/goal = {wall / GOAL:.2f}x)")


if __name__ == "__main__":
    main()
