"""Match SBOM components against vulnerability records.

Order of evidence for one CVE and one component: Yocto's own VEX in the SBOM (fixed / not affected),
then the record's CPE configurations with version ranges, then -- for records NVD has not analysed yet
(no configurations) -- the product named in the description. Versions compare with bitbake's own
order (bb.utils.vercmp_string) after dropping the epoch and the `+git...` suffix, as cve-check does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .records import Record
from .sbom import Component, Sbom, Vex

AWAITING = {"Received", "Awaiting Analysis", "Undergoing Analysis", "Reserved"}

# How advisories name products whose CPE product is terse. Products not listed are searched as a
# whole word (names shorter than 4 characters are not searched: too many false hits).
ALIASES = {
    "glibc": ["GNU C Library", "glibc"], "linux_kernel": ["Linux kernel"], "linux": [],
    "busybox": ["BusyBox"], "tar": ["GNU Tar"], "xz": ["XZ Utils", "liblzma"], "openssl": ["OpenSSL"],
    "zlib": ["zlib"], "util-linux": ["util-linux"], "curl": ["curl", "libcurl"], "openssh": ["OpenSSH"],
    "sqlite": ["SQLite"], "bash": ["GNU Bash"], "python": ["CPython"], "dbus": ["D-Bus"], "expat": ["libexpat"],
    "binutils": ["GNU Binutils"], "gcc": ["GNU Compiler Collection"], "systemd": ["systemd"],
    "e2fsprogs": ["e2fsprogs"], "shadow": ["shadow-utils"], "ncurses": ["ncurses"], "libxml2": ["libxml2"],
}


@dataclass
class CveStatus:
    """Where one CVE stands for one package group of an SBOM: domain data a scan keeps, not a problem
    (problems are errors.Finding)."""
    cve: str
    package: str                   # first binary package of the group
    version: str
    status: str                    # affected | under_investigation | fixed | not_affected
    reason: str
    packages: list[str] = field(default_factory=list)
    product: str = ""
    severity: str = "unknown"
    score: float | None = None
    evidence: dict = field(default_factory=dict)
    summary: str = ""              # the record's description

    @property
    def key(self) -> str:
        return f"{self.cve}|{self.package}"

    def to_dict(self) -> dict:
        return {"cve": self.cve, "package": self.package, "version": self.version, "status": self.status,
                "reason": self.reason, "packages": self.packages, "product": self.product,
                "severity": self.severity, "score": self.score, "evidence": self.evidence, "summary": self.summary}


def norm_version(v: str) -> str:
    v = re.sub(r"^\d+:", "", v or "")
    return re.split(r"\+git|\+gitAUTOINC|\+", v, maxsplit=1)[0]


def vercmp(a: str, b: str) -> int:
    import bb.utils     # 70 ms to import: only a scan needs it, not every command line
    return bb.utils.vercmp_string(norm_version(a), norm_version(b))


def split_cpe(cpe: str) -> list[str]:
    parts = re.split(r"(?<!\\):", cpe)
    return parts + ["*"] * (13 - len(parts))


@dataclass(frozen=True)
class Product:
    vendor: str
    product: str
    version: str


def products_of(c: Component) -> list[Product]:
    out = []
    for cpe in c.cpes:
        p = split_cpe(cpe)
        version = p[5] if p[5] not in ("*", "-", "") else norm_version(c.version)
        out.append(Product(p[3], p[4], version))
    return out


def cpe_matches(prod: Product, m: dict) -> bool:
    """One cpeMatch entry of a configuration against one SBOM product."""
    c = split_cpe(m.get("criteria", ""))
    if c[4] != prod.product:
        return False
    if prod.vendor not in ("*", "") and c[3] not in ("*", prod.vendor):
        return False        # a named vendor must match; `*` in the SBOM (CVE_PRODUCT without vendor) matches any
    if c[5] not in ("*", "-", ""):
        return vercmp(prod.version, c[5].replace("\\", "")) == 0
    v = prod.version
    if m.get("versionStartIncluding") and vercmp(v, m["versionStartIncluding"]) < 0:
        return False
    if m.get("versionStartExcluding") and vercmp(v, m["versionStartExcluding"]) <= 0:
        return False
    if m.get("versionEndIncluding") and vercmp(v, m["versionEndIncluding"]) > 0:
        return False
    if m.get("versionEndExcluding") and vercmp(v, m["versionEndExcluding"]) >= 0:
        return False
    return True     # `*` or `-` without bounds: every version (as cve-check treats them)


def _node(node: dict, prods: list[Product]) -> tuple[bool, list[tuple[Product, dict]]]:
    results = []
    for m in node.get("cpeMatch", []):
        hits = [p for p in prods if cpe_matches(p, m)]
        results.append((m, hits))
    if (node.get("operator") or "OR") == "AND":
        ok = all(h for _, h in results)
    else:
        ok = any(h for _, h in results)
    if node.get("negate"):
        return (not ok), []
    vulnerable = [(p, m) for m, hits in results if m.get("vulnerable") for p in hits] if ok else []
    return ok, vulnerable


def config_hits(rec: Record, prods: list[Product]) -> list[tuple[Product, dict]]:
    """The (product, cpeMatch) pairs that make the SBOM vulnerable under the record's configurations."""
    out = []
    for cfg in rec.configurations:
        evals = [_node(n, prods) for n in cfg.get("nodes", [])]
        if (cfg.get("operator") or "OR") == "AND":
            if evals and all(ok for ok, _ in evals):
                out += [h for _, hits in evals for h in hits]
        else:
            out += [h for ok, hits in evals if ok for h in hits]
    return out


