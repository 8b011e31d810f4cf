"""sstate signatures, like SSTATE_VERIFY_SIG / SSTATE_VALID_SIGS: each object's detached `.sig`
must verify with one of the trusted keys (keys.sstate in the spec, else the release keys)."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from ... import model
from ...keys import public_gpg
from ..finding import Finding

NAME = "sstate"


def valid_signer(home: Path, sig: Path, data: Path) -> str | None:
    r = subprocess.run(public_gpg(home) + ["--status-fd", "1", "--verify", str(sig), str(data)],
                       capture_output=True, text=True)
    return next((l.split()[2] for l in r.stdout.splitlines() if l.startswith("[GNUPG:] VALIDSIG")), None)


def run(ctx) -> list[Finding]:
    objs = {a.path: a for a in ctx.artifacts if a.kind == model.SSTATE}
    data = {p: a for p, a in objs.items() if not p.endswith((".sig", ".siginfo"))}
    if not data:
        return []
    trusted = ctx.spec.sstate_keys or [k for k in [ctx.spec.signing_key, *ctx.spec.previous_keys] if k]
    sev = "error" if ctx.spec.require_signed_sstate else "warning"
    unsigned = [p for p in data if p + ".sig" not in objs]
    out = []
    if unsigned:
        out.append(Finding(sev, NAME, "sstate.unsigned", "sstate-cache", f"{len(unsigned)} of {len(data)} sstate objects carry no .sig",
                           {"examples": unsigned[:10], "required": ctx.spec.require_signed_sstate}))
    signed = [p for p in data if p + ".sig" in objs]
    if signed and not trusted:
        return out + [Finding(sev, NAME, "sstate.no-trusted-key", "sstate-cache", "sstate objects are signed but no key is trusted (keys.sstate)")]
    home = ctx.store.dir / "gnupg"
    bad = 0
    with tempfile.TemporaryDirectory(dir=ctx.work) as tmp:
        for p in signed:
            d, s = Path(tmp) / "data", Path(tmp) / "data.sig"
            d.write_bytes(ctx.store.objects.path(data[p].sha256).read_bytes())
            s.write_bytes(ctx.store.objects.path(objs[p + ".sig"].sha256).read_bytes())
            who = valid_signer(home, s, d) if home.exists() else None
            if who not in trusted:
                bad += 1
                if bad <= 20:
                    out.append(Finding("error", NAME, "sstate.bad-signature", p.rsplit("/", 1)[-1], "bad sstate signature" if who is None
                                       else f"sstate signed by untrusted key {who}", scope=p))
    if signed and not bad:
        out.append(Finding("info", NAME, "sstate.verified", "sstate-cache", f"{len(signed)} signed sstate objects verify"))
    return out
