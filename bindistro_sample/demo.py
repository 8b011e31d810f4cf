"""`bindistro demo`: the whole cycle on the SAMPLE distro, in one project directory."""
from __future__ import annotations

from pathlib import Path

from bindistro import spec as specmod
from bindistro import verify
from bindistro.keys import Keyring
from bindistro.release import release
from bindistro.restore import configure_feeds, project_trust, restore
from .build import generate
from bindistro.stage import stage
from bindistro.store import open_store


def run(out: Path, count: int = 3, seed: int = 1, boot: bool = True, packages: int | None = None,
        database: str | None = None, objects: str | None = None, target: str | None = None) -> dict:
    """`database`, `objects`, `target`: the demo beyond one machine (PostgreSQL, objects and the tree in S3)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / specmod.SPEC_FILE
    if not path.exists():
        sp = specmod.default_spec("sample-distro", sample=True, boot=boot)
        sp.formats = ["ipk", "rpm", "deb"]     # the demo publishes every format
        sp.database, sp.objects, sp.publish_target = database, objects, target
        specmod.parse(sp.to_dict(), path)      # what the options give must make a valid spec
        specmod.dump(sp, path)
    sp = specmod.load(path)
    store = open_store(sp)
    if not sp.signing_key:
        # a throw-away key, named as such, so the demo signs everything it publishes
        sp.signing_key = Keyring(store.dir / "gnupg").generate(
            "bindistro DEMO key - not for production <demo@bindistro.invalid>")
        specmod.dump(sp, path)
    done = {r.name for r in store.db.releases()}
    rows = []
    for n in range(1, count + 1):
        name = sp.format_release_name(n)
        if name in done:
            continue
        build = out / "builds" / f"release-{n}"
        if store.db.releases():
            # the cycle: restore the last release (PR values above all) before building the next
            restore(build, sp.publish_path, None, sp.publish_url, trust=project_trust(sp, own_tree=True))
        else:
            configure_feeds(sp, store, build)      # as `bindistro build` does: images preconfigured from the first
        g = generate(build, n, seed, packages=packages)
        st = stage(store, build, sp)
        rep = verify.run(sp, store, st["candidate"])
        rel = release(sp, store, st["candidate"], name)
        rows.append({"release": rel["release"], "candidate": st["candidate"], "packages": g["packages"],
                     "new_files": rel["new_files"], "verify": rep["summary"],
                     "changes": ", ".join(f"{c['kind']} {c['recipe']}" for c in g["changes"]) or "first release"})
    return {"out": str(out), "publish": str(sp.publish_path), "releases": rows}
