"""Layer sources and their commits: read from kas files (+ .lock.yml), setup-layers.json (written by
`bitbake-layers create-layers-setup`) or buildhistory's metadata-revs; written back as
setup-layers.json and a kas lock file that reproduce a release."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from . import kas

COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Layer:
    name: str
    url: str | None
    commit: str | None        # None when not pinned
    branch: str | None = None
    path: str | None = None

    @property
    def pinned(self) -> bool:
        return bool(self.commit and COMMIT.match(self.commit))


def from_setup_layers(path: Path) -> list[Layer]:
    data = json.loads(path.read_text())
    out = []
    for name, src in (data.get("sources") or {}).items():
        g = src.get("git-remote") or {}
        remotes = g.get("remotes") or {}
        url = next((r.get("uri") for r in remotes.values() if r.get("uri")), None)
        rev = g.get("rev")
        out.append(Layer(name, url, rev if rev and COMMIT.match(rev) else None,
                         g.get("branch") if g.get("branch") not in (None, "HEAD") else (rev if rev and not COMMIT.match(rev) else None),
                         src.get("path")))
    return out


def from_kas(path: Path) -> list[Layer]:
    return [Layer(r.name, r.url, r.commit, r.branch, r.name) for r in kas.load(path).repos if r.url]


def from_metadata_revs(text: str) -> list[Layer]:
    """`meta = branch:commit` lines of buildhistory's metadata-revs (no URLs there)."""
    out = []
    for line in text.splitlines():
        name, sep, rest = line.partition("=")
        if not sep:
            continue
        branch, _, commit = rest.strip().split(" ")[0].partition(":")
        out.append(Layer(name.strip(), None, commit if COMMIT.match(commit) else None, branch or None, name.strip()))
    return out


def load(path: Path) -> list[Layer]:
    if path.suffix == ".json":
        return from_setup_layers(path)
    if path.suffix in (".yml", ".yaml"):
        return from_kas(path)
    raise ValueError(f"{path}: not a kas file (.yml) or setup-layers.json")


def to_setup_layers(layers: list[Layer]) -> str:
    sources = {}
    for l in layers:
        remote = {"rev": l.commit or "", "describe": ""}
        if l.branch:
            remote["branch"] = l.branch
        if l.url:
            remote["remotes"] = {"origin": {"uri": l.url}}
        sources[l.name] = {"git-remote": remote, "path": l.path or l.name}
    return json.dumps({"sources": sources, "version": "1.0"}, indent=4, sort_keys=True) + "\n"


def to_kas_lock(layers: list[Layer]) -> str:
    repos = {l.name: {"commit": l.commit} for l in layers if l.commit}
    return yaml.safe_dump({"header": {"version": 14}, "overrides": {"repos": repos}}, sort_keys=True)


def to_json(layers: list[Layer]) -> str:
    return json.dumps([asdict(l) for l in layers], indent=1) + "\n"


def from_json(text: str) -> list[Layer]:
    return [Layer(**d) for d in json.loads(text)]
