"""`bindistro feed add-custom NAME DIR --key FPR`: a user's own packages in a feed of their own
(publish/custom/NAME/<format>/<arch>/), cumulative like the official feeds and signed with the
user's key, which devices can trust beside the distro's."""
from __future__ import annotations

import json
import re
from pathlib import Path

from . import feed, publish
from .errors import BadInput, BindistroError, Problem
from .formats.base import PackageError, scan_files
from .release.sign import Signer
from .spec import Spec
from .store import Store
from .store.objects import ChangedWhileReading, hash_file, write_bytes_atomic

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def add(spec: Spec, store: Store, name: str, src: Path, fpr: str) -> dict:
    if not _NAME.fullmatch(name):
        raise BindistroError(f"custom feed name {name!r}: use lower-case letters, digits and . _ -")
    try:
        fmt = feed.detect_format(src)
    except ValueError as e:
        raise BindistroError(str(e)) from None
    signer = Signer(spec, store, fpr)          # refuses an unknown key before anything is written
    with publish.transaction(spec, store, f"feed add-custom {name}") as g:
        root = g.dir / "custom" / name
        meta_file = root / "feed.json"
        if meta_file.exists():
            meta = json.loads(meta_file.read_text())
            if meta["format"] != fmt.name or meta["key"] != fpr:
                raise BindistroError(f"{spec.publish_path}/custom/{name}/feed.json: custom feed {name} is "
                                     f"{meta['format']} signed by {meta['key']}; use another name for another format or key")
        problems, plan = [], []
        # (name, version, arch) of every official package of this format -> its bytes (staged, published)
        official: dict[tuple[str, str, str], set[str]] = {}
        for a in store.db.released_packages():
            if a.format == fmt.name:
                official.setdefault((a.name, a.version, a.arch), set()).update({a.sha256, signer.lookup(a).sha256})
        files = scan_files(fmt, src)
        for rel in files:
            path = src / rel
            try:
                info = fmt.read(path, deep=True)
            except PackageError as e:
                problems += [Problem(str(path), m) for m in e.problems]
                continue
            dest = f"custom/{name}/{fmt.name}/{fmt.feed_arch(info, rel)}/{path.name}"
            sha, _md5, size = hash_file(path)
            same = official.get((info.name, info.version, info.arch))
            if same and sha not in same:
                problems.append(Problem(str(path), f"{info.name} {info.version} ({info.arch}) is an official package's "
                                        "name, version and arch with other bytes: devices could not tell them apart; "
                                        'rebuild with PKGR:append = ".${BINDISTRO_CUSTOM}" (see `bindistro bundle`)'))
                continue
            if g.exists(dest) and hash_file(g.dir / dest)[0] != sha:
                problems.append(Problem(str(path), f"would replace published {dest} with different content "
                                        "(bump the version)"))
            plan.append((path, dest, sha, size))
        if problems:
            raise BadInput(problems)
        if not plan:
            raise BadInput([Problem(str(src), f"no {fmt.name} packages to publish")])
        new = 0
        for path, dest, sha, size in plan:
            if not g.exists(dest):
                try:
                    g.add_file(dest, path, sha, size)
                except ChangedWhileReading as e:
                    raise BindistroError(str(e)) from None
                new += 1
        dirs = sorted({dest.rsplit("/", 1)[0] for _p, dest, _s, _n in plan})
        for d in dirs:
            feed.index(fmt, g.dir / d, all_versions=True)
            signer.sign_feed(fmt.name, g.dir / d)
        signer.publish_keys(g.dir)
        write_bytes_atomic(meta_file, json.dumps({"name": name, "format": fmt.name, "key": fpr}, indent=1).encode() + b"\n")

        def record(n: int) -> None:
            with store.db.begin() as conn:
                store.db.set_generation(conn, n)
        g.commit(record)
    return {"feed": name, "format": fmt.name, "key": fpr, "new_packages": new, "feeds": dirs}


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
