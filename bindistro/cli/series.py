"""Series: the branches of the product (`bindistro series add`, `bindistro series list`)."""
from __future__ import annotations

import click

from .. import spec as specmod
from .base import Project, emit, from_build_opt, json_opt, machines_from_build, out


@click.group("series")
def series_group():
    """Branches of the product: each with its own releases, cumulative feeds and end of life."""


@series_group.command("add")
@click.argument("name")
@click.option("--version", help="The series' product version (release names use it; default: the spec's).")
@click.option("--first", metavar="NAME", help="A spec without series: the name of the line of releases it has "
              "(it keeps feeds/ and every published URL).")
@from_build_opt        # a branch may rename feeds: another tune, another SoC family
@json_opt
@click.pass_obj
def add(proj: Project, name, version, first, from_build, as_json):
    """Open a new series (newest last). Its feeds go to feeds/NAME/; devices move to it with
    `device-config --series NAME` and an upgrade."""
    machines = machines_from_build(from_build) if from_build else None
    x = specmod.add_series(proj.spec, name, version, first, machines)
    emit(as_json, {"series": x.name, "feeds": x.feed_root, "spec": str(proj.spec.path),
                   "machines": {m.name: m.archs for m in x.machines} if x.machines else None},
         lambda r: out.print(f"series {r['series']} added: its feeds go to {r['feeds']}/; stage its builds with "
                             f"--series {r['series']}"))


@series_group.command("list")
@json_opt
@click.pass_obj
def list_cmd(proj: Project, as_json):
    """The series, oldest first, with their releases, feeds, end of life and upgrade paths."""
    from .. import series as S
    sp = proj.spec
    rels = S.releases(sp, proj.store)
    data = [dict(d, releases=[r.name for r in rels if r.series == d["series"]]) for d in S.described(sp)]

    def human(data):
        from rich.table import Table      # (only for a human: --json never imports rich)
        t = Table("series", "feeds", "releases", "eol", "supported", "devices move from")
        for d in data:
            t.add_row(d["series"], d["feeds"], ", ".join(d["releases"]) or "-", d["eol"] or "-",
                      "yes" if d["supported"] else "no", ", ".join(d["upgrade_from"]) or "-")
        out.print(t)
    emit(as_json, data, human)


COMMANDS = [series_group]
