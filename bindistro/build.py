"""`bindistro build`: restore the last release, run kas or bitbake with a captured console log."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

from .errors import BindistroError
from .spec import Spec, check_eol
from .store import Store


def command(spec: Spec, kas_file: Path | None, targets: list[str]) -> list[str]:
    if kas_file:
        cmd = ["kas", "build", str(kas_file)]
        for t in targets:
            cmd += ["--target", t]
        return cmd
    return ["bitbake", *(targets or spec.targets)]


def run_build(spec: Spec, store: Store, build_dir: Path, kas_file: Path | None, targets: list[str],
              stage_after: bool = False, dry_run: bool = False) -> dict:
    check_eol(spec, "builds")
    build_dir = build_dir.resolve()
    cmd = command(spec, kas_file, targets)
    if not kas_file and not cmd[1:]:
        raise BindistroError(f"{spec.path}: targets: nothing to build (list targets in the spec or pass them after --)")
    res = {"command": cmd, "build_dir": str(build_dir)}
    if dry_run:
        return res
    from . import series
    last = series.latest(spec, store, spec.current)
    if last:
        from .restore import project_trust, restore
        res["restored"] = restore(build_dir, spec.publish_path, last.name, spec.publish_url,
                                  trust=project_trust(spec, own_tree=True))["release"]
    else:
        # nothing to restore yet: the feed settings alone, so the first images are preconfigured too
        from .restore import configure_feeds
        res["configured"] = configure_feeds(spec, store, build_dir)["conf"]
    if not shutil.which(cmd[0]):
        raise BindistroError(f"{cmd[0]}: not found on PATH" + ("" if kas_file else
                             " (source oe-init-build-env first, or build with --kas FILE)"))
    logdir = build_dir / "tmp" / "log" / "bindistro"
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"console-{dt.datetime.now():%Y%m%d%H%M%S}.log"
    env = dict(os.environ)
    if kas_file:
        env["KAS_BUILD_DIR"] = str(build_dir)
    last = []
    with open(log, "w") as f, subprocess.Popen(cmd, cwd=build_dir if not kas_file else kas_file.parent, env=env,
                                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            f.write(line)
            last = (last + [line.rstrip()])[-5:]
    res.update(log=str(log), returncode=p.returncode)
    if p.returncode != 0:
        tail = next((l for l in reversed(last) if l.strip()), "")
        raise BindistroError(f"build failed (exit {p.returncode}): {tail[:200]} — console log {log}")
    if stage_after:
        from .stage import stage
        res["candidate"] = stage(store, build_dir, spec)["candidate"]
    return res
