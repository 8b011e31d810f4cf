"""`bindistro feed add-custom NAME DIR --key FPR`: a user's own packages in a feed of their own
(publish/custom/NAME/<format>/<arch>/), cumulative like the official feeds and signed with the
user's key, which devices can trust beside the distro's."""
from __future__ import annotations

import json
import re
from pathlib import Path

from . import feed
from .errors import BadInput, BindistroError, Problem
from .formats.base import PackageError, scan_files
from .release.sign import Signer
from .spec import Spec
from .store import Store
from .store.objects import hash_file, place, write_bytes_atomic

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def add(spec: Spec, store: Store, name: str, src: Path, fpr: str) -> dict:
    if not _NAME.match(name):
        raise BindistroError(f"custom feed name {name!r}: use lower-case letters, digits and . _ -")
    try:
        fmt = feed.detect_format(src)
    except ValueError as e:
        raise BindistroError(str(e)) from None
    signer = Signer(spec, store, fpr)          # refuses an unknown key before anything is written
    root = spec.publish_path / "custom" / name
    meta_file = root / "feed.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta["format"] != fmt.name or meta["key"] != fpr:
            raise BindistroError(f"{meta_file}: custom feed {name} is {meta['format']} signed by {meta['key']}; "
                                 "use another name for another format or key")
    problems, plan = [], []
    files = scan_files(fmt, src)
    fmt.prepare([src / f for f in files])
    for rel in files:
        path = src / rel
        try:
            info = fmt.read(path, deep=True)
        except PackageError as e:
            problems += [Problem(str(path), m) for m in e.problems]
            continue
        dest = root / fmt.name / fmt.feed_arch(info, rel) / path.name
        if dest.exists() and hash_file(dest)[0] != hash_file(path)[0]:
            problems.append(Problem(str(path), f"would replace published {dest.relative_to(spec.publish_path)} "
                                    "with different content (bump the version)"))
        plan.append((path, dest))
    if problems:
        raise BadInput(problems)
    if not plan:
        raise BadInput([Problem(str(src), f"no {fmt.name} packages to publish")])
    new = 0
    for path, dest in plan:
        if not dest.exists():
            place(path, dest, link=False)
            new += 1
    for d in sorted({dest.parent for _p, dest in plan}):
        feed.index(fmt, d, all_versions=True)
        signer.sign_feed(fmt.name, d)
    signer.publish_keys(spec.publish_path)
    write_bytes_atomic(meta_file, json.dumps({"name": name, "format": fmt.name, "key": fpr}, indent=1).encode() + b"\n")
    return {"feed": name, "format": fmt.name, "key": fpr, "new_packages": new,
            "feeds": sorted(str(d.relative_to(spec.publish_path)) for d in {dest.parent for _p, dest in plan})}


def custom_feeds(spec: Spec, names: list[str]) -> list[dict]:
    out = []
    for n in names:
        f = spec.publish_path / "custom" / n / "feed.json"
        if not f.exists():
            raise BindistroError(f"{f}: no custom feed {n!r} (bindistro feed add-custom)")
        meta = json.loads(f.read_text())
        meta["archs"] = sorted(p.name for p in (f.parent / meta["format"]).iterdir() if p.is_dir())
        out.append(meta)
    return out
