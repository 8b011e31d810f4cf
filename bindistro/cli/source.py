"""From binary back to source: restore a release into a build dir, bundle it, build."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import BindistroError
from .base import Project, emit, json_opt, out, series_opt


def publish_dir(proj: Project, given: Path | None) -> Path:
    if given:
        return given
    try:
        return proj.spec.publish_path
    except BindistroError:
        raise click.UsageError("no project here: pass --from PUBLISH_DIR") from None

@click.command()
@click.argument("build_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--release", "rel", help="Release to restore (default: the last one).")
@click.option("--from", "source", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Published tree to restore from (default: the project's publish dir).")
@click.option("--url", help="URL devices and builds reach the published tree at (default: file:// of --from).")
@click.option("--hashserv-upstream", help="BB_HASHSERVE_UPSTREAM for a public hash-equivalence server.")
@click.option("--layers-dir", type=click.Path(file_okay=False, path_type=Path), help="Where layer checkouts are (default: BUILD_DIR/..).")
@click.option("--keyring", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Public key(s) the release manifest must be signed with (default: the project's keys).")
@click.option("--insecure", is_flag=True, help="Restore from an unsigned or badly signed tree (says so).")
@click.option("--custom", "custom", metavar="NAME", help="A custom build: the revision suffix NAME for official recipes it changes.")
@series_opt
@json_opt
@click.pass_obj
def restore(proj: Project, build_dir, rel, source, url, hashserv_upstream, layers_dir, keyring, insecure, custom, series,
            as_json):
    """Restore a release into a build directory: PR values, hash equivalence, sstate mirror, layers.
    The release manifest's signature is checked first; files are used only as the manifest lists them."""
    from ..restore import Trust, project_trust
    from ..restore import restore as do_restore
    spec = None
    try:
        spec = proj.spec
    except BindistroError:
        pass
    if url is None and source is None and spec is not None:
        url = spec.publish_url
    if series is not None:
        if spec is None:
            raise BindistroError("--series needs the project's spec (run in the project, or pass -C DIR)")
        from .. import series as S
        last = S.latest(spec, proj.store, spec.get_series(series).name)
        rel = rel or (last.name if last else None)
    if spec is not None and source is None and rel is None and not custom and (
            series is not None or not proj.store.db.releases()):
        # nothing released yet (in the series): the feed settings alone, so the first images are preconfigured
        from ..restore import configure_feeds
        r = configure_feeds(spec.choose_series(series), proj.store, build_dir)
        emit(as_json, r, lambda r: out.print(f"no release yet: wrote the feed settings and keys for the images into {r['conf']}"))
        return
    publish = publish_dir(proj, source)
    if keyring:
        trust = Trust([keyring.read_bytes()], insecure)
    elif spec is not None:
        trust = project_trust(spec, own_tree=publish.resolve() == spec.publish_path.resolve(), insecure=insecure)
    else:
        trust = Trust(insecure=insecure)
    r = do_restore(build_dir, publish, rel, url, hashserv_upstream, layers_dir, trust, custom)

    def human(r):
        out.print(f"restored release {r['release']} into {r['build']}: {r['conf']}")
        if "prserv" in r:
            out.print(f"  PR database: {r['prserv']['rows']} entries, {r['prserv']['added']} added, {r['prserv']['raised']} raised")
        if "hashserv" in r:
            h = r["hashserv"]
            out.print(f"  hash equivalence: {h['rows_added']} rows added to unihashes_{h['schema']}"
                      f" ({h['detected']})", markup=False)
        for l in r.get("layers", []):
            out.print(f"  layer {l['layer']}: {l['status']}")
    emit(as_json, r, human)

@click.command()
@click.argument("release_name", metavar="RELEASE")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--from", "source", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Published tree (default: the project's publish dir).")
@click.option("--custom", "custom", metavar="NAME", default="custom", show_default=True,
              help="The revision suffix of the user's rebuilt official recipes.")
@json_opt
@click.pass_obj
def bundle(proj: Project, release_name, out_dir, source, custom, as_json):
    """What a user needs to rebuild a release from source and publish their own feed."""
    from ..bundle import write_bundle
    url = None
    try:
        url = proj.spec.publish_url
    except BindistroError:
        pass
    r = write_bundle(publish_dir(proj, source), release_name, out_dir, url, custom)
    emit(as_json, r, lambda r: out.print(f"bundle of release {r['release']} in {r['out']}: {', '.join(r['files'])}"))

@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--kas", "kas_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Build with `kas build FILE`.")
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build"), show_default=True)
@click.option("--stage", "do_stage", is_flag=True, help="Stage the build when it succeeds.")
@click.option("--dry-run", is_flag=True, help="Print what would run.")
@click.argument("targets", nargs=-1)
@series_opt
@json_opt
@click.pass_obj
def build(proj: Project, kas_file, build_dir, do_stage, dry_run, targets, series, as_json):
    """Restore the last release (of the series), then run kas or bitbake with a captured console log."""
    from ..build import run_build
    r = run_build(proj.spec.choose_series(series), proj.store, build_dir, kas_file, list(targets), do_stage, dry_run)

    def human(r):
        out.print(("would run: " if dry_run else "ran: ") + " ".join(r["command"]), markup=False)
        if r.get("log"):
            out.print(f"console log: {r['log']}")
        if r.get("candidate"):
            out.print(f"staged as candidate {r['candidate']}")
        elif r.get("returncode") == 0 and not dry_run:
            out.print(f"next: bindistro stage {r['build_dir']}")
    emit(as_json, r, human)


COMMANDS = [restore, bundle, build]
