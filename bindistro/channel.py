"""`bindistro publish CAND --channel NAME`: a candidate that is *not* a release, for testers
(nightly builds), published under channels/<SERIES>/<NAME>/ of the same tree (channels/<NAME>/ when
the spec has no series), SERIES being the candidate's:

    <channel>/feeds/<format>/<arch>/   the candidate's packages, indexed and signed
    <channel>/images/<machine>/        its images
    <channel>/manifest.json(.asc)      "not_a_release": true, candidate, series, date, verify summary

A channel holds one candidate: publishing again replaces its content, `--remove-channel` drops it.
It is written in a generation of its own like a release (atomic switch, crash-safe, checked by
fsck) and never touches a release's files: nothing outside channels/<NAME>/ changes except the
listing (releases.json gains a `channels` list). Channel files are not immutable (model.rewritten):
a device of a channel follows whatever was published there last.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import shutil

from . import model, publish, series
from .device import machine_feeds
from .errors import BadInput, BindistroError, Problem
from .formats import get as get_format
from .listing import write_listing
from .spec import Spec
from .store import Store

def publish_channel(spec: Spec, store: Store, cid: int, name: str) -> dict:
    from . import verify
    from .release import index_feed, manifest_bytes, manifest_entry, signing_entry
    from .spec import check_eol
    from .release.sign import Signer
    model.check_channel(name)
    spec = series.of_candidate(spec, store, cid)
    check_eol(spec, "channel builds")
    row, arts = store.db.candidate(cid, control=False)     # (index_feed reads control data per feed)
    # verified like a release (its summary goes out with it; a partial report would later let
    # `release` skip gates), but only the mandatory gates refuse: hostile packages never reach a device
    rep = verify.report(store, cid)
    rep = verify.with_mandatory(spec, store, cid, rep) if rep else verify.run(spec, store, cid)
    bad = [f for f in verify.unresolved_errors(rep) if f["gate"] in verify.MANDATORY]
    if bad:
        raise BadInput([Problem(f"candidate {cid}", f"[{f['gate']} {f['id']}] {f['subject']}: {f['message']}") for f in bad])
    signer = Signer(spec, store)
    feeds = {f: {get_format(f).feed_name(a) for a in spec.feeds()} for f in spec.formats}
    pkgs = [a for a in arts if a.kind == model.PACKAGE and a.format in feeds and a.arch in feeds[a.format]]
    pkgs = signer.published_forms(pkgs)
    images = [a for a in arts if a.kind == model.IMAGE]
    base = spec.channel_root(name)
    with publish.transaction(spec, store, f"channel {name}") as g:
        shutil.rmtree(g.dir / base, ignore_errors=True)       # the previous content of the channel goes
        plan = {}
        for a in pkgs:
            plan[f"{base}/feeds/{a.format}/{a.arch}/{a.filename}"] = a
        for a in images:
            plan[f"{base}/images/{a.meta.get('machine', a.arch)}/{a.filename}"] = a
        for d, a in plan.items():
            g.add_file(d, store.objects.path(a.sha256), a.sha256, a.size)
            if a.kind == model.PACKAGE and a.format == "ipk" and spec.sign_ipk_packages:
                signer.sign_file(g.dir / d)
        signer.publish_keys(g.dir)       # keys/: devices of a channel trust the release keys
        for fmt_name, arch in sorted({(a.format, a.arch) for a in pkgs}):
            index_feed(signer, g.path(f"{base}/feeds/{fmt_name}/{arch}/Packages").parent, fmt_name, arch, pkgs)
        manifest = {
            "channel": name, "not_a_release": True, "product": spec.product, "candidate": cid, "source": row.source,
            **({"series": spec.current} if spec.current else {}),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "verify": {"created": rep["created"], "gates": rep["gates"], "summary": rep["summary"]},
            "feeds": {f: sorted({f"{base}/feeds/{f}/{a.arch}" for a in pkgs if a.format == f}) for f in spec.formats},
            "machines": machine_feeds(spec),
            "signing": signing_entry(spec),
            "artifacts": [manifest_entry(a, d) for d, a in plan.items()],
        }
        data = manifest_bytes(manifest)
        mpath = g.write(f"{base}/manifest.json", data)
        signer.sign_file(mpath)
        write_listing(spec, store, g.dir)
        g.commit(lambda n: _record(store, n))
    return {"channel": name, "series": spec.current, "candidate": cid, "created": manifest["created"], "packages": len(pkgs),
            "images": len(images), "path": base, "verify": rep["summary"],
            "manifest_sha256": hashlib.sha256(data).hexdigest()}


def remove_channel(spec: Spec, store: Store, name: str) -> dict:
    """`spec`: the view of the channel's series (Spec.choose_series)."""
    model.check_channel(name)
    base = spec.channel_root(name)
    with publish.transaction(spec, store, f"remove channel {name}") as g:
        if not (g.dir / base).is_dir():
            raise BindistroError(f"{spec.publish_path / base}: no channel {name!r} is published")
        shutil.rmtree(g.dir / base)        # channels/ itself stays: its public name links into it
        if spec.current and not any((g.dir / base).parent.iterdir()):
            (g.dir / base).parent.rmdir()    # the series' last channel
        write_listing(spec, store, g.dir)
        g.commit(lambda n: _record(store, n))
    return {"channel": name, "removed": True}


def _record(store: Store, n: int) -> None:
    with store.db.begin() as conn:
        store.db.set_generation(conn, n)
