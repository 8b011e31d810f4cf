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
import re
import sqlite3
import subprocess
from pathlib import Path

from ..errors import BindistroError
from ..model import FEED_ROOT
from ..yocto import layers as L
from ..yocto import prserv
from . import image_feeds

REQUIRE = "require conf/bindistro.conf"


MAX_JSON = 64 << 20          # a release manifest of 100,000 artifacts is ~25 MB
# what may reach a line of bitbake's conf from a published tree: plain names, and values without
# quotes, blanks or control characters (a newline would start a conf line of its own)
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
SAFE_VALUE = re.compile(r"[^\s\"'\\\x00-\x1f\x7f]*")


class Trust:
    """What a restore accepts: manifests signed by one of `keys` (armored public keys), or — only with
    `insecure` — anything. The project's own tree without a signing key is trusted as local."""

    def __init__(self, keys: list[bytes] = (), insecure: bool = False, local: bool = False, keyring: bytes = b""):
        """`keyring`: the project's own public keys (a binary export, Keyring.public_keyring)."""
        from ..keys import SignatureChecker
        self.checker = SignatureChecker(list(keys), keyring) if keys or keyring else None
        self.insecure, self.local = insecure, local

    def check(self, manifest: Path) -> str:
        sig = manifest.with_name(manifest.name + ".asc")
        if self.checker is None:
            if self.insecure or self.local:
                return "not checked (" + ("--insecure" if self.insecure else "the project's own unsigned tree") + ")"
            raise BindistroError(f"{manifest}: no key to check its signature with: pass --keyring FILE (the "
                                 "distro's public key), run in the project, or --insecure")
        if not sig.is_file():
            if self.insecure:
                return "unsigned (--insecure)"
            raise BindistroError(f"{manifest}: not signed ({sig.name} missing); refusing to restore from it "
                                 "(--insecure to accept)")
        why = self.checker.check(manifest, sig)
        if why:
            if self.insecure:
                return f"{why} (--insecure)"
            raise BindistroError(f"{sig}: {why}; refusing to restore from this tree (--insecure to accept)")
        return "good signature"


def project_trust(spec, own_tree: bool, insecure: bool = False) -> Trust:
    """The project's release keys (current and previous); a project that signs nothing trusts only
    its own tree."""
    from ..keys import Keyring
    if not spec.release_keys:
        return Trust(insecure=insecure, local=own_tree)
    kr = Keyring(spec.state_path / "gnupg")
    return Trust(insecure=insecure, keyring=kr.public_keyring(spec.release_keys))


def _inside(publish: Path, rel: str, what: str) -> Path:
    p = (publish / rel).resolve()
    if not isinstance(rel, str) or rel.startswith("/") or ".." in rel.split("/") or not p.is_relative_to(publish):
        raise BindistroError(f"{publish}: {what} {rel!r} points outside the published tree")
    return p


def _json(path: Path) -> dict:
    try:
        if path.stat().st_size > MAX_JSON:
            raise BindistroError(f"{path}: larger than {MAX_JSON >> 20} MB; not a manifest bindistro wrote")
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BindistroError(f"{path}: missing") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise BindistroError(f"{path}: not valid JSON ({str(e)[:100]})") from None
    if not isinstance(data, dict):
        raise BindistroError(f"{path}: not a JSON object")
    return data


def load_release(publish: Path, name: str | None, trust: Trust | None = None) -> dict:
    """The manifest of a release, its signature checked first: everything else is taken from it."""
    listing = publish / "releases.json"
    if not listing.is_file():
        raise BindistroError(f"{listing}: missing; not a bindistro publish directory")
    rels = _json(listing).get("releases")
    if not isinstance(rels, list) or not all(isinstance(r, dict) for r in rels):
        raise BindistroError(f"{listing}: releases must be a list of objects")
    if not rels:
        raise BindistroError(f"{listing}: no release published yet")
    rel = rels[-1] if name is None else next((r for r in rels if r.get("release") == name), None)
    if rel is None:
        raise BindistroError(f"{listing}: no release {name!r} (have: {', '.join(str(r.get('release')) for r in rels)})")
    path = _inside(publish, str(rel.get("manifest", "")), "manifest")
    status = (trust or Trust(local=True)).check(path)     # no trust given: the caller vouches for the tree
    m = _json(path)
    if not isinstance(m.get("release"), str) or not SAFE_NAME.fullmatch(m["release"]):
        raise BindistroError(f"{path}: release name {m.get('release')!r} is not a plain name")
    m["_signature"] = status
    return m


