"""`bindistro bundle RELEASE OUT`: from binary to source — what intermediate and advanced users need
to rebuild a release and publish their own components without clashing with the official feed."""
from __future__ import annotations

import shutil
from pathlib import Path

from .restore import conf_text, custom_conf, feed_keys, feed_root, image_feeds, ipk_signature, load_release, machine_feeds

README = """# Rebuilding {product} {release} from source

SAMPLE-aware note: everything here comes from the published release {release}; nothing is fetched.

## What is here

- `setup-layers.json` — layer URLs and commits; check them out with `oe-setup-layers` (or
  `bitbake-layers setup-layers` on newer releases). `kas.lock.yml` pins the same commits for kas users.
- `conf/bindistro.conf` — sstate mirror, hash equivalence, PR server and feed settings of the release;
  with `classes/bindistro-feeds.bbclass` and `conf/bindistro/feeds/` it makes your images use the
  official feeds, signature checking on, with the release keys (as the official images do).
- `conf/custom-feed.conf` — settings for publishing your own packages next to the official feed.
- `prserv-export.conf` — the official PR values (`bitbake-prserv-tool export` format).
- `SOURCES.txt` — where the release's sources are (the archiver's output, `sources/<target>/<PF>/` of
  the publish tree): {sources}

## Transition to custom builds

1. `oe-setup-layers --force-bootstraplayer-checkout setup-layers.json` (or `kas checkout` with the lock file).
2. `. layers/poky/oe-init-build-env build` and copy `conf/bindistro.conf`, `conf/bindistro/` and
   `classes/` into `build/` (`build/conf/…`, `build/classes/`); add
   `require conf/bindistro.conf` and `require conf/custom-feed.conf` to `build/conf/local.conf`.
3. Import the official PR values before the first build:
   `bitbake-prserv-tool import prserv-export.conf`.
   Your packages then continue from the official revisions.
4. `bitbake <your image>` — unchanged recipes come from the sstate mirror ({sstate}), so only what
   you changed is compiled. Hash equivalence makes more of it reusable.
5. eSDK / SDK: {sdk}

## Publish custom components (feeds)

1. Keep your packages in their own feed: set `PACKAGE_FEED_URIS` in `conf/custom-feed.conf` to your
   server and publish `tmp/deploy/<format>/` there (`bindistro init` + `stage` + `release` in your own
   project directory do this with cumulative, never-rewritten feeds).
2. Your package versions must never equal official ones (same name, version and arch, other bytes:
   devices could not tell them apart). `conf/custom-feed.conf` sets `BINDISTRO_CUSTOM = "{custom}"`: in
   the `.bbappend` of every official recipe you change, add `PKGR:append = ".${{BINDISTRO_CUSTOM}}"`.
   Its packages then carry `<official revision>.{custom}` (e.g. `1.36.1-r0.1.{custom}`), which opkg,
   dpkg/apt and rpm/dnf all sort above the official revision you built from and below the next
   official one; `bindistro feed add-custom` refuses a package that equals an official one. (bitbake
   5.0's `PRSERV_UPSTREAM` numbers local revisions `<official>.N` on top of a read-only official PR
   server: another way to the same order, when the distro runs one.)
3. Devices add your feed beside the official one (e.g. one more `src/gz` line in
   `/etc/opkg/base-feeds.conf`).
"""

CUSTOM_FEED = """# Publishing your own components beside {product} {release}
# The distro's read-only PR server, when it runs one (bitbake >= 5.0): local revisions become <official>.N
# PRSERV_UPSTREAM = "prserv.example.org:8585"
PRSERV_HOST ?= "localhost:0"
# Your own feed, next to the official one
PACKAGE_FEED_URIS = "https://feeds.example.org/my-components"
{custom}"""


def write_bundle(publish: Path, release: str, out: Path, url: str | None, custom: str = "custom") -> dict:
    publish = publish.resolve()
    m = load_release(publish, release)
    info = m.get("restore") or {}
    out.mkdir(parents=True, exist_ok=True)
    (out / "conf").mkdir(exist_ok=True)
    files = []
    for key, name in (("setup-layers", "setup-layers.json"), ("kas-lock", "kas.lock.yml"),
                      ("prserv-export", "prserv-export.conf")):
        if info.get(key):
            shutil.copyfile(publish / info[key], out / name)
            files.append(name)
    base = url or f"file://{publish}"
    lines = image_feeds.write(out, str(m.get("product", "")), base, machine_feeds(m), feed_keys(publish, m),
                              ipk_signature(publish, m), feed_root(m))
    (out / "conf" / "bindistro.conf").write_text(conf_text(m, base, None) + "\n".join(lines))
    (out / "conf" / "custom-feed.conf").write_text(CUSTOM_FEED.format(product=m.get("product"), release=m["release"],
                                                                      custom="\n".join(custom_conf(custom))))
    sdk = [a["path"] for a in m["artifacts"] if a["kind"] == "sdk" and a["path"].endswith(".sh")]
    srcs = sorted(a["path"] for a in m["artifacts"] if a["kind"] == "sources")
    (out / "SOURCES.txt").write_text("".join(f"{base}/{p}\n" for p in srcs))
    (out / "README.md").write_text(README.format(
        product=m.get("product"), release=m["release"], custom=custom,
        sstate=f"{url or 'file://' + str(publish)}/{info['sstate_mirror']}" if info.get("sstate_mirror") else "not published",
        sources=f"{len(srcs)} files" if srcs else "none in this release's manifest (an earlier release may hold them)",
        sdk=", ".join(sdk) if sdk else "this release publishes no SDK installer; build one with `bitbake <image> -c populate_sdk_ext`."))
    files += ["conf/bindistro.conf", "conf/custom-feed.conf", "README.md", "SOURCES.txt",
              f"classes/{image_feeds.CLASS_NAME}.bbclass", image_feeds.FILES_DIR + "/"]
    return {"release": m["release"], "out": str(out), "files": files}
