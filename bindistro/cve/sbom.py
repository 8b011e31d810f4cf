"""Read image SBOMs as OE writes them: SPDX 3.0 JSON-LD (create-spdx-3.0) and SPDX 2.2 image archives
(`.spdx.tar.zst` with index.json, create-spdx-2.2). The result is the same for both: the installed
packages with their CPEs, and Yocto's own VEX statements about them."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput, Problem
from ..formats.base import ARCHIVE_ERRORS, open_tar

MAX_JSON = 512 << 20       # one SPDX document; OE's largest image SBOMs are tens of MB
MAX_ARCHIVE = 2 << 30      # an unpacked .spdx.tar.zst (hundreds of per-recipe documents)
MAX_DOCS = 100_000
_CPE = re.compile(r"cpe:2\.3:[aho*-]:[^\x00-\x1f]{1,1000}")


@dataclass
class Component:
    name: str                      # binary package name (libc6)
    version: str                   # package version as the SBOM gives it (2.41+git)
    cpes: list[str] = field(default_factory=list)     # cpe:2.3:*:vendor:product:version:...
    ref: str = ""                  # spdxId, to join VEX statements


@dataclass
class Vex:
    cve: str
    package: str                   # component name
    status: str                    # fixed | not_affected
    justification: str = ""
    statement: str = ""


@dataclass
class Sbom:
    name: str
    spdx_version: str
    components: list[Component]
    vex: list[Vex]


def load(path: Path) -> Sbom:
    """The SBOM at `path`; BadInput naming the file for anything unreadable, oversized or malformed."""
    try:
        if path.name.endswith(".tar.zst"):
            sbom = _spdx22_archive(path)
        else:
            data = _json(path.read_bytes() if path.stat().st_size <= MAX_JSON else b"", path)
            if isinstance(data, dict) and "@graph" in data:
                sbom = _spdx3(data, path)
            elif isinstance(data, dict) and str(data.get("spdxVersion", "")).startswith("SPDX-2"):
                sbom = _spdx22_docs({path.name: data}, path)
            else:
                raise BadInput([Problem(str(path), "not an SPDX 3.0 JSON-LD document nor an SPDX 2.2 image archive")])
    except RecursionError:
        raise BadInput([Problem(str(path), "JSON nested too deeply")]) from None
    except (KeyError, TypeError, AttributeError, IndexError) as e:      # a field of the wrong shape
        raise BadInput([Problem(str(path), f"malformed SPDX ({type(e).__name__}: {str(e)[:80]})")]) from None
    except ARCHIVE_ERRORS as e:
        raise BadInput([Problem(str(path), f"not a readable SBOM: {str(e)[:120]}")]) from None
    # scans trust these: text fields, CPEs in CPE 2.3 form (others dropped, as cve-check would not match them)
    comps = [Component(c.name, c.version, [x for x in c.cpes if isinstance(x, str) and _CPE.fullmatch(x)], str(c.ref))
             for c in sbom.components if isinstance(c.name, str) and isinstance(c.version, str)]
    vex = [v for v in sbom.vex if all(isinstance(x, str) for x in (v.cve, v.package, v.justification, v.statement))]
    return Sbom(str(sbom.name), str(sbom.spdx_version), comps, vex)


def _json(data: bytes, path: Path):
    if not data:
        raise BadInput([Problem(str(path), f"empty, or larger than {MAX_JSON >> 20} MB")])
    try:
        return json.loads(data)
    except ValueError as e:
        raise BadInput([Problem(str(path), f"not JSON: {str(e)[:120]}")]) from None


def _cpe_ids(elem: dict) -> list[str]:
    return [x["identifier"] for x in elem.get("externalIdentifier", [])
            if x.get("externalIdentifierType") == "cpe23" and x.get("identifier")]


def _spdx3(data: dict, path: Path) -> Sbom:
    graph = data["@graph"]
    by_id = {e.get("spdxId"): e for e in graph if isinstance(e, dict) and e.get("spdxId")}
    doc = next((e for e in graph if e.get("type") == "SpdxDocument"), {})
    comps: dict[str, Component] = {}
    for e in graph:
        if e.get("type") == "software_Package" and e.get("software_primaryPurpose") == "install":
            comps[e["spdxId"]] = Component(e.get("name", ""), e.get("software_packageVersion", ""),
                                           _cpe_ids(e), e["spdxId"])
    vex = []
    kinds = {"security_VexFixedVulnAssessmentRelationship": "fixed",
             "security_VexNotAffectedVulnAssessmentRelationship": "not_affected"}
    for e in graph:
        status = kinds.get(e.get("type"))
        if not status:
            continue
        vuln = by_id.get(e.get("from"), {})
        cve = next((x["identifier"] for x in vuln.get("externalIdentifier", [])
                    if x.get("externalIdentifierType") == "cve"), None) or e.get("from", "").rsplit("/", 1)[-1]
        for to in e.get("to", []):
            if to in comps:     # statements about packages outside the image (e.g. -native) do not apply
                vex.append(Vex(cve, comps[to].name, status, e.get("security_justificationType", ""),
                               e.get("security_impactStatement", "")))
    if not comps:
        raise BadInput([Problem(str(path), "SPDX 3 document lists no installed packages (software_primaryPurpose install)")])
    return Sbom(doc.get("name") or path.name, "SPDX-3.0", list(comps.values()), vex)


def _spdx22_archive(path: Path) -> Sbom:
    docs = {}
    with open(path, "rb") as fh:
        tf = open_tar(path.name, fh, MAX_ARCHIVE, path.stat().st_size)
        for m in tf:
            if m.isfile() and m.name.endswith(".json"):
                if len(docs) >= MAX_DOCS:
                    raise BadInput([Problem(str(path), f"more than {MAX_DOCS} documents")])
                docs[m.name.rsplit("/", 1)[-1]] = _json(tf.extractfile(m).read(MAX_JSON + 1)
                                                        if m.size <= MAX_JSON else b"", path)
    return _spdx22_docs(docs, path)


FIXED = re.compile(r"CVEs fixed:\s*(.*)")


def _spdx22_docs(docs: dict[str, dict], path: Path) -> Sbom:
    by_ns = {d.get("documentNamespace"): d for d in docs.values() if isinstance(d, dict)}
    image = next((d for n, d in docs.items() if n != "index.json" and any(
        p.get("SPDXID", "").startswith("SPDXRef-Image-") for p in d.get("packages", []))), None)
    if image is None:
        raise BadInput([Problem(str(path), "no image document (SPDXRef-Image-*) in the SPDX 2.2 archive")])
    refs = {r["externalDocumentId"]: by_ns.get(r["spdxDocument"]) for r in image.get("externalDocumentRefs", [])}
    comps, vex = [], []
    for rel in image.get("relationships", []):
        if rel.get("relationshipType") != "CONTAINS":
            continue
        docref, _, elem = rel["relatedSpdxElement"].partition(":")
        pdoc = refs.get(docref)
        if not pdoc:
            continue
        pkg = next((p for p in pdoc.get("packages", []) if p.get("SPDXID") == elem), None)
        if not pkg:
            continue
        recipe = _recipe_of(pdoc, pkg, by_ns)
        cpes = [r["referenceLocator"] for r in (recipe or {}).get("externalRefs", [])
                if r.get("referenceType", "").endswith("cpe23Type")]
        comp = Component(pkg.get("name", ""), pkg.get("versionInfo", ""), cpes, rel["relatedSpdxElement"])
        comps.append(comp)
        m = FIXED.match((recipe or {}).get("sourceInfo", ""))
        for cve in (m.group(1).split() if m else []):
            vex.append(Vex(cve, comp.name, "fixed", "", "CVEs fixed (sourceInfo of the recipe)"))
    return Sbom(image.get("name") or path.name, image.get("spdxVersion", "SPDX-2.2"), comps, vex)


def _recipe_of(pdoc: dict, pkg: dict, by_ns: dict) -> dict | None:
    refs = {r["externalDocumentId"]: by_ns.get(r["spdxDocument"]) for r in pdoc.get("externalDocumentRefs", [])}
    for rel in pdoc.get("relationships", []):
        if rel.get("spdxElementId") == pkg["SPDXID"] and rel.get("relationshipType") == "GENERATED_FROM":
            docref, _, elem = rel["relatedSpdxElement"].partition(":")
            rdoc = refs.get(docref)
            if rdoc:
                return next((p for p in rdoc.get("packages", []) if p.get("SPDXID") == elem), None)
    return None
