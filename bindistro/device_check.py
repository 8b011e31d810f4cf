"""`bindistro device check` and `device sbom`: a device's installed packages against every release.

The release data is the feed viewer's (site/data.py, api.py: `versions/<format>.json`), so this and
the site's device-check page agree. CVEs are found by evaluating the device's deployed SBOM — the
same document `device sbom` writes — so `cve scan --sbom` on that file finds exactly what this does."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

from . import cve
from .cve import sbom as sbommod
from .formats import get as get_format
from .formats.base import upstream_version
from .manifest import DeviceManifest
from .site.api import Api
from .site.data import SBOM_SUFFIXES, collect
from .errors import BindistroError
from .spec import Spec
from .store import Store

OPEN = ("affected", "under_investigation")


def _shipped(doc: dict, i: int) -> dict[str, str]:
    out = {}
    for name, versions in doc["packages"].items():
        for version, _arch, ranges in versions:
            if any(a <= i <= b for a, b in ranges):
                out[name] = version
    return out


class Checker:
    def __init__(self, spec: Spec, store: Store):
        self.spec, self.store = spec, store
        self.data = collect(spec, store, spec.publish_path)
        if not self.data.releases:
            raise BindistroError(f"{spec.publish_path}: nothing released yet; no release to compare with")
        self.api = Api(self.data)
        self.docs = {fmt: self.api.versions(fmt) for fmt in self.data.formats}
        self.names = [r["release"] for r in self.data.releases]
        self._sboms: dict[int, list] = {}

    def match(self, m: DeviceManifest, release: str | None = None) -> tuple[str, int, dict[str, str]]:
        """(format, release index, what that release ships) that shares most (name, version) pairs
        with the device; a tie goes to the later release, then to the spec's earlier format."""
        if release is not None and release not in self.names:
            raise BindistroError(f"release {release}: no such release (have: {', '.join(self.names)})")
        best = None
        for fmt in ([m.format] if m.format else self.data.formats):
            if fmt not in self.docs:
                continue
            for i in range(len(self.names)) if release is None else [self.names.index(release)]:
                s = _shipped(self.docs[fmt], i)
                score = sum(1 for p in m.packages if s.get(p.name) == p.version)
                if best is None or (score, i) > (best[0], best[2]):
                    best = (score, fmt, i, s)
        if best is None:
            raise BindistroError(f"{m.kind} manifest: its package format {m.format} is not published here "
                                 f"(formats: {', '.join(self.data.formats)})")
        return best[1], best[2], best[3]

    def check(self, m: DeviceManifest, release: str | None = None) -> dict:
        fmt, i, shipped = self.match(m, release)
        doc = self.docs[fmt]
        latest = _shipped(doc, len(self.names) - 1)
        cmp = get_format(fmt).version_cmp
        res = {k: [] for k in ("newer", "older", "absent", "foreign", "unpublished", "upgrades")}
        for p in m.packages:
            known = doc["packages"].get(p.name)
            if not known:
                res["foreign"].append({"name": p.name, "installed": p.version})
                continue
            if not any(v[0] == p.version for v in known):
                res["unpublished"].append({"name": p.name, "installed": p.version})
            s = shipped.get(p.name)
            if s is None:
                res["absent"].append({"name": p.name, "installed": p.version})
            elif s != p.version:
                res["newer" if cmp(p.version, s) > 0 else "older"].append(
                    {"name": p.name, "installed": p.version, "release": s})
            if p.name in latest and cmp(latest[p.name], p.version) > 0:
                res["upgrades"].append({"name": p.name, "installed": p.version, "latest": latest[p.name]})
        findings = cve.match.evaluate(sbommod.Sbom("device", "SPDX-3.0", *self._components(m, fmt)),
                                      cve.load_records(self.store))
        cves = [f.to_dict() for f in findings]
        exact = not any(res[k] for k in ("newer", "older", "absent", "foreign", "unpublished"))
        open_cves = [f for f in cves if f["status"] in OPEN]
        return {"manifest": m.kind, "format": fmt, "packages": len(m.packages), "release": self.names[i],
                "latest": self.names[-1], "exact": exact, **res, "cves": cves, "open_cves": len(open_cves),
                "ok": exact and not open_cves}

    # --- the deployed SBOM -------------------------------------------------------------------------
    def _release_sbom(self, i: int) -> list:
        if i not in self._sboms:
            rel = self.data.releases[i]
            self._sboms[i] = [sbommod.load(self.store.objects.path(a["sha256"])) for a in rel["images"]
                              if a["path"].endswith(SBOM_SUFFIXES)]
        return self._sboms[i]

    def _element(self, fmt: str, name: str, version: str):
        """(component, its VEX) for an installed package, from the SBOM of a release that shipped that
        exact version (the image built with it), else of any release's with the same upstream version
        (a package installed after the image was made has no element of its own)."""
        doc = self.docs[fmt]
        rels = [i for v in doc["packages"].get(name, []) if v[0] == version for a, b in v[2] for i in range(a, b + 1)]
        upstream = upstream_version(version)
        for pool, exact in ((sorted(set(rels), reverse=True), True), (range(len(self.names) - 1, -1, -1), False)):
            for i in pool:
                for s in self._release_sbom(i):
                    for c in s.components:
                        if c.name == name and (exact or c.version == upstream):
                            return c, [v for v in s.vex if v.package == name]
        return None, []

    def _components(self, m: DeviceManifest, fmt: str):
        comps, vex = [], {}
        for p in m.packages:
            c, vs = self._element(fmt, p.name, p.version)
            comps.append(sbommod.Component(p.name, c.version if c else p.version, list(c.cpes) if c else [],
                                           _pkg_id(p.name)))
            vex.update({(v.cve, v.package): v for v in vs})
        return comps, list(vex.values())

    def sbom(self, m: DeviceManifest, release: str | None = None) -> dict:
        """SPDX 3.0 JSON-LD, sbomType deployed: exactly the installed packages."""
        fmt, i, _ = self.match(m, release)
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        digest = hashlib.sha256("\n".join(f"{p.name} {p.version} {p.arch}" for p in m.packages).encode()).hexdigest()[:16]
        base = f"https://spdx.invalid/{self.spec.product}/device-{digest}"
        ci = "_:CreationInfo1"
        graph: list[dict] = [{"@id": ci, "type": "CreationInfo", "specVersion": "3.0.1", "created": created,
                              "createdBy": [f"{base}/agent/bindistro"]},
                             {"type": "Tool", "spdxId": f"{base}/agent/bindistro", "creationInfo": ci, "name": "bindistro"}]
        details = {(f.format, f.name, f.version): self.data.details[f.path] for f in self.data.files.values()}
        comps, vex = self._components(m, fmt)
        ids = []
        for p, c in zip(m.packages, comps):
            pid = f"{base}/package/{_pkg_id(p.name)}"
            ids.append(pid)
            det = details.get((fmt, p.name, p.version), {})
            e = {"type": "software_Package", "spdxId": pid, "creationInfo": ci, "name": p.name,
                 "software_packageVersion": c.version, "software_primaryPurpose": "install",
                 "software_packageUrl": f"pkg:generic/{p.name}@{p.version}" + (f"?arch={p.arch}" if p.arch else ""),
                 "comment": f"installed version {p.version}" + (f" ({fmt} {p.arch})" if p.arch else "")}
            if det.get("summary"):
                e["summary"] = det["summary"]
            if c.cpes:
                e["externalIdentifier"] = [{"type": "ExternalIdentifier", "externalIdentifierType": "cpe23", "identifier": x}
                                           for x in c.cpes]
            graph.append(e)
            if det.get("license"):
                lid = f"{base}/license/{_pkg_id(p.name)}"
                graph.append({"type": "simplelicensing_LicenseExpression", "spdxId": lid, "creationInfo": ci,
                              "simplelicensing_licenseExpression": det["license"]})
                graph.append({"type": "Relationship", "spdxId": f"{lid}/declared", "creationInfo": ci,
                              "relationshipType": "hasDeclaredLicense", "from": pid, "to": [lid]})
        by_name = dict(zip([p.name for p in m.packages], ids))
        for v in vex:
            vid = f"{base}/vulnerability/{v.cve}"
            if not any(e.get("spdxId") == vid for e in graph):
                graph.append({"type": "security_Vulnerability", "spdxId": vid, "creationInfo": ci, "externalIdentifier": [
                    {"type": "ExternalIdentifier", "externalIdentifierType": "cve", "identifier": v.cve}]})
            rel = {"type": "security_VexFixedVulnAssessmentRelationship" if v.status == "fixed"
                   else "security_VexNotAffectedVulnAssessmentRelationship",
                   "spdxId": f"{vid}/vex/{_pkg_id(v.package)}", "creationInfo": ci, "from": vid, "to": [by_name[v.package]],
                   "relationshipType": "fixedIn" if v.status == "fixed" else "doesNotAffect", "security_vexVersion": "1.0.0"}
            if v.status != "fixed":
                if v.justification:
                    rel["security_justificationType"] = v.justification
                if v.statement:
                    rel["security_impactStatement"] = v.statement
            graph.append(rel)
        sbom_id = f"{base}/sbom"
        graph.append({"type": "software_Sbom", "spdxId": sbom_id, "creationInfo": ci, "software_sbomType": ["deployed"],
                      "rootElement": ids, "element": ids})
        graph.append({"type": "SpdxDocument", "spdxId": f"{base}/document", "creationInfo": ci,
                      "name": f"{self.spec.product} device ({m.kind}, closest to release {self.names[i]})",
                      "rootElement": [sbom_id], "element": [e["spdxId"] for e in graph if "spdxId" in e]})
        return {"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": graph}


def _pkg_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=1) + "\n"
