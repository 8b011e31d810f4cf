"""Series: several branches of one product in one store and one publish tree.

A candidate belongs to the series it was staged for (NULL in the store: the spec's first series,
which owns everything from before series). Each series has its own release numbering, cumulative
feeds (under its `feed_root`) and end of life; every step works on `Spec.in_series(...)`, a view of
the spec as that series sees it, so the steps themselves need not know about series.
"""
from __future__ import annotations

from .errors import BindistroError
from .model import Artifact, Release
from .spec import Spec
from .store import Store


def of_candidate(spec: Spec, store: Store, cid: int) -> Spec:
    """The spec as the series of candidate `cid` sees it."""
    row = store.db.candidate_row(cid)
    if not row:
        raise BindistroError(f"candidate {cid}: no such candidate (see `bindistro show`)")
    return spec.in_series(row.series)


def name_of(spec: Spec, series: str | None) -> str | None:
    """A store row's series as the spec names it (None: the first series, when there are series)."""
    return series or (spec.series[0].name if spec.series else None)


def releases(spec: Spec, store: Store, series: str | None | bool = False) -> list[Release]:
    """Every release (`series` False) or those of one series, oldest first, series names resolved."""
    out = store.db.releases()
    for r in out:
        r.series = name_of(spec, r.series)
        x = spec.get_series(r.series) if r.series else None
        if x is not None and x.eol:         # a release is supported until its series' end of life
            r.eol = x.eol.isoformat()
    return out if series is False else [r for r in out if r.series == name_of(spec, series)]


def described(spec: Spec) -> list[dict]:
    """Each series as releases.json and `series list` show it: feeds, end of life, support, and the
    older series whose devices move to it."""
    w = spec.whole
    return [{"series": x.name, "version": x.version or w.version, "feeds": x.feed_root,
             "eol": x.eol.isoformat() if x.eol else None, "supported": x.supported,
             "upgrade_from": w.in_series(x.name).upgrade_from()} for x in w.series]


def history_releases(spec: Spec, store: Store) -> list[Release]:
    """The releases whose packages history() holds: every release, or those of this view's series."""
    return store.db.releases() if not spec.series else releases(spec, store, spec.current)


def history(spec: Spec, store: Store, control: bool = True) -> list[Artifact]:
    """Every package the releases of this view's series published, once: its cumulative feeds
    (`control`: with control data)."""
    if not spec.series:
        return store.db.released_packages(control=control)
    return store.db.released_packages([r.candidate for r in history_releases(spec, store)], control)


def latest(spec: Spec, store: Store, series: str | None, before: int | None = None) -> Release | None:
    """The newest release of `series` (None: the first, or the only line of releases; published
    before candidate `before`, when given)."""
    rels = [r for r in releases(spec, store, series) if before is None or r.candidate < before]
    return rels[-1] if rels else None

