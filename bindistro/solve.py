"""libsolv (python3-solv) pools built from stored package metadata: no package file is read.

ipk and deb use Debian semantics, rpm uses RPM semantics. libsolv's arch policies know only
mainstream arches, so every non-noarch arch of one machine's feed set is given one stand-in arch
(the feeds of one machine are solved together; arch priority plays no part in these checks).
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
import tempfile

import solv

from .model import Artifact

DEB_FIELDS = ("Package", "Version", "Architecture", "Pre-Depends", "Depends", "Recommends", "Provides",
              "Replaces", "Conflicts", "Breaks")
_ARCH = {"rpm": ("x86_64", "noarch"), "ipk": ("amd64", "all"), "deb": ("amd64", "all")}


class Pool:
    def __init__(self, fmt: str):
        self.fmt = fmt
        self.pool = solv.Pool()
        self.pool.setdisttype(solv.Pool.DISTTYPE_RPM if fmt == "rpm" else solv.Pool.DISTTYPE_DEB)
        self.pool.setarch(_ARCH[fmt][0])
        self.by_key: dict[tuple[str, str], list] = {}
        self._solvers = []   # python-solv segfaults if a Solver is collected while its results are used
        self._stale = False  # an installed repo was freed: whatprovides must be rebuilt before solving

    def add(self, name: str, arts: list[Artifact], installed: bool = False):
        repo = self.pool.add_repo(name)
        self.fill(repo, arts)
        if installed:
            self.pool.installed = repo
        self._index(repo)
        return repo

    def fill(self, repo, arts: list[Artifact]) -> None:
        """Add `arts` to `repo` (libsolv reads the formats' own index text, not Python objects)."""
        with tempfile.NamedTemporaryFile("w", delete=False, suffix=".xml" if self.fmt == "rpm" else "") as f:
            f.write(self._text(arts))
            path = f.name
        try:
            fp = solv.xfopen(path)
            if self.fmt == "rpm":
                repo.add_rpmmd(fp, None)
            else:
                repo.add_debpackages(fp)
            fp.close()
        finally:
            os.unlink(path)

    def add_solv(self, name: str, path=None) -> object:
        """A repo of the solvables in libsolv's own file `path` (Pool.write's; None: empty).
        OSError: it is missing or not libsolv's."""
        repo = self.pool.add_repo(name)
        if path is not None:
            fp = solv.xfopen(str(path))
            ok = fp is not None and repo.add_solv(fp)
            if fp is not None:
                fp.close()
            if not ok:
                repo.free(True)
                raise OSError(f"{path}: missing or not a libsolv file")
        self._index(repo)
        return repo

    @staticmethod
    def write(repo, path) -> None:
        fp = solv.xfopen(str(path), "w")
        if fp is None or not repo.write(fp):
            raise OSError(f"{path}: cannot write")
        fp.close()

    def _index(self, repo) -> None:
        for s in repo.solvables:
            self.by_key.setdefault((s.name, s.evr), []).append(s)

    def _text(self, arts: list[Artifact]) -> str:
        own, noarch = _ARCH[self.fmt]
        if self.fmt == "rpm":
            chunks = []
            for a in arts:
                primary = a.meta["xml"][0]
                chunks.append(re.sub(r"<arch>(?!noarch<)[^<]+</arch>", f"<arch>{own}</arch>", primary, count=1))
            return ('<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" '
                    f'xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="{len(chunks)}">\n'
                    + "".join(chunks) + "</metadata>\n")
        out = []
        for a in arts:
            f = {k.lower(): v for k, v in a.meta.items()}
            lines = []
            for key in DEB_FIELDS:
                v = f.get(key.lower())
                if key == "Architecture":
                    v = noarch if v == "all" else own
                if v:
                    lines.append(f"{key}: {str(v).splitlines()[0] if key != 'Depends' else ' '.join(str(v).split())}")
            out.append("\n".join(lines) + "\n\n")
        return "".join(out)

    def ready(self) -> None:
        self.pool.addfileprovides()
        self.pool.createwhatprovides()

    def _fresh(self) -> None:
        if self._stale:
            self.pool.createwhatprovides()
            self._stale = False

    def solve(self, jobs) -> tuple[list[str], object]:
        self._fresh()
        solver = self.pool.Solver()
        self._solvers.append(solver)
        problems = solver.solve(jobs)
        if problems:
            return [self.explain(p) for p in problems], None
        return [], solver.transaction()

    def explain(self, problem) -> str:
        rules = problem.findallproblemrules()
        chain = [r.info().problemstr() for r in rules]
        text = "; ".join(dict.fromkeys(chain)) or str(problem)
        # the stand-in arch means nothing to the reader
        return re.sub(rf"\.{_ARCH[self.fmt][0]}\b", "", text)

    def installable(self, sols: list) -> dict[int, list[str]]:
        """solvable id -> the problems installing it alone meets, for each of `sols` that cannot be
        installed. One weak job for all first (a weak job that cannot be met is dropped, not an
        error); only the ones it dropped are solved one by one, for their own explanation."""
        self._fresh()
        solver = self.pool.Solver()
        self._solvers.append(solver)
        flags = solv.Job.SOLVER_SOLVABLE | solv.Job.SOLVER_INSTALL | solv.Job.SOLVER_WEAK
        solver.solve([self.pool.Job(flags, s.id) for s in sols])
        got = {s.id for s in solver.transaction().newsolvables()}
        out = {}
        for s in sols:
            if s.id not in got:
                problems, _ = self.solve([self.install_job(s)])
                if problems:
                    out[s.id] = problems
        return out

    @contextmanager
    def installed(self, arts: list[Artifact]):
        """The pool with `arts` as the installed system, for the body only (the feeds stay loaded)."""
        repo = self.add("installed", arts, installed=True)
        if self.fmt == "rpm":       # file dependencies (/bin/sh) exist in rpm only
            self.pool.addfileprovides()
        self.pool.createwhatprovides()
        try:
            yield repo
        finally:
            self.pool.installed = None
            for s in repo.solvables:
                self.by_key[(s.name, s.evr)] = [x for x in self.by_key.get((s.name, s.evr), []) if x.repo != repo]
            repo.free(False)
            self._stale = True      # the next solve re-indexes (the next installed() does anyway)

    def install_job(self, s):
        return self.pool.Job(solv.Job.SOLVER_SOLVABLE | solv.Job.SOLVER_INSTALL, s.id)

    def upgrade_all_job(self):
        return self.pool.Job(solv.Job.SOLVER_SOLVABLE_ALL | solv.Job.SOLVER_UPDATE | solv.Job.SOLVER_FORCEBEST, 0)