def artifact(publish: Path, manifest: dict, rel: str, what: str) -> Path:
    """A file the (checked) manifest lists, with the size and sha256 it lists."""
    from ..store.objects import hash_file
    p = _inside(publish, rel, what)
    entry = next((a for a in manifest.get("artifacts", []) if isinstance(a, dict) and a.get("path") == rel), None)
    if entry is None:
        raise BindistroError(f"{p}: {what} is not among the release's artifacts")
    if not p.is_file():
        raise BindistroError(f"{p}: missing ({what} of release {manifest['release']})")
    sha, _md5, size = hash_file(p)
    if (sha, size) != (entry.get("sha256"), entry.get("size")):
        raise BindistroError(f"{p}: does not match the release manifest (sha256/size); refusing to use it")
    return p


CUSTOM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def custom_conf(name: str) -> list[str]:
    """The revision namespace of a custom build: an official recipe rebuilt here gets PKGR
    `<official PKGR>.<name>`, which every package manager sorts above the official revision it was
    built from (more segments after an equal prefix) and which no official build ever writes. The
    suffix goes only on the recipes a user changes (its .bbappend), so the rest still comes from the
    official sstate mirror unchanged."""
    if not CUSTOM_NAME.fullmatch(name):
        raise BindistroError(f"custom build name {name!r}: lower-case letters, digits and -, at most 31")
    return ["# custom build: in the .bbappend of every official recipe you change, add",
            '#     PKGR:append = ".${BINDISTRO_CUSTOM}"',
            f"# so its packages become <official version>.{name}: above the official release's, never equal to",
            "# an official one (bindistro feed add-custom refuses a clash), below the next official revision.",
            f'BINDISTRO_CUSTOM = "{name}"', ""]


def machine_feeds(manifest: dict) -> dict[str, dict[str, list[str]]]:
    """machine -> format -> feed names, most generic first (the manifest's own order)."""
    machines = manifest.get("machines") if isinstance(manifest.get("machines"), dict) else {}
    return {str(mn): {str(f): [str(a) for a in archs] for f, archs in v.items() if isinstance(archs, list)}
            for mn, v in machines.items() if isinstance(v, dict)}


KEY_LIMIT = 1 << 20


def feed_keys(publish: Path, manifest: dict) -> dict[str, bytes]:
    """fingerprint -> armored public key, for the keys the (checked) manifest names: the one that
    signs the release first."""
    sig = manifest.get("signing") if isinstance(manifest.get("signing"), dict) else {}
    out = {}
    for rel in sig.get("keys") or []:
        fpr = str(rel).rsplit("/", 1)[-1].removesuffix(".asc")
        p = _inside(publish, str(rel), "feed key")
        if not re.fullmatch(r"[0-9A-F]{40}", fpr) or not p.is_file() or p.stat().st_size > KEY_LIMIT:
            raise BindistroError(f"{p}: not a feed key file of this release (keys/<fingerprint>.asc, at most 1 MiB)")
        data = p.read_bytes()
        if not data.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----"):
            raise BindistroError(f"{p}: not an armored OpenPGP public key")
        out[fpr] = data
    return out


def ipk_signature(publish: Path, manifest: dict) -> str:
    """`sig` when the ipk feeds publish binary Packages.sig (PACKAGE_FEED_GPG_SIGNATURE_TYPE BIN), else `asc`."""
    feeds = manifest.get("feeds") if isinstance(manifest.get("feeds"), dict) else {}
    for rel in feeds.get("ipk") or []:
        d = _inside(publish, str(rel), "feed")
        if (d / "Packages.sig").is_file() and not (d / "Packages.asc").is_file():
            return "sig"
    return "asc"


def feed_root(manifest: dict) -> str:
    """The feed directory of the manifest's series (feeds/<series>; feeds before series)."""
    root = manifest.get("feed_root", "feeds")
    if not isinstance(root, str) or not FEED_ROOT.fullmatch(root):
        raise BindistroError(f"release {manifest.get('release')}: manifest feed_root {root!r} is not feeds or feeds/NAME")
    return root