def _range_text(m: dict) -> str:
    c = split_cpe(m["criteria"])
    ops = {"versionStartIncluding": ">=", "versionStartExcluding": ">", "versionEndIncluding": "<=",
           "versionEndExcluding": "<"}
    bounds = [f"{op} {m[k]}" for k, op in ops.items() if m.get(k)]
    if c[5] not in ("*", "-"):
        return f"{c[3]}:{c[4]} version {c[5]}"
    return f"{c[3]}:{c[4]} " + (", ".join(bounds) if bounds else "all versions")


def _names(product: str) -> list[str]:
    if product in ALIASES:
        return ALIASES[product]
    return [product] if len(product) >= 4 else []


def evaluate(sbom: Sbom, records: dict[str, Record]) -> list[CveStatus]:
    # components that carry the same CPEs and version are one finding (busybox, busybox-hwclock, ...)
    groups: dict[tuple, list[Component]] = {}
    for c in sbom.components:
        if c.cpes:
            groups.setdefault((tuple(sorted(c.cpes)), norm_version(c.version)), []).append(c)
    vex_by: dict[tuple[str, str], Vex] = {(v.cve, v.package): v for v in sbom.vex}
    by_product: dict[str, list[tuple[tuple, Product]]] = {}
    for key, comps in groups.items():
        for p in products_of(comps[0]):
            by_product.setdefault(p.product, []).append((key, p))
    out: dict[tuple[str, tuple], CveStatus] = {}

    def add(cve: str, key: tuple, status: str, reason: str, product: str, evidence: dict):
        comps = groups[key]
        rec = records.get(cve)
        f = CveStatus(cve, comps[0].name, comps[0].version, status, reason, [c.name for c in comps], product,
                    rec.severity if rec else "unknown", rec.score if rec else None, evidence,
                    rec.description if rec else "")
        out.setdefault((cve, key), f)

    # 1. Yocto's VEX wins: the build knew about the patch or the configuration
    for key, comps in groups.items():
        for c in comps:
            for (cve, pkg), v in vex_by.items():
                if pkg == c.name and (cve, key) not in out:
                    what = "fixed" if v.status == "fixed" else "not affected"
                    why = v.justification or v.statement
                    add(cve, key, v.status, f"SBOM VEX: {what}" + (f" ({why})" if why else ""),
                        products_of(c)[0].product if c.cpes else "", {"vex": v.__dict__})
    # 2. CPE configurations; 3. description of records NVD has not analysed yet
    for rec in records.values():
        if rec.status == "Rejected":
            continue
        try:
            _match_record(rec, by_product, add, out)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            # import checks every record's shape; one stored by an older bindistro may still be odd:
            # it must not stop the scan of every other record
            continue
    return sorted(out.values(), key=lambda f: (f.cve, f.package))


def _match_record(rec: Record, by_product: dict, add, out: dict) -> None:
    if rec.configurations:
        products = {split_cpe(m.get("criteria", ""))[4] for cfg in rec.configurations
                    for n in cfg.get("nodes", []) for m in n.get("cpeMatch", [])}
        cands = [kp for prod in products for kp in by_product.get(prod, [])]
        if not cands:
            return
        # platform nodes (AND configurations) may be satisfied by any SBOM product
        all_prods = [p for lst in by_product.values() for _, p in lst]
        hits = config_hits(rec, all_prods)
        for key, p in cands:
            mine = [m for hp, m in hits if hp == p]
            if mine and (rec.id, key) not in out:
                add(rec.id, key, "affected", f"CPE {_range_text(mine[0])} includes {p.product} {p.version}",
                    p.product, {"cpe": mine[0]["criteria"], "match": mine[0], "nvd_status": rec.status})
    else:
        for prod, lst in by_product.items():
            for name in _names(prod):
                if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", rec.description, re.I):
                    for key, p in lst:
                        if (rec.id, key) not in out:
                            add(rec.id, key, "under_investigation",
                                f"awaiting NVD analysis (status {rec.status or 'unknown'}, no CPE data); "
                                f"the description names {name!r}", p.product,
                                {"nvd_status": rec.status, "named": name})
                    break
