"""Vulnerability records from files: NVD API 2.0 JSON (one CVE per file, as the FKIE nvd-json-data-feeds
mirror lays them out, or an API page with `vulnerabilities`) and CVE JSON 5 records. Both become one
`Record` with NVD-style configurations, so matching is written once."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import Problem

SEVERITIES = ("critical", "high", "medium", "low", "none")


@dataclass
class Record:
    id: str
    source: str                    # nvd | cve5
    status: str                    # NVD vulnStatus (Analyzed, Modified, Received, Awaiting Analysis, ...)
    published: str
    modified: str
    description: str
    severity: str                  # critical | high | medium | low | none | unknown
    score: float | None
    configurations: list = field(default_factory=list)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict:
        return asdict(self)


def _severity_from_score(score: float) -> str:
    return ("none" if score == 0 else "low" if score < 4 else "medium" if score < 7 else
            "high" if score < 9 else "critical")


def _nvd_metric(metrics: dict) -> tuple[str, float | None]:
    # newest CVSS version first; within one, NVD's own (Primary) score first
    for key in ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2"):
        ms = sorted(metrics.get(key) or [], key=lambda m: m.get("type") != "Primary")
        for m in ms:
            data = m.get("cvssData") or {}
            score = data.get("baseScore")
            if score is None:
                continue
            sev = str(data.get("baseSeverity") or m.get("baseSeverity") or _severity_from_score(score)).lower()
            return sev, float(score)
    return "unknown", None


def from_nvd(cve: dict) -> Record:
    desc = next((d["value"] for d in cve.get("descriptions", []) if d.get("lang") == "en"), "")
    sev, score = _nvd_metric(cve.get("metrics") or {})
    return Record(cve["id"], "nvd", cve.get("vulnStatus", ""), cve.get("published", ""), cve.get("lastModified", ""),
                  desc, sev, score, cve.get("configurations") or [])


def from_cve5(rec: dict) -> Record:
    meta = rec.get("cveMetadata", {})
    cna = rec.get("containers", {}).get("cna", {})
    desc = next((d["value"] for d in cna.get("descriptions", []) if d.get("lang", "").startswith("en")), "")
    sev, score = "unknown", None
    for m in cna.get("metrics", []):
        for k in ("cvssV4_0", "cvssV3_1", "cvssV3_0", "cvssV2_0"):
            if k in m and m[k].get("baseScore") is not None:
                score = float(m[k]["baseScore"])
                sev = str(m[k].get("baseSeverity") or _severity_from_score(score)).lower()
                break
        if score is not None:
            break
    nodes = []
    for a in cna.get("affected", []):
        vendor = _cpe_part(a.get("vendor", "*"))
        product = _cpe_part(a.get("product", ""))
        if not product:
            continue
        matches = []
        for v in a.get("versions", []):
            if v.get("status") != "affected":
                continue
            m = {"vulnerable": True, "criteria": f"cpe:2.3:a:{vendor}:{product}:*:*:*:*:*:*:*:*"}
            if v.get("lessThan"):
                m["versionStartIncluding"] = v["version"] if v.get("version") not in (None, "0", "*") else None
                m["versionEndExcluding"] = v["lessThan"]
            elif v.get("lessThanOrEqual"):
                m["versionStartIncluding"] = v["version"] if v.get("version") not in (None, "0", "*") else None
                m["versionEndIncluding"] = v["lessThanOrEqual"]
            else:
                m["criteria"] = f"cpe:2.3:a:{vendor}:{product}:{_cpe_part(v.get('version', '*'))}:*:*:*:*:*:*:*"
            matches.append({k: x for k, x in m.items() if x is not None})
        if matches:
            nodes.append({"operator": "OR", "negate": False, "cpeMatch": matches})
    configs = [{"nodes": [n]} for n in nodes]
    state = "Published" if meta.get("state") == "PUBLISHED" else meta.get("state", "")
    return Record(meta.get("cveId", ""), "cve5", state, meta.get("datePublished", ""), meta.get("dateUpdated", ""),
                  desc, sev, score, configs)


def _cpe_part(s: str) -> str:
    return str(s).strip().lower().replace(" ", "_").replace(":", "\\:") or "*"


def parse_file(path: Path) -> tuple[list[Record], list[Problem]]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        return [], [Problem(str(path), f"not JSON: {e}")]
    if isinstance(data, dict) and "vulnerabilities" in data:          # an NVD API 2.0 page
        return [from_nvd(v["cve"]) for v in data["vulnerabilities"] if "cve" in v], []
    if isinstance(data, dict) and "cve" in data and isinstance(data["cve"], dict):
        return [from_nvd(data["cve"])], []
    if isinstance(data, dict) and str(data.get("id", "")).startswith("CVE-") and "descriptions" in data:
        return [from_nvd(data)], []                                   # FKIE mirror: the bare cve object
    if isinstance(data, dict) and data.get("dataType") == "CVE_RECORD":
        return [from_cve5(data)], []
    return [], [Problem(str(path), "not an NVD API 2.0 record nor a CVE JSON 5 record")]


def find_files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.json") if q.is_file())
        else:
            out.append(p)
    return out