def feed_conf(url: str, per_machine: dict[str, list[str]], archs: list[str] | None = None,
              feed_root: str = "feeds") -> list[str]:
    """OE's feed variables: the tree's URL, the feeds of the image's package type (under the
    series' feed directory), and each machine's own feeds (MACHINE is an override: no x86 feed on an
    arm device)."""
    lines = [f'PACKAGE_FEED_URIS = "{url}"', f'PACKAGE_FEED_BASE_PATHS = "{feed_root}/${{IMAGE_PKGTYPE}}"']
    if archs:
        lines.append(f'PACKAGE_FEED_ARCHS = "{" ".join(archs)}"')
    return lines + [f'PACKAGE_FEED_ARCHS:{m} = "{" ".join(a)}"' for m, a in sorted(per_machine.items()) if a] + [""]


def conf_text(manifest: dict, url: str, hashserv_upstream: str | None, custom: str | None = None) -> str:
    r = manifest.get("restore", {})
    feeds = manifest.get("feeds") if isinstance(manifest.get("feeds"), dict) else {}
    fmt = next(iter(feeds), "ipk")
    archs = sorted({str(p).rsplit("/", 1)[-1] for p in feeds.get(fmt, [])})
    machines = manifest.get("machines") if isinstance(manifest.get("machines"), dict) else {}
    per_machine = {m: [str(a) for a in v.get(fmt, [])] for m, v in machines.items() if isinstance(v, dict)}
    bad = [v for v in [fmt, str(manifest.get("product", "")), *archs, *per_machine,
                       *(a for v in per_machine.values() for a in v)] if not SAFE_NAME.fullmatch(v)] + \
          [v for v in [str(r.get("sstate_mirror") or "")] if not SAFE_VALUE.fullmatch(v)]
    if bad:
        raise BindistroError(f"release {manifest['release']}: {bad[0]!r} cannot go into a bitbake conf line")
    lines = [f"# Written by `bindistro restore` from release {manifest['release']} of {manifest.get('product', '?')}.",
             "# Re-run restore to move to a newer release; edit local.conf, not this file.", ""]
    if r.get("sstate_mirror"):
        lines += ["# prebuilt objects of the released builds", f'SSTATE_MIRRORS ?= "file://.* {url}/{r["sstate_mirror"]}/PATH;downloadfilename=PATH"', ""]
        keys = r.get("sstate_keys") or []
        if keys and all(isinstance(k, str) and re.fullmatch(r"[0-9A-F]{40}", k) for k in keys):
            lines += ["# the mirror is signed: use only objects signed by the distro's sstate keys (import them into",
                      "# the builder's GnuPG keyring from the tree's keys/ directory)", 'SSTATE_VERIFY_SIG = "1"',
                      f'SSTATE_VALID_SIGS = "{" ".join(keys)}"', ""]
    if r.get("source_mirror") == "sources/downloads":
        lines += ["# the released build's fetched sources, tried before upstream (own-mirrors.bbclass)",
                  'INHERIT += "own-mirrors"', f'SOURCE_MIRROR_URL = "{url}/sources/downloads/"', ""]
    lines += ["# hash equivalence: a local server seeded from the release's snapshot (cache/hashserv.db)",
              'BB_SIGNATURE_HANDLER = "OEEquivHash"', 'BB_HASHSERVE ??= "auto"']
    if hashserv_upstream:
        lines.append(f'BB_HASHSERVE_UPSTREAM = "{hashserv_upstream}"')
    else:
        lines.append('# BB_HASHSERVE_UPSTREAM = "wss://hashserv.example.org/ws"   # a public server, if the distro runs one')
    lines += ["", "# PR server: local, with the release's values imported into cache/prserv.sqlite3",
              'PRSERV_HOST ?= "localhost:0"', "",
              "# where devices get packages (used for the images' feed configuration)"]
    lines += feed_conf(url, per_machine, archs, feed_root(manifest))
    if custom:
        lines += custom_conf(custom)
    return "\n".join(lines)


# bitbake's hash-equivalence tables (lib/hashserv/sqlite.py): unihashes_v2 until 2023, then
# unihashes_v3 (+ gc_mark); outhashes_v2 in both. A bitbake of v3 upgrades a v2 table at start; one
# of v2 never reads v3: so the snapshot's rows go into the table the build's bitbake reads.
UNIHASH_COLUMNS = {"v2": ("method", "taskhash", "unihash"), "v3": ("method", "taskhash", "unihash", "gc_mark")}
OUTHASH_COLUMNS = ("method", "taskhash", "outhash", "created", "owner", "PN", "PV", "PR", "task", "outhash_siginfo")


