"""Vulnerability records from files: NVD API 2.0 JSON (one CVE per file, as the FKIE nvd-json-data-feeds
mirror lays them out, or an API page with `vulnerabilities`) and CVE JSON 5 records. Both become one
`Record` with NVD-style configurations, so matching is written once."""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import BindistroError, Problem

SEVERITIES = ("critical", "high", "medium", "low", "none")
MAX_FILE = 64 << 20        # an NVD API page of 2,000 records is ~10 MB; one CVE JSON 5 record a few KB

# What a stored record may hold: scans trust this shape, so a record is checked against it before it is
# stored (one odd record must never make later scans fail). Bounds are far above NVD's largest records.
_VERSION = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\\u0000-\\u001f]*$"}
_MATCH = {"type": "object", "required": ["criteria"], "properties": {
    "vulnerable": {"type": "boolean"},
    "criteria": {"type": "string", "maxLength": 1000, "pattern": "^cpe:2\\.3:[aho*-]:[^\\u0000-\\u001f]*$"},
    "versionStartIncluding": _VERSION, "versionStartExcluding": _VERSION,
    "versionEndIncluding": _VERSION, "versionEndExcluding": _VERSION}}
_NODE = {"type": "object", "properties": {
    "operator": {"enum": ["AND", "OR"]}, "negate": {"type": "boolean"},
    "cpeMatch": {"type": "array", "maxItems": 20000, "items": _MATCH}}}
RECORD_SCHEMA = {"type": "object", "required": ["id", "source", "severity", "configurations"], "properties": {
    "id": {"type": "string", "pattern": "^CVE-[0-9]{4}-[0-9]{4,12}$"},
    "source": {"enum": ["nvd", "cve5"]},
    "status": {"type": "string", "maxLength": 100},
    "published": {"type": "string", "maxLength": 100},
    "modified": {"type": "string", "maxLength": 100},
    "description": {"type": "string", "maxLength": 100000},
    "severity": {"enum": [*SEVERITIES, "unknown"]},
    "score": {"oneOf": [{"type": "number", "minimum": 0, "maximum": 10}, {"type": "null"}]},
    "configurations": {"type": "array", "maxItems": 1000, "items": {"type": "object", "properties": {
        "operator": {"enum": ["AND", "OR"]}, "negate": {"type": "boolean"},
        "nodes": {"type": "array", "maxItems": 1000, "items": _NODE}}}}}}


@functools.cache
def _checker():
    import jsonschema       # 70-100 ms: a site build reads scans, it checks no record
    return jsonschema.Draft202012Validator(RECORD_SCHEMA)


class BadRecord(BindistroError, ValueError):
    """One record that cannot be used; the rest of its file may still be."""


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


def check(rec: Record) -> None:
    """Raise BadRecord unless `rec` has the shape scans rely on."""
    import jsonschema
    err = jsonschema.exceptions.best_match(_checker().iter_errors(rec.to_dict()))
    if err is not None:
        where = "/".join(str(x) for x in err.absolute_path) or "record"
        raise BadRecord(f"{where}: {_short(err.message)}")
    for cfg in rec.configurations:          # bounds must compare: bitbake's vercmp takes digits as ints
        for n in cfg.get("nodes", []):
            for m in n.get("cpeMatch", []):
                for k in ("versionStartIncluding", "versionStartExcluding", "versionEndIncluding",
                          "versionEndExcluding"):
                    if k in m and any(len(run) > 30 for run in _digit_runs(m[k])):
                        raise BadRecord(f"{k} {_short(m[k])} is not a version")


def _digit_runs(v: str) -> list[str]:
    import re
    return re.findall(r"[0-9]+", v)


def _short(s, width: int = 100) -> str:
    s = str(s)
    return s if len(s) <= width else s[:width] + "…"


def _convert(fn, raw) -> Record:
    rid = raw.get("id") if isinstance(raw, dict) else None
    if rid is None and isinstance(raw, dict):
        rid = (raw.get("cveMetadata") or {}).get("cveId") if isinstance(raw.get("cveMetadata"), dict) else None
    try:
        rec = fn(raw)
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise BadRecord(f"{_short(rid or 'record', 40)}: malformed ({type(e).__name__}: {_short(e, 80)})") from None
    try:
        check(rec)
    except BadRecord as e:
        raise BadRecord(f"{_short(rec.id or rid or 'record', 40)}: {e}") from None
    return rec


def parse_file(path: Path) -> tuple[list[Record], list[Problem]]:
    """The usable records of one file, and a problem per record (or file) that is not usable."""
    try:
        if path.stat().st_size > MAX_FILE:
            return [], [Problem(str(path), f"larger than {MAX_FILE >> 20} MB; not a vulnerability record file")]
        data = json.loads(path.read_bytes())
    except RecursionError:
        return [], [Problem(str(path), "JSON nested too deeply")]
    except (OSError, ValueError) as e:
        return [], [Problem(str(path), f"not JSON: {_short(e)}")]
    raws = []
    if isinstance(data, dict) and isinstance(data.get("vulnerabilities"), list):   # an NVD API 2.0 page
        raws = [(from_nvd, v.get("cve") if isinstance(v, dict) else v) for v in data["vulnerabilities"]]
    elif isinstance(data, dict) and isinstance(data.get("cve"), dict):
        raws = [(from_nvd, data["cve"])]
    elif isinstance(data, dict) and str(data.get("id", "")).startswith("CVE-") and "descriptions" in data:
        raws = [(from_nvd, data)]                                     # FKIE mirror: the bare cve object
    elif isinstance(data, dict) and data.get("dataType") == "CVE_RECORD":
        raws = [(from_cve5, data)]
    else:
        return [], [Problem(str(path), "not an NVD API 2.0 record nor a CVE JSON 5 record")]
    out, problems = [], []
    for fn, raw in raws:
        try:
            out.append(_convert(fn, raw))
        except BadRecord as e:
            problems.append(Problem(str(path), f"{e}; record skipped"))
    return out, problems


def find_files(paths: list[Path]) -> list[Path]:
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.json") if q.is_file())
        else:
            out.append(p)
    return out
