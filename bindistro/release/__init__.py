"""`bindistro release CAND`: publish a candidate into the cumulative feeds, atomically.

Everything is prepared in the publish tree's next generation (publish.py): package and other
objects, then the feed indexes and their signatures, then releases/<name>/manifest.json and its
signature, then releases.json; the DB row and the generation are committed in one transaction, and
one symlink rename makes the whole release visible at once. Published files are never replaced; the
only files rewritten are the feed indexes and listings, and those only ever grow.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

from .. import faults, model, publish, series, site
from ..cache import code_key
from ..device import machine_feeds
from ..errors import BadInput, BindistroError, Problem
from ..formats import get as get_format
from ..formats.base import Indexed, PackageInfo, read_packages, stamp_of
from ..listing import write_listing
from ..model import Artifact, Release
from ..progress import Laps, progress
from ..spec import Spec, check_eol
from ..store import Store
from ..store.objects import hash_file

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def dest_path(a: Artifact, release: str, feeds: str = "feeds") -> str:
    """Where an artifact lives in the publish directory (`feeds`: the series' feed directory)."""
    if a.kind == model.PACKAGE:
        return f"{feeds}/{a.format}/{a.arch}/{a.filename}"
    if a.kind == model.IMAGE:
        return f"images/{release}/{a.meta.get('machine', a.arch)}/{a.filename}"
    if a.kind == model.SSTATE:
        # one sstate mirror for all releases: an object shared by releases is published once
        return "sstate/" + a.path.removeprefix("sstate-cache/")
    if a.kind == model.SDK:
        return f"sdk/{a.meta.get('machine', 'any')}/{release}/{a.filename}"
    if a.kind == model.SOURCES:
        # as OE deploys them: a recipe version's archive per target, shared by every release shipping it
        return f"sources/{a.meta['target']}/{a.meta['pf']}/{a.name}"
    if a.kind == model.DOWNLOADS:
        # one flat source mirror for all releases, as own-mirrors.bbclass reads it (SOURCE_MIRROR_URL)
        return f"sources/downloads/{a.name}"
    if a.kind == model.GENERATED:
        return f"releases/{release}/{a.path}"
    return f"releases/{release}/build/{a.path}"


def generated(store: Store, arts: list[Artifact]) -> list[Artifact]:
    """What a release publishes besides the build's own files: the inputs of `bindistro restore`."""
    from ..yocto import layers as L
    from ..yocto import prserv
    out = []

    def add(path: str, data: bytes, what: str):
        sha = store.objects.add_bytes(data)
        out.append(Artifact(path=path, kind=model.GENERATED, sha256=sha, size=len(data), name=path,
                            meta={"what": what}))
    lay = next((a for a in arts if a.kind == model.LAYERS), None)
    if lay:
        layers = L.from_json(store.objects.path(lay.sha256).read_text())
        add("setup-layers.json", L.to_setup_layers(layers).encode(), "setup-layers")
        add("kas.lock.yml", L.to_kas_lock(layers).encode(), "kas-lock")
    pr = next((a for a in arts if a.kind == model.PRDB), None)
    if pr:
        add("prserv-export.conf", prserv.export(prserv.read_db(store.objects.path(pr.sha256))).encode(), "prserv-export")
    return out


def manifest_bytes(manifest: dict) -> bytes:
    """A release's (or channel's) manifest.json: its fields indented, one line per artifact (so
    `diff` of two manifests is a line per artifact changed). JSON's indenting encoder is Python's own,
    not its C one: the artifacts indented were a second per release at 100,000 of them."""
    arts = manifest["artifacts"]
    head = json.dumps({k: v for k, v in manifest.items() if k != "artifacts"}, indent=1)
    lines = ",\n".join("  " + json.dumps(a) for a in arts)
    return (head[:-2] + ',\n "artifacts": [' + (f"\n{lines}\n ]" if arts else "]") + "\n}\n").encode()


def manifest_entry(a: Artifact, path: str) -> dict:
    e = {"path": path, "sha256": a.sha256, "size": a.size, "kind": a.kind}
    if a.kind == model.PACKAGE:
        e.update(name=a.name, version=a.version, arch=a.arch, format=a.format, md5=a.md5)
    elif a.kind == model.SOURCES:
        e["recipe"] = a.meta["pf"]
    elif a.kind == model.SDK:
        e["machine"] = a.meta.get("machine", "any")
    elif a.meta.get("machine"):
        e["machine"] = a.meta["machine"]
    return e


def signing_entry(spec: Spec) -> dict | None:
    """A manifest's `signing`: the key that signs it and where every trusted key is published."""
    if not spec.signing_key:
        return None
    return {"key": spec.signing_key, "keys": [f"keys/{k}.asc" for k in spec.release_keys]}


def kept_entries(store: Store, fmt, feed_dir: Path, key: str) -> tuple[dict[str, str | tuple], list[int] | None]:
    """File name -> its entry in the feed's index as a release wrote it, when the index in this
    generation is still that one (the hash of fmt.VOUCHER recorded under `key` when it was written,
    by this code), and the candidates of the releases whose packages it lists (None: not known);
    else ({}, None). A published file never changes, so neither does its entry: a release renders
    only its new packages' (decoding and rendering the whole history's control data again was half
    of a world's index step). Anything else is read as bytes not to be trusted: never reused."""
    rec = store.db.get_setting(key)
    index = feed_dir / fmt.VOUCHER
    try:
        rec = json.loads(rec) if rec else None
        if not (isinstance(rec, dict) and rec.get("code") == code_key() and index.is_file()
                and not index.is_symlink()):
            return {}, None
        data = read_packages(index)
        if hashlib.sha256(data).hexdigest() != rec.get("sha256"):
            return {}, None
        covers = rec.get("covers")
        if not (isinstance(covers, list) and all(type(c) is int for c in covers)):
            covers = None
        return fmt.own_entries(feed_dir, data) or {}, covers
    except (ValueError, OSError):
        return {}, None


def index_feed(signer, feed_dir: Path, fmt_name: str, arch: str, arts: list[Artifact],
               kept: dict[str, str | tuple] | None = None, counts: dict | None = None,
               listed: dict[str, tuple[str, str]] | None = None) -> str:
    """The index of one feed over those of `arts` that belong to it (stored metadata, no
    re-reading; a later artifact of the same file name wins), then its signature; the sha256 of
    the index written. Control data is read here, for this feed only (a world's cumulative feeds
    hold it for 100,000s of files), and only for files without an entry `kept` (kept_entries).
    `listed`: file name -> (name, version) of every file of `kept`, each in the feed with an
    artifact in `arts` or not (the index they come from lists the feed's history; `arts` are what
    was released since)."""
    kept = kept or {}
    mine: dict[str, Artifact] = {}
    for a in arts:
        if (a.format, a.arch) == (fmt_name, arch):
            mine[a.filename] = a
    read = {a.filename: a for a in signer.store.db.with_control([a for f, a in mine.items() if f not in kept])}
    fmt = get_format(fmt_name)
    base = str(feed_dir)      # (a str per file, not a Path: the feed's whole history is listed)
    # a stat per file of the feed's whole history: only for a writer that lists stamps (ipk's Packages.stamps)
    stamped = fmt.OPKG_STAMPS
    items = [Indexed(a.filename, PackageInfo(a.name, a.version, a.arch, a.meta), a.size, a.md5, a.sha256,
                     stamp_of(f"{base}/{a.filename}") if stamped else 0, kept.get(a.filename))
             for a in (read.get(f, x) for f, x in mine.items())]
    for f, (name, version) in (listed or {}).items():     # (write_index reads their text, and orders by these)
        if f not in mine:
            items.append(Indexed(f, PackageInfo(name, version, arch, {}), 0, "", "",
                                 stamp_of(f"{base}/{f}") if stamped else 0, kept[f]))
    if counts is not None:
        counts["kept"] = counts.get("kept", 0) + sum(1 for it in items if it.text is not None)
        counts["rendered"] = counts.get("rendered", 0) + sum(1 for it in items if it.text is None)
    del mine, read
    fmt.write_index(feed_dir, items, all_versions=True)
    signer.sign_feed(fmt_name, feed_dir)
    faults.point("index")
    return hash_file(feed_dir / fmt.VOUCHER)[0] if fmt.VOUCHER else ""


def release(spec: Spec, store: Store, cid: int, name: str | None = None) -> dict:
    spec = series.of_candidate(spec, store, cid)
    check_eol(spec, "releases")
    row = store.db.candidate_row(cid)
    if publish.settle(spec, store, f"release {cid}"):
        done = next((r for r in store.db.releases() if r.candidate == cid), None)
        if done:       # a killed run of this command had committed it: the rerun made it visible
            return {"release": done.name, "sequence": done.seq, "candidate": cid, "created": done.created,
                    "recovered": True}
    _refuse_twice(store, cid)
    from .. import verify
    rep = verify.report(store, cid)
    rep = verify.with_mandatory(spec, store, cid, rep) if rep else verify.run(spec, store, cid)
    errors = verify.unresolved_errors(rep)
    if errors:
        raise BadInput([Problem(f"candidate {cid}", f"[{f['gate']} {f['id']}] {f['subject']}: {f['message']}")
                        for f in errors] + [Problem(f"candidate {cid}", "refused: fix the build, or accept a finding "
                                                    "with `bindistro waive CAND ID --reason ...`")])
    from .sign import Signer
    signer = Signer(spec, store)
    with publish.transaction(spec, store, f"release {cid}") as g:
        rels = store.db.releases()        # read again under the lock: another release may have run
        _refuse_twice(store, cid)
        seq = (rels[-1].seq + 1) if rels else 1
        # numbered within the series: kirkstone's 4.0.3 and scarthgap's 5.0.1 share one sequence
        name = name or spec.format_release_name(len(series.releases(spec, store, spec.current)) + 1)
        if not _NAME.fullmatch(name):      # fullmatch: `$` would let a trailing newline through
            raise BindistroError(f"release name {name!r}: use letters, digits and . _ + - only")
        if any(r.name == name for r in rels):
            raise BindistroError(f"release {name}: exists already; pick another --name")
        return _publish(spec, store, signer, g, cid, row, name, seq, rep)


def _refuse_twice(store: Store, cid: int) -> None:
    for r in store.db.releases():
        if r.candidate == cid:
            raise BindistroError(f"candidate {cid}: already published as release {r.name}")


def _publish(spec, store, signer, g: publish.Generation, cid, row, name, seq, rep) -> dict:
    from .. import verify
    laps = Laps()
    # without control data: index_feed reads it one feed at a time (here: no caller holds the
    # candidate while the site is built)
    arts = store.db.candidate(cid, control=False)[1]
    feeds = {f: {get_format(f).feed_name(a) for a in spec.feeds()} for f in spec.formats}
    arts = [signer.lookup(a) if a.kind == model.PACKAGE else a for a in arts] + generated(store, arts)
    # what of this release is published already (all that was is 100,000s of paths at distro scale)
    published = store.db.published(sorted({dest_path(a, name, spec.feed_root) for a in arts}))
    problems: list[Problem] = []
    plan: dict[str, Artifact] = {}
    skipped = 0
    for a in arts:
        if a.kind == model.PACKAGE:
            if a.format not in spec.formats:
                skipped += 1
                continue
            if a.arch not in feeds[a.format]:
                problems.append(Problem(a.path, f"architecture {a.arch!r} has no feed in {spec.path}"))
                continue
        d = dest_path(a, name, spec.feed_root)
        prev = published.get(d)
        if prev and prev[0] != a.sha256:
            problems.append(Problem(a.path, f"would replace published {d} with different content "
                                    "(same name, version and arch must keep the same bytes; bump PR)"))
            continue
        if d in plan and plan[d].sha256 != a.sha256:
            problems.append(Problem(a.path, f"two artifacts of the candidate map to {d} with different content"))
            continue
        if not prev and g.exists(d):
            if hash_file(g.dir / d)[0] != a.sha256:
                problems.append(Problem(str(spec.publish_path / d), "exists in the publish directory with other "
                                        "content and was not published by bindistro; refusing to replace it"))
                continue
        plan[d] = a
    if problems:
        raise BadInput(problems)
    laps("plan")

    # 1. objects (new rpm packages get their signature first), keys
    fresh = [d for d, a in plan.items() if a.kind == model.PACKAGE and d not in published]
    for d, a in zip(fresh, signer.published_forms([plan[d] for d in fresh])):
        plan[d] = a
    laps("sign")
    new_files = []
    for d, a in progress(list(plan.items()), f"publishing {name}"):
        if d in published:
            continue
        if not g.exists(d):
            g.add_file(d, store.objects.path(a.sha256), a.sha256, a.size)
        new_files.append((d, a.sha256, a.size))
        if a.kind == model.PACKAGE and a.format == "ipk" and spec.sign_ipk_packages:
            sig = signer.sign_file(g.dir / d)
            if sig:
                new_files.append((d + ".asc", hash_file(sig)[0], sig.stat().st_size))
    for k in signer.publish_keys(g.dir):
        new_files.append((str(k.relative_to(g.dir)), hash_file(k)[0], k.stat().st_size))
    laps("objects")

    # 2. cumulative indexes of every feed that gains packages, then their signatures
    touched = {(a.format, a.arch) for d, a in plan.items() if a.kind == model.PACKAGE and d not in published}
    # each feed's history read for it alone: the whole of it is 100,000s of rows at distro scale
    before = [r.candidate for r in series.history_releases(spec, store)]
    indexes: dict[str, dict] = {}        # setting -> the hash of an index written (see kept_entries)
    stanzas = {"kept": 0, "rendered": 0, "history_read": 0}
    for fmt_name, arch in progress(sorted(touched), f"indexing {name}"):
        where = f"{spec.feed_root}/{fmt_name}/{arch}"
        feed_dir = g.path(f"{where}/Packages").parent
        key = f"index.{where}"
        fmt = get_format(fmt_name)
        kept, covers = kept_entries(store, fmt, feed_dir, key) if fmt.VOUCHER else ({}, None)
        # the index lists the packages of the releases it covers: only those of the releases since
        # are read from the store (the whole feed's history is 100,000s of rows)
        covered = set(covers or ())
        listed = {f: fmt.entry_name(t) for f, t in kept.items()} if covered and covered <= set(before) else {}
        if not all(listed.values()):
            listed = {}
        since = [c for c in before if c not in covered] if listed else before
        history = [signer.lookup(a) for a in store.db.first_released(since, fmt_name, arch, control=False)] if since else []
        stanzas["history_read"] += len(history)
        sha = index_feed(signer, feed_dir, fmt_name, arch, history + [a for a in plan.values() if a.kind == model.PACKAGE],
                         kept, stanzas, listed)
        if sha:
            indexes[key] = {"sha256": sha, "code": code_key(), "covers": sorted({*before, cid})}
        del history, kept
    laps("index")

    # 3. the manifest, signed once by the key of the day
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    manifest = {
        "release": name, "product": spec.product, "version": spec.version, "sequence": seq,
        **({"series": spec.current, "feed_root": spec.feed_root} if spec.current else {}),
        "candidate": cid, "source": row.source, "created": created,
        "eol": spec.eol.isoformat() if spec.eol else None,
        "feeds": {f: [f"{spec.feed_root}/{f}/{a}" for a in sorted(feeds[f])] for f in spec.formats},
        # each machine's feeds, most generic first (OE's PACKAGE_FEED_ARCHS order): restore writes them per machine
        "machines": machine_feeds(spec),
        "verify": {"created": rep["created"], "gates": rep["gates"], "summary": rep["summary"]},
        "waivers": verify.waivers_of(store, cid),
        "restore": restore_info(plan) | ({"sstate_keys": list(spec.sstate_keys)} if spec.sstate_keys and any(
            a.kind == model.SSTATE for a in plan.values()) else {}),
        "signing": signing_entry(spec),
        "artifacts": [manifest_entry(a, d) for d, a in plan.items()],
    }
    data = manifest_bytes(manifest)
    mpath = g.write(f"releases/{name}/manifest.json", data)
    new_files.append((f"releases/{name}/manifest.json", hashlib.sha256(data).hexdigest(), len(data)))
    sig = signer.sign_file(mpath)
    if sig:
        new_files.append((f"releases/{name}/manifest.json.asc", hash_file(sig)[0], sig.stat().st_size))

    # 4. the listing, then the DB row and the generation in one transaction, then the switch
    rel = Release(name, seq, cid, created, series=spec.current)
    write_listing(spec, store, g.dir, extra=rel)
    artifacts = len(plan)
    laps("manifest")
    # the site reads the tree as published: the candidate's records go first, so a release's peak
    # memory is the larger of the two parts, not their sum
    del arts, plan, published, manifest, data
    store.db.decoded.clear()
    signer.forget()
    site_stats = site.build(spec, store, g.dir, site.release_files(spec, store))     # the feed viewer switches with the feeds
    laps("site")

    def record(n: int) -> None:
        with store.db.begin() as conn:
            store.db.add_release(conn, rel, new_files)
            store.db.set_generation(conn, n)
            for k, v in indexes.items():
                store.db.put_setting(conn, k, v)
    g.commit(record)
    laps("commit")
    return {"release": name, "sequence": seq, "candidate": cid, "created": created,
            "new_files": len(new_files), "artifacts": artifacts, "skipped_formats": skipped,
            "seconds": laps.seconds, "cpu_seconds": laps.cpu, "peak_rss_mb": laps.peak_mb,
            "feeds_updated": [f"{spec.feed_root}/{f}/{a}" for f, a in sorted(touched)],
            "index_stanzas": stanzas, "site": site_stats,
            **({"series": spec.current} if spec.current else {})}



def restore_info(plan: dict[str, Artifact]) -> dict:
    """Where `bindistro restore` finds what it needs, relative to the publish directory."""
    info = {"sstate_mirror": "sstate" if any(a.kind == model.SSTATE for a in plan.values()) else None}
    if any(a.kind == model.DOWNLOADS for a in plan.values()):
        info["source_mirror"] = "sources/downloads"
    for d, a in plan.items():
        if a.kind == model.GENERATED:
            info[a.meta["what"]] = d
        elif a.kind == model.HASHEQUIV:
            info["hashserv"] = d
        elif a.kind == model.PRDB:
            info["prserv_db"] = d
    return info


def relist(spec: Spec, store: Store, what: str) -> dict:
    """Publish a new listing (after `eol`, or a policy change) in a generation of its own; the
    site build's counts."""
    with publish.transaction(spec, store, what) as g:
        write_listing(spec, store, g.dir)
        stats = site.build(spec, store, g.dir, site.release_files(spec, store))

        def record(n: int) -> None:
            with store.db.begin() as conn:
                store.db.set_generation(conn, n)
        g.commit(record)
    return stats
