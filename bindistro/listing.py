"""The listing of a publish tree: releases.json (releases, oldest first, the EOL date, and the
channels, each marked not_a_release), with security.txt and SECURITY.md, written into a generation
by every publishing command."""
from __future__ import annotations

import json
from pathlib import Path

from .model import CHANNELS, Release
from .spec import Spec
from .store import Store
from .store.objects import write_bytes_atomic

MANIFEST_LIMIT = 64 << 20


def channels(root: Path) -> list[dict]:
    """The channels a tree (or generation) holds, from their manifests (channel.py)."""
    out = []
    base = root / CHANNELS
    found = sorted(base.glob("*/manifest.json")) + sorted(base.glob("*/*/manifest.json")) if base.is_dir() else []
    for m in found:
        try:
            if m.stat().st_size > MANIFEST_LIMIT:
                raise ValueError("too large")
            doc = json.loads(m.read_bytes())
        except (OSError, ValueError):
            continue         # fsck says so; the listing lists what can be read
        out.append({"channel": doc.get("channel"), "series": doc.get("series"), "candidate": doc.get("candidate"),
                    "created": doc.get("created"), "verify": (doc.get("verify") or {}).get("summary"),
                    "not_a_release": True, "manifest": m.relative_to(root).as_posix()})
    return out


def write_listing(spec: Spec, store: Store, root: Path, extra: Release | None = None) -> None:
    """releases.json, security.txt and SECURITY.md of generation `root` (`extra`: the release
    being made, not yet in the DB)."""
    from . import series
    rels = series.releases(spec, store) + ([extra] if extra else [])
    listing = {"product": spec.product, "eol": spec.product_eol.isoformat() if spec.product_eol else None,
               "releases": [{"release": r.name, "sequence": r.seq, "created": r.created,
                             **({"series": r.series} if r.series else {}),
                             "manifest": f"releases/{r.name}/manifest.json"} for r in rels]}
    if spec.series:
        # each series: its feeds, end of life and which older series' devices move to it
        listing["series"] = series.described(spec)
    chans = channels(root)
    if chans:
        listing["channels"] = chans     # builds for testers, each marked not_a_release
    write_bytes_atomic(root / "releases.json", json.dumps(listing, indent=1).encode() + b"\n")
    from .cve import policy
    policy.write(spec, store, root, rels)     # security.txt + SECURITY.md list the supported releases
