#!/usr/bin/env python3
"""Distro scale: a world-sized sample (`sample-build --packages N`) through stage, verify (by gate),
release and feed index, for R releases with ~5 % churn each. Each step runs as the real CLI in its
own process and is measured there: wall time, CPU (the step, its workers and the gpg-agents it
started: _counted.py), peak RSS (the step and its workers), bytes it read (/proc/PID/io, page cache
included); stage is compared with its floor, the time to sha256 + md5 the
bytes it hashed at this machine's rates (measured in the same run, over the cores stage uses). The
reference tools run on the same trees in the same run: `createrepo_c --update`, `apt-ftparchive
packages`, and `opkg-make-index` when it is on PATH.

    .venv/bin/python bench/scale.py [--packages 20000] [--releases 20] [--formats ipk,rpm,deb] [--smoke] [--json]
                                    [--keep DIR]

--smoke: 300 packages, ipk, 2 releases unless --releases says, an Ed25519 key (does it run? CI runs this;
figures are printed, never judged).
--keep DIR: work in DIR and keep it; each release's figures are appended to DIR/rows.jsonl as it is done,
and a run on a DIR holding them goes on after its last release (at 20,000 names x 3 formats the first
release's round took 42 minutes here, most of it signing every rpm, and 20 releases take hours: longer
than one sitting).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import reference
from _opkg import make_index, present

BIN = Path(sys.executable).parent / "bindistro"
GATES = ("payload", "closure", "upgrade")      # the gates whose cost grows with the feed


def rates() -> dict:
    """sha256 and md5 speed of this machine (bytes/s, one core)."""
    buf = os.urandom(64 << 20)
    out = {}
    for name in ("sha256", "md5"):
        t = time.perf_counter()
        hashlib.new(name, buf).digest()
        out[name] = len(buf) / (time.perf_counter() - t)
    return out


def step(argv: list, cwd: Path | None = None) -> dict:
    """Run one command; wall time, peak RSS of it and its children, bytes read, its stdout."""
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        t = time.perf_counter()
        p = subprocess.Popen([str(a) for a in argv], cwd=cwd, stdout=fo, stderr=fe, text=True)
        # wait4: this command's own peak RSS, its worker processes' included
        _pid, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))}: exit {p.returncode}\n{err[-2000:]}")
    return {"seconds": round(wall, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
            "peak_rss_mb": round(ru.ru_maxrss / 1024), "stdout": out}


def io_step(argv: list, cwd: Path | None = None) -> dict:
    """step() plus the bytes the command and its workers read, and the CPU of the daemons it started
    (gpg-agents: _counted.py runs the command so that their CPU is in cpu_s, daemons_cpu_s says how
    much of it)."""
    with tempfile.NamedTemporaryFile() as f:
        os.environ["SCALE_IO"] = f.name
        r = step([sys.executable, Path(__file__).with_name("_counted.py"), *argv], cwd)
        got = json.loads(Path(f.name).read_text() or "{}")
        r["read_mb_main"] = round(got.get("rchar", 0) / 1e6, 1)
        r["daemons_cpu_s"] = got.get("daemons_cpu_s", 0.0)
    return r


def steal() -> float:
    """Seconds the hypervisor ran something else while this machine's CPUs wanted to run (all CPUs,
    /proc/stat's steal column): a release's CPU time leaves those out, its wall time does not."""
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cli(*args) -> list:
    return [BIN, *args]


def tool_time(argv: list, cwd: Path | None = None) -> float:
    t = time.perf_counter()
    subprocess.run([str(a) for a in argv], cwd=cwd, check=True, capture_output=True)
    return round(time.perf_counter() - t, 3)


ROWS = "rows.jsonl"      # in --keep's DIR: its settings, then one line per release done


def resumed(tmp: Path, proj: Path, settings: dict) -> list[dict]:
    """The rows of the releases an earlier run with --keep did in `tmp` (none: start afresh)."""
    try:
        lines = (tmp / ROWS).read_text().splitlines()
    except FileNotFoundError:
        if proj.exists():
            raise SystemExit(f"{proj}: exists, but {tmp / ROWS} does not: use another --keep directory")
        return []
    if json.loads(lines[0]) != settings:
        raise SystemExit(f"{tmp / ROWS}: made with {lines[0]}, not {json.dumps(settings)}")
    rows = [json.loads(x) for x in lines[1:]]
    done = len(json.loads(subprocess.run([str(BIN), "-C", str(proj), "releases", "--json"], check=True,
                                         capture_output=True, text=True).stdout))
    if done != len(rows):       # (killed between a release and its row: its figures are lost)
        raise SystemExit(f"{tmp}: {done} releases published but {len(rows)} measured; start afresh")
    print(f"resuming after release {len(rows)} ({tmp / ROWS})", file=sys.stderr)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packages", type=int, default=20000)
    ap.add_argument("--releases", type=int)
    ap.add_argument("--formats", default="ipk,rpm,deb")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary directory)")
    a = ap.parse_args()
    if a.smoke:
        a.packages, a.formats = 300, "ipk"
    a.releases = a.releases or (2 if a.smoke else 20)
    fmts = a.formats.split(",")
    os.environ.setdefault("BINDISTRO_KEY_PASSPHRASE", "")
    hashing = rates()
    cores = os.cpu_count() or 1
    print(f"this machine: sha256 {hashing['sha256'] / 1e9:.2f} GB/s, md5 {hashing['md5'] / 1e9:.2f} GB/s per core, "
          f"{cores} cores", file=sys.stderr)
    tmp = a.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    proj = tmp / "proj"
    rows = resumed(tmp, proj, {"packages": a.packages, "formats": fmts}) if a.keep else []
    try:
        if not rows:
            step(cli("-C", proj, "init", "--no-boot"))
            spec = proj / "bindistro.yml"
            spec.write_text(spec.read_text().replace("- ipk\n", "".join(f"- {f}\n" for f in fmts)))
            io_step(cli("-C", proj, "keys", "generate", "--uid", "bench <bench@bindistro.invalid>",
                        *(["--algorithm", "ed25519"] if a.smoke else [])))
            if a.keep:
                (tmp / ROWS).write_text(json.dumps({"packages": a.packages, "formats": fmts}) + "\n")
        # a project's gpg-agent runs on after the command that started it: one left by an earlier run
        # would sign this run's releases outside them (io_step stops those the steps start)
        from bindistro.keys import Keyring
        Keyring(proj / "state" / "gnupg").stop_agent()
        for k in range(len(rows) + 1, a.releases + 1):
            build = tmp / "build"
            row: dict = {"number": k}       # (row["release"]: the release step's figures)
            r = step(cli("sample-build", build, "--release", k, "--packages", a.packages, "--formats", ",".join(fmts),
                         "--json"))
            made = json.loads(r["stdout"])
            row["sample_build"] = {"seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"], "packages": made["packages"]}
            r = io_step(cli("-C", proj, "stage", build, "--json"))
            st = json.loads(r.pop("stdout"))
            floor = st["hashed_bytes"] * (1 / hashing["sha256"] + 1 / hashing["md5"]) / min(cores, 8)
            row["stage"] = dict(r, hashed_files=st["hashed"], hashed_mb=round(st["hashed_bytes"] / 1e6, 1),
                                floor_seconds=round(floor, 3),
                                over_floor=round(r["seconds"] / floor, 2) if floor > 0.05 else None)
            cand = st["candidate"]
            row["verify"] = {}
            for g in GATES:
                r = io_step(cli("-C", proj, "verify", cand, "--gate", g, "--json"))
                r.pop("stdout")
                row["verify"][g] = r
            ref = reference()       # the machine's speed beside the release (_machine.py)
            stolen = steal()
            r = io_step(cli("-C", proj, "release", cand, "--json"))
            r["reference_s"], r["steal_s"] = round(ref, 4), round(steal() - stolen, 2)
            out = json.loads(r.pop("stdout"))
            r["steps"], r["steps_peak_rss_mb"] = out.get("seconds", {}), out.get("peak_rss_mb", {})
            r["steps_cpu"] = out.get("cpu_seconds", {})
            r["site_path_shards"] = out.get("site", {}).get("path_shards")     # patched, or made whole
            r["new_files"] = out.get("new_files", 0)       # the change it carried: the sample's churn varies
            row["release"] = r
            row["index"] = {}
            for fmt in fmts:
                deploy = build / "tmp" / "deploy" / fmt
                feeds = [x for x in deploy.iterdir() if x.is_dir()]
                for d in sorted(feeds, key=lambda x: -len(list(x.glob(f"*.{fmt}"))))[:1]:     # the largest
                    feed = tmp / "index" / fmt
                    shutil.rmtree(feed, ignore_errors=True)
                    shutil.copytree(d, feed, ignore=shutil.ignore_patterns("Packages*", "Release", "repodata", "*.stamps"))
                    ours = step(cli("feed", "index", feed))["seconds"]
                    again = step(cli("feed", "index", feed))["seconds"]
                    ref = {}
                    if fmt == "rpm":
                        ref["createrepo_c"] = tool_time(["createrepo_c", "-q", feed])
                        ref["createrepo_c --update"] = tool_time(["createrepo_c", "-q", "--update", feed])
                    elif fmt == "deb":
                        ref["apt-ftparchive packages"] = tool_time(["sh", "-c", "apt-ftparchive packages . > /dev/null"], feed)
                    elif present():
                        # on a copy of its own (this one holds our Packages and Packages.stamps)
                        theirs = tmp / "index" / "ipk-opkg-make-index"
                        shutil.rmtree(theirs, ignore_errors=True)
                        shutil.copytree(d, theirs, ignore=shutil.ignore_patterns("Packages*"))
                        ref["opkg-make-index"] = tool_time(make_index(theirs))
                    row["index"][fmt] = {"feed": d.name, "packages": len(list(feed.glob(f"*.{fmt}"))),
                                         "full": ours, "unchanged": again, "reference": ref}
            rows.append(row)
            if a.keep:
                with open(tmp / ROWS, "a") as f:
                    f.write(json.dumps(row) + "\n")
            s = row["stage"]
            print(f"release {k:>2}: build {row['sample_build']['seconds']:6.1f} s | stage {s['seconds']:6.2f} s "
                  f"({s['hashed_mb']} MB new, floor {s['floor_seconds']} s, {s['peak_rss_mb']} MB RSS) | verify "
                  + " ".join(f"{g} {v['seconds']:.2f} s ({v['peak_rss_mb']} MB)" for g, v in row["verify"].items())
                  + f" | release {row['release']['seconds']:6.2f} s (CPU {row['release']['cpu_s']:.2f} s, of it gpg-agents "
                  + f"{row['release']['daemons_cpu_s']:.2f} s, steal "
                  + f"{row['release']['steal_s']:.2f} s, path shards {row['release']['site_path_shards']}, "
                  + f"{row['release']['peak_rss_mb']} MB RSS: "
                  + ", ".join(f"{n} {t:.1f}" for n, t in row["release"]["steps"].items()) + "; CPU s: "
                  + ", ".join(f"{n} {t:.1f}" for n, t in row["release"]["steps_cpu"].items()) + "; peak MB after "
                  + ", ".join(f"{n} {m}" for n, m in row["release"]["steps_peak_rss_mb"].items()) + ")",
                  file=sys.stderr, flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    rel = [r["release"]["seconds"] for r in rows]
    norm = [r["release"]["seconds"] / r["release"]["reference_s"] for r in rows]
    # the gpg-agents' signing is in cpu_s (io_step); runs before it had it in no figure, and when rows
    # of both are in one run (resumed) every CPU ratio leaves it out
    agents = [r["release"].get("daemons_cpu_s", 0.0) for r in rows]
    mixed = len({"daemons_cpu_s" in r["release"] for r in rows}) > 1
    without = [r["release"]["cpu_s"] - g for r, g in zip(rows, agents)]
    cpu = without if mixed else [r["release"]["cpu_s"] for r in rows]
    # the goal exempts writing the index files themselves (they list the whole history): the same
    # ratio without the release's index step
    index = [r["release"]["steps_cpu"].get("index", 0) for r in rows]
    cpu_ex = [c - i for c, i in zip(cpu, index)]
    ex_agents = [c - i for c, i in zip(without, index)]
    new = [r["release"].get("new_files", 0) for r in rows]
    summary = {"packages": a.packages, "releases": a.releases, "formats": fmts, "cores": cores,
               "sha256_gbps": round(hashing["sha256"] / 1e9, 2), "md5_gbps": round(hashing["md5"] / 1e9, 2),
               "release_last_over_second": round(rel[-1] / rel[1], 2) if len(rel) > 1 else None,
               # each release divided by the machine's speed measured beside it (it drifts)
               "release_last_over_second_normalized": round(norm[-1] / norm[1], 2) if len(rel) > 1 else None,
               # CPU seconds (the release and its children): time the hypervisor gave away is not in them
               "release_last_over_second_cpu": round(cpu[-1] / cpu[1], 2) if len(rel) > 1 else None,
               # one release is one sample: the median of the last three over that of releases 2-4
               "release_last3_over_2to4_cpu": round(statistics.median(cpu[-3:]) / statistics.median(cpu[1:4]), 2)
               if len(rel) >= 6 else None,
               "release_last3_over_2to4_cpu_except_index": round(statistics.median(cpu_ex[-3:]) / statistics.median(cpu_ex[1:4]), 2)
               if len(rel) >= 6 else None,
               "release_last3_over_2to4_cpu_except_index_and_agents": round(
                   statistics.median(ex_agents[-3:]) / statistics.median(ex_agents[1:4]), 2) if len(rel) >= 6 else None,
               "release_agents_cpu_s": agents,
               "cpu_ratios_with_agents": not mixed,
               # the same ratio of the files they published: growth read beside a change that was not equal
               "new_files_last3_over_2to4": round(statistics.median(new[-3:]) / statistics.median(new[1:4]), 2)
               if len(rel) >= 6 and statistics.median(new[1:4]) else None,
               "peak_rss_mb": max(max(r["stage"]["peak_rss_mb"], r["release"]["peak_rss_mb"],
                                      *(v["peak_rss_mb"] for v in r["verify"].values())) for r in rows),
               "rows": rows}
    if a.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"scale: {a.packages} packages x {','.join(fmts)} x 2 machines, {a.releases} releases: "
              f"release {a.releases} / release 2 = {summary['release_last_over_second']}x (goal <= 1.2; "
              f"{summary['release_last_over_second_normalized']}x with each divided by the machine's speed beside it, "
              f"{summary['release_last_over_second_cpu']}x in CPU seconds"
              + (f", {summary['release_last3_over_2to4_cpu']}x as the median CPU of the last three over releases 2-4, "
                 f"{summary['release_last3_over_2to4_cpu_except_index']}x so without the index step "
                 f"({summary['release_last3_over_2to4_cpu_except_index_and_agents']}x without the gpg-agents' "
                 "signing too, as runs before it measured), carrying "
                 f"{summary['new_files_last3_over_2to4']}x the new files"
                 if summary["release_last3_over_2to4_cpu"] is not None else "") + "); "
              f"peak RSS {summary['peak_rss_mb']} MB (goal <= 1024)")
        for fmt, x in rows[-1]["index"].items():
            print(f"  index {fmt}/{x['feed']} ({x['packages']} packages): full {x['full']} s, unchanged "
                  f"{x['unchanged']} s; reference: {x['reference'] or 'none on PATH'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
