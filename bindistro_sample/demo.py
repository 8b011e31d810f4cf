"""`bindistro demo`: the whole cycle on the SAMPLE distro, in one project directory."""
from __future__ import annotations

from pathlib import Path

from bindistro import spec as specmod
from bindistro import series, verify
from bindistro.channel import publish_channel
from bindistro.keys import ALGORITHMS, Keyring
from bindistro.release import release
from bindistro.restore import configure_feeds, project_trust, restore
from .build import generate
from .recipes import summary
from .rpmbuild import BATCH_MAIN
from bindistro.stage import stage
from bindistro.store import open_store


FIRST, NEXT = "kirkstone", "scarthgap"     # the sample distro's two series, after the Yocto branches under them
CHANNEL = "nightly"


def run(out: Path, count: int = 3, seed: int = 1, boot: bool = True, packages: int | None = None,
        database: str | None = None, objects: str | None = None, target: str | None = None,
        series: bool = True, key_algorithm: str = ALGORITHMS[0]) -> dict:
    """`database`, `objects`, `target`: the demo beyond one machine (PostgreSQL, objects and the tree in S3).
    `series`: after releases 1..`count` of the first series, the next branch's first release and
    its next build on the nightly channel (the first series keeps feeds/, as a tree that had one
    line of releases before it opened a second)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / specmod.SPEC_FILE
    if not path.exists():
        sp = specmod.default_spec("sample-distro", sample=True, boot=boot)
        sp.formats = ["ipk", "rpm", "deb"]     # the demo publishes every format
        sp.database, sp.objects, sp.publish_target = database, objects, target
        # --packages: the world sample's rpms come out of batched rpmbuild runs, so their SOURCERPM
        # names the batch; each world recipe's archiver output is there under its own PF
        sp.sources.exceptions[BATCH_MAIN] = ("SAMPLE DATA: the source rpm of the world sample's batched rpmbuild "
                                             "runs; the archiver output is under each recipe's own name")
        specmod.parse(sp.to_dict(), path)      # what the options give must make a valid spec
        specmod.dump(sp, path)
    sp = specmod.load(path)
    if series and not sp.series:
        # as `bindistro series add scarthgap --version 2 --first kirkstone`: the releases so far
        # become the first series and keep feeds/ (a demo run again on a one-series tree does this too)
        specmod.add_series(sp, NEXT, "2", FIRST, next_machines(sp))
        sp = specmod.load(path)
    store = open_store(sp)
    if not sp.signing_key:
        # a throw-away key, named as such, so the demo signs everything it publishes
        sp.signing_key = Keyring(store.dir / "gnupg").generate(
            "bindistro DEMO key - not for production <demo@bindistro.invalid>", key_algorithm)
        specmod.dump(sp, path)
    rows = []
    first = sp.in_series(None)          # the first series (the spec itself when it has none)
    for n in range(1, count + 1):
        rows += _release(first, store, out / "builds" / f"release-{n}", n, seed, packages)
    out_doc = {"out": str(out), "publish": str(sp.publish_path), "releases": rows}
    if series and sp.series:
        nxt = sp.in_series(sp.series[-1].name)
        rows += _release(nxt, store, out / "builds" / f"{nxt.current}-release-1", 1, seed, packages, nxt.current)
        out_doc["channel"] = _nightly(nxt, store, out / "builds" / f"{nxt.current}-{CHANNEL}", seed, packages)
    return out_doc


def next_machines(sp) -> list[specmod.Machine]:
    """The spec's machines as the next branch builds them (build.NEXT_SOC: a renamed SoC feed)."""
    from .build import MACHINES, machines_of
    old = {m.soc_arch: n.soc_arch for m, n in zip(MACHINES, machines_of(NEXT)) if m.soc}
    return [specmod.Machine(m.name, [old.get(a, a) for a in m.archs]) for m in sp.machines]


def _prepare(sp, store, build: Path) -> None:
    """As `bindistro build` does: restore the series' last release (PR values above all), or before
    its first one, the feed settings alone (images preconfigured from the first)."""
    last = series.latest(sp, store, sp.current)
    if last:
        restore(build, sp.publish_path, last.name, sp.publish_url, trust=project_trust(sp, own_tree=True))
    else:
        configure_feeds(sp, store, build)


def _release(sp, store, build: Path, n: int, seed: int, packages, name: str | None = None) -> list[dict]:
    rel_name = sp.format_release_name(n)
    if any(r.name == rel_name for r in store.db.releases()):
        return []
    _prepare(sp, store, build)
    g = generate(build, n, seed, packages=packages, series=name)
    st = stage(store, build, sp)
    rep = verify.run(sp, store, st["candidate"])
    rel = release(sp, store, st["candidate"], rel_name)
    return [{"release": rel["release"], "series": sp.current, "candidate": st["candidate"], "packages": g["packages"],
             "new_files": rel["new_files"], "verify": rep["summary"],
             "changes": summary(g["changes"]) if g["changes"] else "first release"}]


def _nightly(sp, store, build: Path, seed: int, packages) -> dict:
    """The next build of the series (its release 2 to be) for testers: a channel, not a release."""
    _prepare(sp, store, build)
    generate(build, 2, seed, packages=packages, series=sp.current)
    st = stage(store, build, sp)
    return publish_channel(sp, store, st["candidate"], CHANNEL)
