"""SAMPLE DATA: an SPDX 3.0 JSON-LD SBOM per image, shaped like OE's create-spdx-3.0 output (installed
packages with cpe23 identifiers from CVE_PRODUCT, and Yocto's VEX for patched / not-affected CVEs)."""
from __future__ import annotations

import hashlib
import json

from .packages import Pkg

# CVE_PRODUCT of the sample recipes, as oe-core sets it (vendor:product; a bare product means any vendor)
CVE_PRODUCT = {
    "openssl": ["openssl:openssl"], "zlib": ["zlib:zlib", "gnu:zlib"], "linux-yocto": ["linux_kernel", "linux:linux"],
    "openssh": ["openbsd:openssh"], "curl": ["haxx:curl", "haxx:libcurl"], "sqlite3": ["sqlite:sqlite"],
    "libxml2": ["xmlsoft:libxml2"], "bash": ["gnu:bash"], "expat": ["libexpat_project:libexpat"],
    "dbus": ["freedesktop:dbus"], "systemd": ["systemd_project:systemd"], "shadow": ["shadow-maint:shadow"],
}
NO_CPE = ("packagegroup-", "os-release")
# Yocto's own VEX for the sample (recipe, CVE, status, justification or statement)
VEX = [
    ("busybox", "CVE-2022-28391", "fixed", ""),
    ("busybox", "CVE-2023-39810", "fixed", ""),
    ("glibc", "CVE-2019-1010025", "not_affected",
     "Allows for ASLR bypass so can bypass some hardening, not an exploit in itself"),
    ("zlib", "CVE-2023-45853", "not_affected", "vulnerableCodeNotPresent"),
]


def _id(*parts: str) -> str:
    return "http://spdx.org/spdxdocs/bindistro-sample/" + "/".join(parts)


def cpes(pkg: Pkg) -> list[str]:
    r = pkg.recipe
    if r.pn.startswith(NO_CPE):
        return []
    version = r.pv.split("+git")[0]
    out = []
    for prod in CVE_PRODUCT.get(r.pn, [r.pn]):
        vendor, _, product = prod.rpartition(":")
        out.append(f"cpe:2.3:*:{vendor or '*'}:{product}:{version}:*:*:*:*:*:*:*")
    return out


def write_sbom(pkgs: list[Pkg], image_name: str, created: str) -> bytes:
    ci = "_:CreationInfo1"
    graph: list[dict] = [
        {"type": "CreationInfo", "@id": ci, "specVersion": "3.0.1", "created": created,
         "createdBy": [_id("agent", "bindistro-sample")]},
        {"type": "Tool", "spdxId": _id("agent", "bindistro-sample"), "creationInfo": ci,
         "name": "bindistro sample-build (SAMPLE DATA, not a real build)"},
    ]
    ids = []
    by_recipe: dict[str, list[str]] = {}
    for p in pkgs:
        pid = _id(p.recipe.pn, "package", p.name)
        ids.append(pid)
        by_recipe.setdefault(p.recipe.pn, []).append(pid)
        elem = {"type": "software_Package", "spdxId": pid, "creationInfo": ci, "name": p.name,
                "software_packageVersion": p.recipe.pv, "software_primaryPurpose": "install",
                "summary": p.description}
        ext = [{"type": "ExternalIdentifier", "externalIdentifierType": "cpe23", "identifier": c} for c in cpes(p)]
        if ext:
            elem["externalIdentifier"] = ext
        graph.append(elem)
    for pn, cve, status, why in VEX:
        targets = by_recipe.get(pn)
        if not targets:
            continue
        vid = _id(pn, "vulnerability", cve)
        graph.append({"type": "security_Vulnerability", "spdxId": vid, "creationInfo": ci,
                      "externalIdentifier": [{"type": "ExternalIdentifier", "externalIdentifierType": "cve",
                                              "identifier": cve}]})
        h = hashlib.sha256(f"{pn}{cve}{status}".encode()).hexdigest()[:32]
        rel = {"creationInfo": ci, "from": vid, "to": targets, "security_vexVersion": "1.0.0"}
        if status == "fixed":
            rel.update(type="security_VexFixedVulnAssessmentRelationship", spdxId=_id(pn, "vex-fixed", h),
                       relationshipType="fixedIn")
        else:
            rel.update(type="security_VexNotAffectedVulnAssessmentRelationship", spdxId=_id(pn, "vex-not-affected", h),
                       relationshipType="doesNotAffect")
            if why[:1].islower() and " " not in why:
                rel["security_justificationType"] = why
            else:
                rel["security_impactStatement"] = why
        graph.append(rel)
    sbom_id = _id("sbom", image_name)
    graph.append({"type": "software_Sbom", "spdxId": sbom_id, "creationInfo": ci, "name": image_name,
                  "rootElement": ids, "software_sbomType": ["build"]})
    graph.append({"type": "SpdxDocument", "spdxId": _id("document", image_name), "creationInfo": ci,
                  "name": image_name, "profileConformance": ["core", "software", "security"], "rootElement": [sbom_id]})
    doc = {"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": graph}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
