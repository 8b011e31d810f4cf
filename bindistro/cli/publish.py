"""The publish tree and devices: fsck, eol, feeds, device configuration."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import BindistroError
from .base import Project, Reported, emit, err, json_opt, out, series_opt


@click.command()
@click.option("--store", "do_store", is_flag=True, help="Check the store (objects against their hashes, orphans).")
@click.option("--publish", "publish_to", is_flag=False, flag_value="", default=None, metavar="[DIR]",
              help="Check the publish tree (the project's, or DIR: then keys come from the tree itself).")
@click.option("--repair", is_flag=True, help="Put back damaged or missing published files from the store; "
              "remove orphan objects. Nothing else is changed.")
@click.option("--keyring", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Public key(s) the tree's signatures must verify with (default: the project's keys, "
                   "or for DIR the tree's own keys/, with a warning).")
@json_opt
@click.pass_obj
def fsck(proj: Project, do_store, publish_to, repair, keyring, as_json):
    """Check the store and the publish tree as devices and mirrors read them."""
    from .. import fsck as fsckmod
    both = not do_store and publish_to is None
    spec = store = None
    if publish_to and publish_to.startswith("s3://"):
        rep = _fsck_s3(publish_to, repair, keyring)
    else:
        if publish_to:
            root = Path(publish_to)
        else:
            spec, store = proj.spec, proj.store
            root = spec.publish_path
        rep = fsckmod.run(spec, store, root, do_store=both or do_store, do_publish=both or publish_to is not None,
                          repair=repair, keyring=keyring.read_bytes() if keyring else None)
    data = {"ok": not rep.errors, "checked": rep.checked, "repaired": rep.repaired,
            "problems": [{"path": p.path, "message": p.message, "severity": p.severity} for p in rep.problems]}

    def human(d):
        for p in rep.problems:
            err.print(f"bindistro: {p.severity}: {p}", markup=False)
        for r in rep.repaired:
            out.print(f"repaired {r}", markup=False)
        out.print(", ".join(f"{k}: {v}" for k, v in rep.checked.items()) + f"; {len(rep.errors)} errors", markup=False)
    emit(as_json, data, human)
    if rep.errors:
        raise Reported()

def _fsck_s3(target: str, repair: bool, keyring):
    """The bucket checked like a tree: downloaded into a temporary dir, problems named by their URL."""
    import tempfile
    from .. import fsck as fsckmod
    from .. import s3
    if repair:
        raise BindistroError("--repair works on local trees only: repair the tree, then `bindistro upload`")
    with tempfile.TemporaryDirectory(prefix="bindistro-fsck-s3-") as tmp:
        s3.download(target, Path(tmp))
        rep = fsckmod.run(None, None, Path(tmp), do_store=False, keyring=keyring.read_bytes() if keyring else None)
    base = target.rstrip("/")
    for p in rep.problems:
        p.subject, p.message = p.subject.replace(tmp, base), p.message.replace(tmp, base)
    return rep


@click.command()
@json_opt
@click.pass_obj
def upload(proj: Project, as_json):
    """Upload the publish tree to publish.target (s3://…): new objects first, indexes and signatures
    last; resumes an interrupted upload. Publishing commands do this themselves."""
    from .. import publish
    sp = proj.spec
    if not sp.publish_target:
        raise BindistroError(f"{sp.path}: publish.target is not set (s3://BUCKET/PREFIX)")
    with publish.lock(sp.state_path, "upload"), proj.store.db.lock("publish", "upload"):
        counts = publish.upload(sp, sp.publish_path)
    emit(as_json, {"target": sp.publish_target, **counts},
         lambda d: out.print(f"{d['target']}: {d['uploaded']} objects uploaded ({d['uploaded_bytes']} bytes), "
                             f"{d['rewritten']} indexes rewritten, {d['skipped']} already there", markup=False))


@click.command()
@click.option("--date", "when", type=click.DateTime(["%Y-%m-%d"]), help="EOL date (default: today).")
@click.option("--series", metavar="NAME", help="End of life of this series only (the product's otherwise).")
@json_opt
@click.pass_obj
def eol(proj: Project, when, series, as_json):
    """Declare end of life (of the product or a series): no more candidates or releases; published feeds stay."""
    import datetime as dt
    from .. import spec as specmod
    from ..release import relist
    sp = proj.spec
    day = when.date() if when else dt.date.today()
    specmod.set_eol(sp, day, series)
    stats = relist(sp, proj.store, "eol")
    who = f"{sp.product} series {series}" if series else sp.product
    emit(as_json, {"product": sp.product, "series": series, "eol": day.isoformat(), "spec": str(sp.path), "site": stats},
         lambda r: out.print(f"{who}: end of life {r['eol']}; stage and release now refuse, feeds stay published"))

@click.group()
def feed():
    """Work on any feed directory (an OE deploy directory too)."""

@feed.command("index")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-a", "--all-versions", is_flag=True, help="List every version, not only the newest (like opkg-make-index -a).")
@click.option("--checksum", type=click.Choice(["md5", "sha256"]), multiple=True,
              help="ipk: checksums to list (default: md5 and sha256, as OE asks opkg-make-index for).")
@click.option("--format", "fmt", type=click.Choice(["ipk", "rpm", "deb"]), help="Package format (default: detected).")
@json_opt
def feed_index(directory, all_versions, checksum, fmt, as_json):
    """Write the index of a feed directory (like opkg-make-index, createrepo_c, apt-ftparchive)."""
    try:
        from .. import feed as feedmod
        from ..formats import get as get_format
        f = get_format(fmt) if fmt else feedmod.detect_format(directory)
    except ValueError as e:
        raise BindistroError(str(e)) from None
    try:
        written, read, reused = feedmod.index(f, directory, all_versions, tuple(checksum) or ("md5", "sha256"))
    except Exception as e:  # a broken package: name it and stop, leaving the old index
        from ..formats.base import PackageError
        if isinstance(e, PackageError):
            raise BindistroError(f"{directory}: {e}") from None
        raise
    emit(as_json, {"directory": str(directory), "format": f.name, "written": [str(p) for p in written],
                   "read": read, "reused": reused},
         lambda r: out.print(f"indexed {r['directory']}: {r['read']} packages read, {r['reused']} reused"))

@feed.command("add-custom")
@click.argument("name")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--key", "fpr", required=True, help="Fingerprint of the feed owner's key (bindistro keys import).")
@json_opt
@click.pass_obj
def feed_add_custom(proj: Project, name, directory, fpr, as_json):
    """Publish your own packages into a separate feed signed with your own key."""
    from ..custom import add
    r = add(proj.spec, proj.store, name, directory, fpr)
    emit(as_json, r, lambda r: out.print(f"custom feed {name}: {r['new_packages']} new packages in {', '.join(r['feeds'])}"))

@feed.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["ipk", "rpm", "deb"]), help="Package format (default: detected).")
@click.option("--keyring", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Public key(s) the feed's index signature must be made with.")
@json_opt
def feed_check(directory, fmt, keyring, as_json):
    """Check a feed against its index (missing, unindexed, changed files) and its index signature."""
    try:
        from .. import feed as feedmod
        from ..formats import get as get_format
        f = get_format(fmt) if fmt else feedmod.detect_format(directory)
    except ValueError as e:
        raise BindistroError(str(e)) from None
    problems, n = feedmod.check(f, directory, keyring.read_bytes() if keyring else None)
    errors = [p for p in problems if p.severity == "error"]
    data = {"directory": str(directory), "format": f.name, "packages": n, "ok": not errors,
            "problems": [{"path": p.path, "message": p.message, "severity": p.severity} for p in problems]}

    def human(d):
        for p in problems:
            err.print(f"bindistro: {p.severity}: {p}", markup=False)
        out.print(f"{d['directory']}: {n} packages, {len(errors)} errors, {len(problems) - len(errors)} warnings")
    emit(as_json, data, human)
    if errors:
        raise Reported()

@click.command("device-config")
@click.option("--machine", required=True)
@click.option("--format", "fmt", type=click.Choice(["ipk", "rpm", "deb"]), help="Default: the spec's first format.")
@click.option("--url", help="Where devices reach the publish tree (default: publish.url of the spec).")
@click.option("--custom", "customs", multiple=True, help="Also use (and trust the key of) this custom feed.")
@click.option("--channel", metavar="NAME", help="A test device: follow the channel NAME (builds that are not releases).")
@click.option("--series", metavar="NAME", help="The series the device follows (default: the newest); a device of an "
              "older series moves by getting these files, then upgrading.")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@json_opt
@click.pass_obj
def device_config(proj: Project, machine, fmt, url, customs, channel, series, out_dir, as_json):
    """Write a device's feed configuration, trusted keys and upgrade timer under OUT_DIR.
    A device moves to another series by getting that series' files, then upgrading."""
    from ..custom import custom_feeds
    from ..device import write
    sp = proj.spec.in_series(series or (proj.spec.series_names() or [None])[-1])   # default: the newest series
    try:
        files = write(sp, proj.store, machine, fmt or sp.formats[0], out_dir, url,
                      custom_feeds(sp, list(customs)), channel)
    except ValueError as e:
        raise BindistroError(str(e)) from None
    emit(as_json, {"out": str(out_dir), "files": files}, lambda r: [out.print(f) for f in files])


@click.command("publish")
@click.argument("candidate", type=int, required=False)
@click.option("--channel", metavar="NAME", help="Publish CANDIDATE (not a release) to channels/NAME/, replacing what it held.")
@click.option("--remove-channel", "remove", metavar="NAME", help="Remove the channel NAME (releases are never removed).")
@series_opt
@json_opt
@click.pass_obj
def publish_cmd(proj: Project, candidate, channel, remove, series, as_json):
    """Builds for testers: publish a candidate to a channel (nightly, …), or remove a channel."""
    from ..channel import publish_channel, remove_channel
    if remove and (channel or candidate is not None):
        raise click.UsageError("--remove-channel NAME takes no candidate and no --channel")
    if remove:
        r = remove_channel(proj.spec.choose_series(series), proj.store, remove)
        emit(as_json, r, lambda r: out.print(f"channel {remove} removed"))
        return
    if candidate is None or not channel:
        raise click.UsageError("give a CANDIDATE and --channel NAME (or --remove-channel NAME)")
    if series is not None:
        from .. import series as S
        of = S.of_candidate(proj.spec, proj.store, candidate).current
        if of != proj.spec.get_series(series).name:
            raise BindistroError(f"candidate {candidate} is of series {of}, not {series}")
    r = publish_channel(proj.spec, proj.store, candidate, channel)
    v = r["verify"]
    emit(as_json, r, lambda r: out.print(
        f"candidate {candidate} published to channel {channel} ({r['path']}/, not a release): {r['packages']} packages, "
        f"{r['images']} images; verify: {v.get('error', 0)} errors, {v.get('warning', 0)} warnings"))


@click.command("channels")
@json_opt
@click.pass_obj
def channels_cmd(proj: Project, as_json):
    """List the published channels (builds for testers, not releases)."""
    from ..listing import channels
    data = channels(proj.spec.publish_path)

    def human(data):
        from rich.table import Table
        t = Table("channel", "candidate", "created", "verify", title="channels (not releases)")
        for c in data:
            v = c["verify"] or {}
            t.add_row(str(c["channel"]), str(c["candidate"]), str(c["created"]),
                      f"{v.get('error', 0)} errors, {v.get('warning', 0)} warnings")
        out.print(t)
    emit(as_json, data, human)


COMMANDS = [fsck, eol, feed, device_config, upload, publish_cmd, channels_cmd]
