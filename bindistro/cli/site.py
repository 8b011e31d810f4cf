"""Commands of the feed viewer and of devices in the field: site build, serve, device check / sbom."""
from __future__ import annotations

import functools
import http.server
from pathlib import Path

import click

from .base import Project, Reported, emit, json_opt, out

_manifest = click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
_release = click.option("--release", "rel", help="Compare with this release (default: the one the device matches best).")


@click.group("site")
def site():
    """The static feed viewer (site/) and JSON API (api/v1/) of the publish tree."""


@site.command("build")
@json_opt
@click.pass_obj
def site_build(proj: Project, as_json):
    """Rebuild site/ and api/v1/ for every release of the tree (releases write them themselves)."""
    from .. import site as sitemod
    r = sitemod.rebuild(proj.spec, proj.store)
    emit(as_json, r, lambda r: out.print(f"{proj.spec.publish_path}/site/index.html: {r['releases']} releases, "
                                         f"{r['packages']} packages; {r['files_written']} files written, "
                                         f"{r['files_unchanged']} unchanged"))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):      # one line per request is noise in a preview
        pass


@click.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.pass_obj
def serve(proj: Project, port):
    """Serve the publish tree on 127.0.0.1 for a local preview (Ctrl-C stops)."""
    root = proj.spec.publish_path
    handler = functools.partial(_Quiet, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as srv:
        out.print(f"serving {root} at http://127.0.0.1:{srv.server_address[1]}/site/index.html")
        srv.serve_forever()


@click.group("device")
def device():
    """Check a device in the field against the releases."""


@device.command("check")
@_manifest
@_release
@json_opt
@click.pass_obj
def device_check(proj: Project, manifest, rel, as_json):
    """Which release MANIFEST (opkg/dpkg status, rpm -qa, image .manifest, package.manifest) matches;
    what is newer, older, foreign or unpublished; upgrades; open CVEs. Exit 0 only for an exact match
    with no open CVE."""
    from .. import manifest as manifestmod
    from ..device_check import Checker
    m = manifestmod.load(manifest)
    r = Checker(proj.spec, proj.store).check(m, rel)

    def human(r):
        out.print(f"{manifest}: {r['manifest']}, {r['packages']} {r['format']} packages: "
                  f"{'exactly' if r['exact'] else 'closest to'} release {r['release']}, "
                  f"{len(r['upgrades'])} upgrades available from {r['latest']}")
        for key, what in (("newer", "newer than the release"), ("older", "older than the release"),
                          ("absent", "not in the release"), ("foreign", "not from this distribution"),
                          ("unpublished", "a version no release published (cannot be reproduced)"),
                          ("upgrades", "upgrade available")):
            for p in r[key]:
                other = p.get("release") or p.get("latest")
                out.print(f"  {what}: {p['name']} {p['installed']}" + (f" ({other})" if other else ""), markup=False)
        for c in r["cves"]:
            if c["status"] in ("affected", "under_investigation"):
                out.print(f"  {c['status']}: {c['cve']} {c['package']} {c['version']}", markup=False)
    emit(as_json, r, human)
    if not r["ok"]:
        raise Reported()


@device.command("sbom")
@_manifest
@_release
@click.option("-o", "out_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the SPDX 3.0 JSON-LD document.")
@json_opt
@click.pass_obj
def device_sbom(proj: Project, manifest, rel, out_file, as_json):
    """An SPDX 3.0 SBOM (sbomType deployed) of exactly the packages MANIFEST lists."""
    from .. import manifest as manifestmod
    from ..device_check import Checker, dumps
    from ..store.objects import write_bytes_atomic
    m = manifestmod.load(manifest)
    doc = Checker(proj.spec, proj.store).sbom(m, rel)
    write_bytes_atomic(out_file, dumps(doc).encode())
    n = sum(1 for e in doc["@graph"] if e.get("type") == "software_Package")
    emit(as_json, {"out": str(out_file), "packages": n},
         lambda r: out.print(f"{out_file}: SPDX 3.0 deployed SBOM, {n} packages"))


COMMANDS = [site, serve, device]
