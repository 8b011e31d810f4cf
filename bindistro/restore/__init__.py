"""`bindistro restore BUILD_DIR`: bring the last (or a named) release into a build directory, from
the published tree alone, so the next build continues where the release left off:

- conf/bindistro.conf (+ one `require` line in local.conf): SSTATE_MIRRORS, hash equivalence,
  PR server, PACKAGE_FEED_URIS / _BASE_PATHS / _ARCHS;
- cache/prserv.sqlite3: the release's PR export imported, never lowering a value;
- cache/hashserv.db: seeded with the release's hash-equivalence snapshot (rows not there yet);
- layer checkouts moved to the recorded commits where they are git repositories.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from ..errors import BindistroError
from ..yocto import layers as L
from ..yocto import prserv

REQUIRE = "require conf/bindistro.conf"


def load_release(publish: Path, name: str | None) -> dict:
    listing = publish / "releases.json"
    if not listing.is_file():
        raise BindistroError(f"{listing}: missing; not a bindistro publish directory")
    rels = json.loads(listing.read_text())["releases"]
    if not rels:
        raise BindistroError(f"{listing}: no release published yet")
    rel = rels[-1] if name is None else next((r for r in rels if r["release"] == name), None)
    if rel is None:
        raise BindistroError(f"{listing}: no release {name!r} (have: {', '.join(r['release'] for r in rels)})")
    return json.loads((publish / rel["manifest"]).read_text())


def conf_text(manifest: dict, url: str, hashserv_upstream: str | None) -> str:
    r = manifest.get("restore", {})
    fmt = next(iter(manifest.get("feeds", {})), "ipk")
    archs = sorted({p.rsplit("/", 1)[1] for p in manifest.get("feeds", {}).get(fmt, [])})
    lines = [f"# Written by `bindistro restore` from release {manifest['release']} of {manifest.get('product', '?')}.",
             "# Re-run restore to move to a newer release; edit local.conf, not this file.", ""]
    if r.get("sstate_mirror"):
        lines += ["# prebuilt objects of the released builds", f'SSTATE_MIRRORS ?= "file://.* {url}/{r["sstate_mirror"]}/PATH;downloadfilename=PATH"', ""]
    lines += ["# hash equivalence: a local server seeded from the release's snapshot (cache/hashserv.db)",
              'BB_SIGNATURE_HANDLER = "OEEquivHash"', 'BB_HASHSERVE ??= "auto"']
    if hashserv_upstream:
        lines.append(f'BB_HASHSERVE_UPSTREAM = "{hashserv_upstream}"')
    else:
        lines.append('# BB_HASHSERVE_UPSTREAM = "wss://hashserv.example.org/ws"   # a public server, if the distro runs one')
    lines += ["", "# PR server: local, with the release's values imported into cache/prserv.sqlite3",
              'PRSERV_HOST ?= "localhost:0"', "",
              "# where devices get packages (used for the images' feed configuration)",
              f'PACKAGE_FEED_URIS = "{url}"', f'PACKAGE_FEED_BASE_PATHS = "feeds/{fmt}"',
              f'PACKAGE_FEED_ARCHS = "{" ".join(archs)}"', ""]
    return "\n".join(lines)


def seed_hashserv(db: Path, snapshot: Path) -> int:
    """Add the snapshot's rows to the build's hash-equivalence database; existing rows win."""
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.execute("ATTACH DATABASE ? AS snap", (f"file:{snapshot}?mode=ro",))
    added = 0
    with con:
        for table in ("unihashes_v3", "outhashes_v2"):
            exists = con.execute("SELECT sql FROM snap.sqlite_master WHERE name=?", (table,)).fetchone()
            if not exists:
                continue
            if not con.execute("SELECT name FROM main.sqlite_master WHERE name=?", (table,)).fetchone():
                con.execute(exists[0])
            cols = [r[1] for r in con.execute(f"PRAGMA snap.table_info({table})") if r[1] != "id"]
            before = con.total_changes
            con.execute(f"INSERT OR IGNORE INTO main.{table} ({','.join(cols)}) SELECT {','.join(cols)} FROM snap.{table}")
            added += con.total_changes - before
    con.execute("DETACH DATABASE snap")
    con.close()
    return added


def checkout_layers(layers: list[L.Layer], base: Path) -> list[dict]:
    out = []
    for l in layers:
        d = base / (l.path or l.name)
        if not (d / ".git").exists():
            out.append({"layer": l.name, "path": str(d), "status": "not a git checkout here; skipped"})
            continue
        r = subprocess.run(["git", "-C", str(d), "checkout", "-q", l.commit], capture_output=True, text=True)
        out.append({"layer": l.name, "path": str(d), "commit": l.commit,
                    "status": "checked out" if r.returncode == 0 else f"failed: {r.stderr.strip()[:200]}"})
    return out


def restore(build: Path, publish: Path, release: str | None = None, url: str | None = None,
            hashserv_upstream: str | None = None, layers_dir: Path | None = None) -> dict:
    publish = publish.resolve()
    m = load_release(publish, release)
    info = m.get("restore") or {}
    build.mkdir(parents=True, exist_ok=True)
    (build / "conf").mkdir(exist_ok=True)
    url = url or f"file://{publish}"
    (build / "conf" / "bindistro.conf").write_text(conf_text(m, url, hashserv_upstream))
    local = build / "conf" / "local.conf"
    text = local.read_text() if local.exists() else ""
    if REQUIRE not in text.splitlines():
        local.write_text(text + ("" if not text or text.endswith("\n") else "\n") + REQUIRE + "\n")
    result = {"release": m["release"], "build": str(build), "conf": str(build / "conf" / "bindistro.conf")}
    if info.get("prserv-export"):
        rows = prserv.parse_export((publish / info["prserv-export"]).read_text())
        added, raised = prserv.import_rows(build / "cache" / "prserv.sqlite3", rows)
        result["prserv"] = {"rows": len(rows), "added": added, "raised": raised}
    if info.get("hashserv"):
        result["hashserv_rows_added"] = seed_hashserv(build / "cache" / "hashserv.db", publish / info["hashserv"])
    if info.get("setup-layers"):
        layers = L.from_setup_layers(publish / info["setup-layers"])
        result["layers"] = checkout_layers(layers, layers_dir or build.parent)
    return result
