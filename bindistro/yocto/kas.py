"""kas project files (and their .lock.yml): repos, commits, conf headers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass
class Repo:
    name: str
    url: str | None
    commit: str | None
    branch: str | None


@dataclass
class KasProject:
    path: Path
    repos: list[Repo]
    local_conf: dict[str, str]
    bblayers_conf: dict[str, str]


def load(path: Path) -> KasProject:
    data = yaml.safe_load(path.read_text()) or {}
    lock = path.with_name(path.stem + ".lock.yml")
    pinned = {}
    if lock.exists():
        ov = (yaml.safe_load(lock.read_text()) or {}).get("overrides", {}).get("repos", {}) or {}
        pinned = {k: (v or {}).get("commit") for k, v in ov.items()}
    repos = []
    for name, r in (data.get("repos") or {}).items():
        r = r or {}
        commit = r.get("commit") or pinned.get(name)
        if not commit and r.get("refspec") and len(str(r["refspec"])) == 40:
            commit = r["refspec"]      # old kas: refspec held the commit
        repos.append(Repo(name, r.get("url"), commit, r.get("branch")))
    return KasProject(path, repos, dict(data.get("local_conf_header") or {}),
                      dict(data.get("bblayers_conf_header") or {}))
