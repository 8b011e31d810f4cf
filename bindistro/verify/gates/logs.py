"""Console logs: ERROR / WARNING / QA Issue lines and failed tasks, with counts per kind."""
from __future__ import annotations

import re

from ... import model
from ..finding import Finding

NAME = "logs"
MAX_EACH = 20   # findings per kind and log; the counts say the rest
FAILED = re.compile(r"^(ERROR: Task .* failed|Summary: \d+ tasks? failed)")


def run(ctx) -> list[Finding]:
    out = []
    logs = [a for a in ctx.artifacts if a.kind == model.LOG]
    if not logs:
        return [Finding("warning", NAME, "logs.missing", "-", "no console log in the candidate: the build cannot be inspected")]
    for a in logs:
        text = ctx.store.objects.path(a.sha256).read_text(errors="replace")
        counts = {"error": 0, "warning": 0, "qa": 0, "failed_tasks": 0}
        for n, line in enumerate(text.splitlines(), 1):
            if FAILED.match(line):
                kind, sev = "failed_tasks", "error"
            elif "QA Issue" in line:
                kind, sev = "qa", "warning"
            elif line.startswith("ERROR:"):
                kind, sev = "error", "error"
            elif line.startswith("WARNING:"):
                kind, sev = "warning", "warning"
            else:
                continue
            counts[kind] += 1
            if counts[kind] <= MAX_EACH:
                out.append(Finding(sev, NAME, "logs.line", a.path, f"line {n}: {line.strip()[:200]}", {"kind": kind}, scope=f'{kind}/{n}'))
        out.append(Finding("info", NAME, "logs.counts", a.path, "counts: " + ", ".join(f"{k} {v}" for k, v in counts.items()), counts))
    return out