def _create(con, table: str, cols: list[tuple[str, str]], unique: list[str]) -> None:
    fields = " ".join(f"{n} {t}," for n, t in cols)
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, {fields} UNIQUE({', '.join(unique)}))")


def _tables(con, schema: str = "main") -> set[str]:
    return {r[0] for r in con.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type='table'")}


def hashserv_schema(build: Path, layers_dir: Path | None) -> tuple[str | None, str]:
    """(v2 | v3 | None, how it was told): the build's own database first, then its bitbake's source."""
    db = build / "cache" / "hashserv.db"
    if db.is_file():
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            names = _tables(con)
        except sqlite3.DatabaseError as e:
            raise BindistroError(f"{db}: not a readable hash-equivalence database ({e})") from None
        finally:
            con.close()
        for v in ("v3", "v2"):
            if f"unihashes_{v}" in names:
                return v, f"{db} has unihashes_{v}"
    for base in dict.fromkeys([(layers_dir or build.parent).resolve(), build.parent.resolve()]):
        for src in sorted(base.glob("*/lib/hashserv/sqlite.py")) + sorted(base.glob("*/bitbake/lib/hashserv/sqlite.py")):
            text = src.read_text(errors="replace")
            for v in ("v3", "v2"):
                if f'"unihashes_{v}"' in text:
                    return v, f"{src} creates unihashes_{v}"
    return None, "the build's bitbake was not found"


def seed_hashserv(db: Path, snapshot: Path, schema: str | None = None) -> dict:
    """Add the snapshot's rows to the build's hash-equivalence database, in the unihash table of
    `schema` (None: the snapshot's own); existing rows win."""
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.execute("ATTACH DATABASE ? AS snap", (f"file:{snapshot}?mode=ro",))
    added = 0
    try:
        snap = _tables(con, "snap")
        src = next((v for v in ("v3", "v2") if f"unihashes_{v}" in snap), None)
        schema = schema or src or "v3"
        with con:
            if src:
                _create(con, f"unihashes_{schema}", [(c, "TEXT NOT NULL") for c in UNIHASH_COLUMNS[schema]],
                        ["method", "taskhash"])
                cols = UNIHASH_COLUMNS[schema]
                # a v2 snapshot has no gc_mark: '' is what bitbake's own v2 -> v3 upgrade writes
                picked = [c if c in UNIHASH_COLUMNS[src] else "''" for c in cols]
                before = con.total_changes
                con.execute(f"INSERT OR IGNORE INTO main.unihashes_{schema} ({','.join(cols)}) "
                            f"SELECT {','.join(picked)} FROM snap.unihashes_{src}")
                added += con.total_changes - before
            if "outhashes_v2" in snap:
                _create(con, "outhashes_v2", [(c, "TEXT NOT NULL" if c in ("method", "taskhash", "outhash") else
                                               "DATETIME" if c == "created" else "TEXT") for c in OUTHASH_COLUMNS],
                        ["method", "taskhash", "outhash"])
                have = {r[1] for r in con.execute("PRAGMA snap.table_info(outhashes_v2)")}
                cols = [c for c in OUTHASH_COLUMNS if c in have]
                before = con.total_changes
                con.execute(f"INSERT OR IGNORE INTO main.outhashes_v2 ({','.join(cols)}) SELECT {','.join(cols)} FROM snap.outhashes_v2")
                added += con.total_changes - before
    finally:
        con.execute("DETACH DATABASE snap")
        con.close()
    return {"rows_added": added, "schema": schema, "snapshot_schema": src}


def checkout_layers(layers: list[L.Layer], base: Path) -> list[dict]:
    """Move existing checkouts under `base` (the layers dir) to the release's commits; nothing else."""
    out = []
    for l in layers:
        rel = l.path or l.name
        d = (base / rel).resolve()
        if not d.is_relative_to(base) or d == base or not re.fullmatch(r"[0-9a-f]{7,64}", l.commit or ""):
            out.append({"layer": l.name, "path": str(base / rel), "status": "refused: path outside the layers dir "
                        "or not a commit id"})
            continue
        if not (d / ".git").exists():
            out.append({"layer": l.name, "path": str(d), "status": "not a git checkout here; skipped"})
            continue
        r = subprocess.run(["git", "-C", str(d), "checkout", "-q", l.commit], capture_output=True, text=True)
        out.append({"layer": l.name, "path": str(d), "commit": l.commit,
                    "status": "checked out" if r.returncode == 0 else f"failed: {r.stderr.strip()[:200]}"})
    return out


def configure_feeds(spec, store, build: Path) -> dict:
    """Before the first release (nothing to restore yet): only the feed settings, from the spec, so
    that the first images are preconfigured too. `restore` replaces the file with the full one."""
    from ..device import machine_feeds
    from ..keys import Keyring
    fprs = spec.release_keys
    keys = {k: Keyring(store.dir / "gnupg").export(k) for k in fprs}
    url = spec.publish_url.rstrip("/")
    if not SAFE_VALUE.fullmatch(url):
        raise BindistroError(f"{spec.path}: publish.url {url!r}: not usable in a bitbake conf line")
    feeds = machine_feeds(spec)
    lines = [f"# Written by bindistro before the first release of {spec.product}: feed settings only;",
             "# `bindistro restore` replaces this file once a release exists. Edit local.conf, not this file.", ""]
    lines += feed_conf(url, {m: v[spec.formats[0]] for m, v in feeds.items()}, feed_root=spec.feed_root)
    try:
        (build / "conf").mkdir(parents=True, exist_ok=True)
        lines += image_feeds.write(build, spec.product, url, feeds, keys, spec.ipk_feed_signature, spec.feed_root)
        (build / "conf" / "bindistro.conf").write_text("\n".join(lines))
        _require(build)
    except OSError as e:
        raise BindistroError(f"{e.filename or build}: cannot write ({e.strerror})") from None
    return {"build": str(build), "conf": str(build / "conf" / "bindistro.conf"), "keys": fprs}


def _require(build: Path) -> None:
    local = build / "conf" / "local.conf"
    old = local.read_text() if local.exists() else ""
    if REQUIRE not in old.splitlines():
        local.write_text(old + ("" if not old or old.endswith("\n") else "\n") + REQUIRE + "\n")


def restore(build: Path, publish: Path, release: str | None = None, url: str | None = None,
            hashserv_upstream: str | None = None, layers_dir: Path | None = None, trust: Trust | None = None,
            custom: str | None = None) -> dict:
    publish = publish.resolve()
    m = load_release(publish, release, trust)
    info = m.get("restore") or {}
    if not isinstance(info, dict):
        raise BindistroError(f"{publish}: release {m['release']}: restore must be an object")
    url = url or f"file://{publish}"
    for what, v in (("url", url), ("hash server", hashserv_upstream or "")):
        if not SAFE_VALUE.fullmatch(v):
            raise BindistroError(f"{what} {v!r}: not usable in a bitbake conf line (quotes, spaces or control characters)")
    text = conf_text(m, url, hashserv_upstream, custom)
    # everything read and checked before anything is written into the build directory
    prrows = None
    if info.get("prserv-export"):
        prrows = prserv.parse_export(artifact(publish, m, info["prserv-export"], "PR export").read_text())
    hashdb = artifact(publish, m, info["hashserv"], "hash-equivalence snapshot") if info.get("hashserv") else None
    layers = L.from_setup_layers(artifact(publish, m, info["setup-layers"], "layer setup")) if info.get("setup-layers") else None
    keys = feed_keys(publish, m)
    try:
        build.mkdir(parents=True, exist_ok=True)
        (build / "conf").mkdir(exist_ok=True)
        text += "\n".join(image_feeds.write(build, str(m.get("product", "")), url, machine_feeds(m), keys,
                                            ipk_signature(publish, m), feed_root(m)))
        (build / "conf" / "bindistro.conf").write_text(text)
        _require(build)
    except OSError as e:
        raise BindistroError(f"{e.filename or build}: cannot write ({e.strerror})") from None
    result = {"release": m["release"], "build": str(build), "conf": str(build / "conf" / "bindistro.conf"),
              "signature": m["_signature"]}
    if prrows is not None:
        added, raised = prserv.import_rows(build / "cache" / "prserv.sqlite3", prrows)
        result["prserv"] = {"rows": len(prrows), "added": added, "raised": raised}
    if hashdb is not None:
        schema, why = hashserv_schema(build, layers_dir)
        seeded = seed_hashserv(build / "cache" / "hashserv.db", hashdb, schema)
        result["hashserv_rows_added"] = seeded["rows_added"]
        result["hashserv"] = dict(seeded, detected=why)
    if layers is not None:
        result["layers"] = checkout_layers(layers, (layers_dir or build.parent).resolve())
    return result
