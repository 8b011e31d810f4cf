"""`.well-known/security.txt` (RFC 9116) and a SECURITY policy page, written from the spec into the
publish directory. Like releases.json they describe the present, so they are rewritten (in a new
generation of the tree) whenever the release list or EOL changes."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..spec import Spec
from ..store import Store
from ..store.objects import write_bytes_atomic


def security_txt(spec: Spec, today: dt.date) -> str:
    url = spec.publish_url.rstrip("/")
    expires = dt.datetime.combine(today + dt.timedelta(days=spec.security.expires_days), dt.time(),
                                  dt.timezone.utc)
    lines = [f"Contact: {spec.security.contact}",
             f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}"]
    for fpr in spec.release_keys:
        lines.append(f"Encryption: {url}/keys/{fpr}.asc")
    lines += ["Preferred-Languages: en",
              f"Canonical: {url}/.well-known/security.txt",
              f"Policy: {spec.security.policy_url or url + '/SECURITY.md'}"]
    return "\n".join(lines) + "\n"


def policy_md(spec: Spec, store: Store, today: dt.date, rels: list) -> str:
    from . import supported
    sup = {r.name for r in supported(spec, store, today, rels)}
    sla = spec.security.sla_days
    out = [f"# Security policy: {spec.product}", "",
           "## Reporting a vulnerability", "",
           f"Contact: {spec.security.contact}"]
    if spec.signing_key:
        out.append(f"PGP key: keys/{spec.signing_key}.asc (fingerprint {spec.signing_key})")
    out += ["", "Please do not open public issues for vulnerabilities. We acknowledge reports within "
            "3 working days.", "", "## Supported releases", "",
            "| release | published | status | end of life |", "|---|---|---|---|"]
    for r in reversed(rels):
        eol = r.eol or (spec.eol.isoformat() if spec.eol else "-")
        out.append(f"| {r.name} | {r.created[:10]} | {'supported' if r.name in sup else 'end of life'} | {eol[:10]} |")
    out += ["", f"Product end of life: {spec.eol.isoformat() if spec.eol else 'not announced'}. Published feeds "
            "stay available after end of life; they receive no more updates.", "",
            "## Fix times (from the day an issue is known to affect a supported release)", "",
            "| CVSS severity | fixed within |", "|---|---|"]
    for k in ("critical", "high", "medium", "low"):
        out.append(f"| {k} | {sla[k]} days |")
    out += ["", "Known issues, issues under investigation and fixed issues are listed per release in the "
            "VEX documents published with each release's security report.", ""]
    return "\n".join(out)


def write(spec: Spec, store: Store, root: Path, rels: list | None = None, today: dt.date | None = None) -> list[str]:
    """Into `root`, a generation of the publish tree being prepared (publish.py)."""
    today = today or dt.date.today()
    rels = store.db.releases() if rels is None else rels
    write_bytes_atomic(root / ".well-known" / "security.txt", security_txt(spec, today).encode())
    write_bytes_atomic(root / "SECURITY.md", policy_md(spec, store, today, rels).encode())
    return [".well-known/security.txt", "SECURITY.md"]
