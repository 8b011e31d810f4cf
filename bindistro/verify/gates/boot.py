"""Boot each staged image that has a qemuboot.conf under QEMU and run the spec's console checks."""
from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

from ... import model
from ...boot import BootResult, boot
from ...errors import BindistroError
from ..finding import Finding

NAME = "boot"
SPLIT = ("machine",)
COST = 15


def run(ctx) -> list[Finding]:
    cfg = ctx.spec.boot
    if not cfg.enabled:
        return [Finding("info", NAME, "boot.disabled", "-", "boot test disabled in the spec (boot.enabled: false)")]
    machines = {m.name for m in ctx.machines()} if ctx.only.get("machine") else None
    images = [a for a in ctx.artifacts if a.kind == model.IMAGE
              and (machines is None or (a.meta.get("machine") or a.arch) in machines)]
    confs = [a for a in images if a.name.endswith(".qemuboot.conf")]
    if not images:
        return [Finding("info", NAME, "boot.no-images", "-", "no images in the candidate: nothing to boot")]
    if not confs:
        return [Finding("warning", NAME, "boot.no-qemuboot", "-", "no *.qemuboot.conf among the images (IMAGE_CLASSES += \"qemuboot\"): "
                        "no image was boot-tested")]
    work = ctx.work / f"boot-{ctx.candidate}"
    shutil.rmtree(work, ignore_errors=True)
    jobs = []
    for conf in confs:
        machine = conf.meta.get("machine") or conf.arch or "-"
        d = work / machine
        d.mkdir(parents=True, exist_ok=True)
        # the deploy dir as the build had it: runqemu looks for the files beside the conf
        for a in images:
            if (a.meta.get("machine") or a.arch) == machine and not (d / a.name).exists():
                os.link(ctx.store.objects.path(a.sha256), d / a.name)
        jobs.append((conf, d / conf.name))
    try:
        # two boots at a time: TCG keeps one host core busy per guest CPU
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda j: _boot(j[1], cfg), jobs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = []
    for (conf, _), res in zip(jobs, results):
        out += findings(ctx, conf.path, res)
    if not cfg.pm_smoke:
        out.append(Finding("info", NAME, "boot.pm-smoke-off", "-", "package-manager smoke test not configured (boot.pm_smoke): skipped"))
    return out


def _boot(conf, cfg) -> BootResult:
    try:
        return boot(conf, cfg)
    except BindistroError as e:
        return BootResult(conf.parent.name, str(conf), "error", str(e).splitlines()[0])


def findings(ctx, subject: str, res: BootResult) -> list[Finding]:
    sha = ctx.store.objects.add_bytes(res.console.encode()) if res.console else None
    details = res.to_dict()
    details["console_log"] = str(ctx.store.objects.path(sha)) if sha else None
    details["console_sha256"] = sha
    pt = ""
    if res.ptests is not None:
        counts = {s: sum(1 for v in res.ptests.values() if v == s) for s in ("PASS", "FAIL", "SKIP")}
        pt = ", ptests " + " ".join(f"{n} {s}" for s, n in counts.items())
    if res.ok:
        return [Finding("info", NAME, "boot.passed", subject, f"{res.machine}: booted, marker after {res.seconds_to_marker} s, "
                        f"{len(res.checks)} checks passed" + pt + (", powered off" if res.powered_off else ", stopped (no poweroff)"),
                        details)]
    last = res.last_lines[-1] if res.last_lines else ""
    what = {"panic": "kernel panic", "timeout": "timeout", "check-failed": "check failed"}.get(res.status, "boot failed")
    msg = f"{res.machine}: {what}: {res.reason}"
    if res.status == "timeout" and last:
        msg += f"; last console line: {last[:160]}"
    return [Finding("error", NAME, "boot.failed", subject, msg, details)]
