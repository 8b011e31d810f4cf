#!/usr/bin/env python3
"""Release cost must not grow with the number of releases: 20 consecutive releases of the sample,
about 5 % of its packages changing each time (all three formats, signed). Prints the time of each
release and the ratio of the last to the 2nd (goal: <= 1.2).

Each release is also divided by the machine's speed measured just before it (bench/_machine.py):
the machine drifts, and the plain ratio then measures it as much as the code. Both are printed.

Release 1 is a whole sample build; each later candidate is that build's package files plus the
changed packages at a new version (bindistro_sample.churn), so the cumulative feeds grow as a
distro's do. Candidates are verified with the `logs` gate only: this measures publishing.

    .venv/bin/python bench/release_growth.py [--releases 20] [--churn 17] [--smoke]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bindistro import spec as specmod
from bindistro import verify
from bindistro.keys import Keyring
from bindistro.release import release
from bindistro_sample.build import generate
from bindistro_sample.churn import write_churn
from bindistro.stage import stage
from _machine import reference
from bindistro.store import Store


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--releases", type=int, default=20)
    ap.add_argument("--churn", type=int, default=17, help="packages changing per release (17 = ~5%% of the sample)")
    ap.add_argument("--smoke", action="store_true", help="4 releases of 40 small packages, 3 changed: does it run?")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", type=Path, help="work in this new directory and keep it (to profile a later release)")
    a = ap.parse_args()
    if a.smoke:
        a.releases, a.churn = 4, 3
    os.environ.setdefault("BINDISTRO_KEY_PASSPHRASE", "")
    with contextlib.nullcontext(a.keep) if a.keep else tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        tmp = Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        if a.smoke:     # the code paths, not the sizes: no sample build, no rpm signing of 340 packages
            write_churn(tmp / "b1" / "tmp" / "deploy", 1, 40, prefix="base")
        else:
            generate(tmp / "b1", 1, 1)
        print(f"sample build: {time.perf_counter() - t:.1f} s", file=sys.stderr)
        sp = specmod.default_spec("bench-distro", boot=False)
        sp.formats = ["ipk", "rpm", "deb"]
        sp.path = tmp / "p" / specmod.SPEC_FILE
        sp.path.parent.mkdir()
        store = Store(sp.state_path)
        sp.signing_key = Keyring(store.dir / "gnupg").generate("bench <bench@bindistro.invalid>")
        specmod.dump(sp, sp.path)
        sp = specmod.load(sp.path)
        rows = []
        for k in range(1, a.releases + 1):
            src = tmp / "b1" if k == 1 else write_churn(tmp / f"d{k}", k, a.churn, tmp / "b1" / "tmp" / "deploy")
            cid = stage(store, src, sp)["candidate"]
            verify.run(sp, store, cid, only=["logs"])
            ref = reference()       # the machine's speed beside this release (_machine.py)
            t = time.perf_counter()
            r = release(sp, store, cid)
            dt_ = time.perf_counter() - t
            pkgs = len(store.db.released_packages())
            rows.append({"release": r["release"], "seconds": round(dt_, 3), "reference_s": round(ref, 4),
                         "new_files": r["new_files"], "cumulative_packages": pkgs, "steps": r["seconds"]})
            print(f"release {r['release']:>5}: {dt_:6.2f} s  {r['new_files']:4d} new files, "
                  f"{pkgs} packages in the feeds ({', '.join(f'{s} {v:.2f}' for s, v in r['seconds'].items())})",
                  file=sys.stderr)
        ratio = rows[-1]["seconds"] / rows[1]["seconds"]
        # one release is a noisy sample: the median of the last three against the 2nd to 4th too
        early = statistics.median(r["seconds"] for r in rows[1:4])
        late = statistics.median(r["seconds"] for r in rows[-3:])
        # each release in units of the machine's speed beside it: the ratio of the code's growth alone
        norm = [r["seconds"] / r["reference_s"] for r in rows]
        n_ratio = norm[-1] / norm[1]
        n_late_early = statistics.median(norm[-3:]) / statistics.median(norm[1:4])
        res = {"releases": rows, "last_over_second": round(ratio, 3), "late_over_early_median": round(late / early, 3),
               "normalized_last_over_second": round(n_ratio, 3), "normalized_late_over_early_median": round(n_late_early, 3),
               "goal": 1.2}
        print(json.dumps(res, indent=1) if a.json else
              f"release {rows[-1]['release']} / release {rows[1]['release']}: {ratio:.2f}x; median of the last 3 / "
              f"median of releases 2-4: {late / early:.2f}x (goal <= 1.2); each divided by the machine's speed "
              f"beside it (bench/_machine.py): {n_ratio:.2f}x and {n_late_early:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
