"""SAMPLE data: sample builds and the demo (the bindistro_sample package, loaded only here)."""
from __future__ import annotations

from pathlib import Path

import click

from ..keys import ALGORITHMS
from .base import emit, json_opt, out


@click.command("sample-build")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--release", "rel", type=click.IntRange(1), required=True, help="Release number to generate.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--inject", multiple=True, metavar="DEFECT",
              help="Put a defect into this release on purpose (repeatable); see `--inject help`.")
@click.option("--formats", default="ipk,rpm,deb", show_default=True, help="Package formats to build.")
@click.option("--packages", type=click.IntRange(1, 200_000), default=None, metavar="N",
              help="World-sized: grow each machine's feeds to about N package names (e.g. 20000).")
@click.option("--series", metavar="NAME", help="A next branch of the distro (bigger version jumps, a soname bump, "
              "a package merged into another), forked from the first series' release 3.")
@json_opt
def sample_build(out_dir, rel, seed, inject, formats, packages, series, as_json):
    """Write a Yocto-shaped SAMPLE build directory with real packages (sample data)."""
    from bindistro_sample.build import generate
    from bindistro_sample.defects import DEFECTS
    from bindistro_sample.recipes import summary
    if "help" in inject:
        click.echo("\n".join(f"{k:<28} {v}" for k, v in DEFECTS.items()))
        return
    for d in inject:
        if d not in DEFECTS:
            raise click.UsageError(f"unknown defect {d!r} (known: {', '.join(DEFECTS)})")
    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    for f in fmts:
        if f not in ("ipk", "rpm", "deb"):
            raise click.UsageError(f"unknown format {f!r}")
    r = generate(out_dir, rel, seed, inject=list(inject), formats=fmts, packages=packages, series=series)
    emit(as_json, r, lambda r: out.print(
        f"SAMPLE DATA: release {r['release']}" + (f" of series {r['series']}" if r["series"] else "") + f" (seed {r['seed']}) in {r['out']}: {r['recipes']} recipes, "
        f"{r['packages']} packages; changes: " + summary(r["changes"])))


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--releases", "count", type=click.IntRange(1), default=3, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--boot/--no-boot", default=True, show_default=True,
              help="Boot gate (QEMU boots of each image, and of upgraded systems) in the demo's verify.")
@click.option("--packages", type=click.IntRange(1, 200_000), default=None, metavar="N",
              help="World-sized: about N package names per machine's feeds (see sample-build).")
@click.option("--database", metavar="URL", help="Metadata in PostgreSQL (as init --database).")
@click.option("--objects", metavar="s3://BUCKET/PREFIX", help="Store objects in S3 (state.objects).")
@click.option("--target", metavar="s3://BUCKET/PREFIX", help="Also publish to S3 (publish.target).")
@click.option("--series/--one-series", default=True, show_default=True,
              help="Also open the next series (its first release) and publish its next build to the nightly channel.")
@click.option("--key-algorithm", type=click.Choice(ALGORITHMS), default=ALGORITHMS[0], show_default=True,
              help="The demo key's type (as keys generate --algorithm).")
@json_opt
def demo(out_dir, count, seed, boot, packages, database, objects, target, series, key_algorithm, as_json):
    """Sample builds of releases 1..N, each staged and released; leaves OUT/publish browsable."""
    from bindistro_sample.demo import run
    r = run(out_dir, count, seed, boot=boot, packages=packages, database=database, objects=objects, target=target,
            series=series, key_algorithm=key_algorithm)

    def human(r):
        from rich.table import Table      # (only for a human: --json never imports rich)
        t = Table("release", "series", "candidate", "packages", "new files", "changes", title=f"SAMPLE distro in {r['out']}")
        for x in r["releases"]:
            t.add_row(x["release"], x.get("series") or "-", str(x["candidate"]), str(x["packages"]), str(x["new_files"]),
                      x["changes"])
        out.print(t)
        if r.get("channel"):
            c = r["channel"]
            out.print(f"channel {c['channel']} ({c['path']}/, not a release): candidate {c['candidate']}")
        out.print(f"publish tree: {r['publish']}")
    emit(as_json, r, human)


COMMANDS = [sample_build, demo]
