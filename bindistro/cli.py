"""Command line: one thin sub-command per step of the cycle.

Exit codes: 0 success, 1 bad input or candidate (problems reported one per line), 2 usage error.
"""
from __future__ import annotations

import dataclasses
import json
import signal
import sys
from pathlib import Path

import click
import sqlalchemy.exc
from rich.console import Console
from rich.table import Table

from . import __version__, feed as feedmod
from . import spec as specmod
from .errors import BadInput, BindistroError
from .formats import get as get_format
from .store import Store

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Project:
    def __init__(self, directory: Path | None):
        self.dir = directory
        self._spec = None
        self._store = None

    @property
    def spec(self) -> specmod.Spec:
        if self._spec is None:
            path = (self.dir / specmod.SPEC_FILE) if self.dir else specmod.find(Path.cwd())
            self._spec = specmod.load(path)
        return self._spec

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.spec.state_path)
        return self._store


def emit(as_json: bool, data, human) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=1, default=str))
    else:
        human(data)


def one_line(text: str) -> str:
    """A message as one line: a newline or escape in a hostile name must not start a line of its own."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def fail_on(e: BindistroError, as_json: bool = False) -> None:
    problems = e.problems if isinstance(e, BadInput) else None
    if as_json and not getattr(e, "reported", False):
        click.echo(json.dumps({"error": str(e).splitlines()[0] if not problems else f"{len([p for p in problems if p.severity == 'error'])} problem(s)",
                               "problems": [{"path": p.path, "message": p.message, "severity": p.severity}
                                            for p in problems or []]}, indent=1))
    if problems:
        for p in problems:
            err.print(f"bindistro: {p.severity}: {one_line(str(p))}", markup=False)
    else:
        err.print(f"bindistro: error: {one_line(str(e))}", markup=False)
    sys.exit(e.exit_code)


REPORT_URL = "https://github.com/bindistro/bindistro/issues"


class Group(click.Group):
    """Every failure reaches the user as one line: the project's errors and environment faults
    (EROFS, ENOSPC, EACCES, a missing tool) name the file; anything else is our bug, said so, with
    the trace only under --debug."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BindistroError as e:
            fail_on(e, ctx.meta.get("json", False))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            err.print("bindistro: interrupted", markup=False)
            sys.exit(130)
        except OSError as e:
            if ctx.meta.get("debug"):
                raise
            fail_on(BindistroError(os_problem(e)), ctx.meta.get("json", False))
        except sqlalchemy.exc.OperationalError as e:     # disk full, read-only, locked: the DB says which
            if ctx.meta.get("debug"):
                raise
            store = getattr(ctx.obj, "_store", None)
            where = store.db.engine.url.render_as_string(hide_password=True) if store else "state database"
            fail_on(BindistroError(f"{where}: {str(e.orig).splitlines()[0]}"), ctx.meta.get("json", False))
        except Exception as e:
            if ctx.meta.get("debug"):
                raise
            err.print(f"bindistro: internal error: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                      f" (a bug: please report it at {REPORT_URL} with the output of --debug)", markup=False)
            sys.exit(1)


def os_problem(e: OSError) -> str:
    """One line for an environment fault, naming the file where the OS told us which."""
    what = e.strerror or str(e)
    if isinstance(e, FileNotFoundError) and e.filename and not Path(str(e.filename)).is_absolute() and "/" not in str(e.filename):
        return f"{e.filename}: command not found (install it, see README)"
    where = e.filename or getattr(e, "bindistro_path", None)
    return f"{where}: {what}" if where else what


def _remember_json(ctx, _param, value):
    ctx.meta["json"] = value   # so errors raised later are reported as JSON too
    return value


json_opt = click.option("--json", "as_json", is_flag=True, callback=_remember_json,
                        help="Print a JSON report on stdout.")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Project directory (holding bindistro.yml); default: found from the current directory.")
@click.option("--debug", is_flag=True, envvar="BINDISTRO_DEBUG",
              help="Show the full trace of an unexpected error (for bug reports).")
@click.version_option(__version__)
@click.pass_context
def main(ctx, directory, debug):
    """Run the release cycle of a binary distribution built with the Yocto Project."""
    ctx.meta["debug"] = debug
    ctx.obj = Project(directory)
    signal.signal(signal.SIGTERM, _terminated)


def _terminated(_sig, _frame):
    # as Ctrl-C: unwinds, so a half-done stage removes what it added and temp dirs go away
    raise KeyboardInterrupt


@main.command()
@click.option("--product", default="sample-distro", show_default=True, help="Product (distro) name.")
@click.option("--force", is_flag=True, help="Overwrite an existing bindistro.yml.")
@click.option("--sample", is_flag=True, help="Boot-test settings for the SAMPLE images (marker of their /init, no login).")
@click.option("--boot/--no-boot", default=True, show_default=True, help="Enable the QEMU boot gate.")
@json_opt
@click.pass_obj
def init(proj: Project, product, force, sample, boot, as_json):
    """Write a default distro spec (bindistro.yml) and state directories."""
    d = (proj.dir or Path.cwd())
    d.mkdir(parents=True, exist_ok=True)
    path = d / specmod.SPEC_FILE
    if path.exists() and not force:
        raise BindistroError(f"{path}: exists already (use --force to overwrite)")
    sp = specmod.default_spec(product, sample=sample, boot=boot)
    sp.path = path
    specmod.parse(sp.to_dict(), path)   # the default must be valid
    specmod.dump(sp, path)
    sp = specmod.load(path)
    Store(sp.state_path)
    sp.publish_path.mkdir(parents=True, exist_ok=True)
    emit(as_json, {"spec": str(path), "state": str(sp.state_path), "publish": str(sp.publish_path)},
         lambda r: out.print(f"wrote {r['spec']}; state in {r['state']}, publishing to {r['publish']}"))


@main.command()
def schema():
    """Print the JSON Schema of bindistro.yml (for editors' YAML language servers and CI linting)."""
    click.echo(specmod.SCHEMA_FILE.read_text(), nl=False)


@main.command("sample-build")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--release", "rel", type=click.IntRange(1), required=True, help="Release number to generate.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--inject", multiple=True, metavar="DEFECT",
              help="Put a defect into this release on purpose (repeatable); see `--inject help`.")
@click.option("--formats", default="ipk,rpm,deb", show_default=True, help="Package formats to build.")
@json_opt
def sample_build(out_dir, rel, seed, inject, formats, as_json):
    """Write a Yocto-shaped SAMPLE build directory with real packages (sample data)."""
    from .sample.build import generate
    from .sample.defects import DEFECTS
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
    r = generate(out_dir, rel, seed, inject=list(inject), formats=fmts)
    emit(as_json, r, lambda r: out.print(
        f"SAMPLE DATA: release {r['release']} (seed {r['seed']}) in {r['out']}: {r['recipes']} recipes, "
        f"{r['packages']} packages; changes: " + (", ".join(f"{c['kind']} {c['recipe']}" for c in r["changes"]) or "none")))


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--kas", "kas_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="kas project file the build used (its .lock.yml is taken too).")
@click.option("--layers", "layer_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="setup-layers.json of the build (default: found beside the build dir).")
@json_opt
@click.pass_obj
def stage(proj: Project, path, kas_files, layer_files, as_json):
    """Record a build dir, tmp/deploy dir or feed dir as a candidate."""
    from .release import check_eol
    from .stage import stage as do_stage
    check_eol(proj.spec, "candidates")
    r = do_stage(proj.store, path, proj.spec, list(kas_files), list(layer_files))

    def human(r):
        out.print(f"candidate {r['candidate']}: {r['artifacts']} artifacts from {r['source']}")
        for k, n in sorted(r["kinds"].items()):
            out.print(f"  {k:<13} {n}")
        for f, n in sorted(r["feeds"].items()):
            out.print(f"  feed {f:<20} {n} packages")
        for w in r["warnings"]:
            err.print(f"bindistro: warning: {w}", markup=False)
    emit(as_json, r, human)


@main.command()
@click.argument("candidate", type=int)
@click.option("--name", help="Release name (default: from release_name in the spec).")
@json_opt
@click.pass_obj
def release(proj: Project, candidate, name, as_json):
    """Publish a candidate: cumulative feeds, images, manifest."""
    from .release import release as do_release
    r = do_release(proj.spec, proj.store, candidate, name)
    emit(as_json, r, lambda r: out.print(
        f"release {r['release']} published from candidate {r['candidate']}: {r['new_files']} new files, "
        f"{len(r['feeds_updated'])} feeds updated"))


def print_report(rep: dict) -> None:
    s = rep["summary"]
    order = {"error": 0, "warning": 1, "info": 2}
    for f in sorted(rep["findings"], key=lambda f: (order[f["severity"]], f["gate"])):
        if f["severity"] == "info":
            continue
        mark = " (waived)" if f.get("waived") else ""
        out.print(f"{f['severity']:<7} {f['gate']:<12} {f['id']}  {f['subject']}: {f['message']}{mark}", markup=False)
        for line in (f.get("details") or {}).get("last_lines", [])[-6:]:
            out.print(f"{'':<21}| {line}", markup=False)
        if (f.get("details") or {}).get("console_log"):
            out.print(f"{'':<21}console log: {f['details']['console_log']}", markup=False)
    out.print(f"candidate {rep['candidate']}: {s['error']} errors, {s['warning']} warnings, {s['info']} info, "
              f"{s['waived']} waived (gates: {', '.join(rep['gates'])})")


@main.command()
@click.argument("candidate", type=int)
@click.option("--gate", "only", multiple=True, help="Run only this gate (repeatable).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report.")
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML.")
@click.option("--opkg", type=click.Path(exists=True, dir_okay=False), help="The opkg binary for the ipk upgrade "
              "tests (default: tools.opkg of the spec, the build's opkg-native, the cache, PATH).")
@json_opt
@click.pass_obj
def verify(proj: Project, candidate, only, html_out, junit_out, opkg, as_json):
    """Run the verify gates on a candidate; exit 1 when there are unwaived errors."""
    from . import verify as v
    from .verify.render import to_html, to_junit
    if opkg:
        proj.spec.opkg = str(Path(opkg).resolve())     # for this run, as tools.opkg would say
    known = v.all_gates()
    for g in only:
        if g not in known:
            raise click.UsageError(f"unknown gate {g!r} (known: {', '.join(known)})")
    rep = v.run(proj.spec, proj.store, candidate, list(only) or None)
    if html_out:
        html_out.write_text(to_html(rep, f"{proj.spec.product} verify"))
    if junit_out:
        junit_out.write_text(to_junit(rep))
    emit(as_json, rep, print_report)
    if v.unresolved_errors(rep):
        sys.exit(1)


@main.command("boot")
@click.argument("image", type=click.Path(exists=True, path_type=Path))
@click.option("--sample", is_flag=True, help="Use the SAMPLE images' boot settings instead of the spec's.")
@click.option("--timeout", type=click.IntRange(1), help="Seconds to reach the marker (default: the spec's).")
@click.option("--marker", help="Regex that means 'booted' (default: the spec's).")
@click.option("--log", "log_dir", type=click.Path(file_okay=False, path_type=Path), help="Keep console logs here.")
@json_opt
@click.pass_obj
def boot_cmd(proj: Project, image, sample, timeout, marker, log_dir, as_json):
    """Boot IMAGE (a *.qemuboot.conf, or a deploy/images dir) under QEMU and run the console checks."""
    from .boot import boot
    from .yocto.qemuboot import find_confs
    if sample:
        cfg = specmod.sample_boot()
    else:
        try:
            cfg = proj.spec.boot
        except specmod.SpecError:
            cfg = specmod.Boot()     # no project here: the defaults for a Yocto image
    cfg = dataclasses.replace(cfg, timeout=timeout or cfg.timeout, marker=marker or cfg.marker)
    results = []
    for conf in find_confs(image):
        log = log_dir / f"{conf.name.removesuffix('.qemuboot.conf')}.console.log" if log_dir else None
        if not as_json:
            err.print(f"booting {conf} ...", markup=False)
        results.append(boot(conf, cfg, log).to_dict())

    def human(rs):
        for r in rs:
            out.print(f"{r['machine']}: {r['status']}: {r['reason']}", markup=False)
            for c in r["checks"]:
                out.print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c['output'].splitlines()[-1] if c['output'] else ''}", markup=False)
            for line in r["last_lines"]:
                out.print(f"  | {line}", markup=False)
    emit(as_json, {"results": results}, lambda d: human(d["results"]))
    if not all(r["status"] == "passed" for r in results):
        sys.exit(1)


@main.command()
@click.argument("candidate", type=int)
@click.argument("finding")
@click.option("--reason", required=True, help="Why the finding is acceptable (kept in the release manifest).")
@json_opt
@click.pass_obj
def waive(proj: Project, candidate, finding, reason, as_json):
    """Accept one finding of a candidate, with a reason."""
    from . import verify as v
    r = v.waive(proj.store, candidate, finding, reason)
    emit(as_json, r, lambda r: out.print(f"waived {finding} of candidate {candidate}: {r['finding']['message']}"))


@main.command("history-diff")
@click.argument("old")
@click.argument("new")
@click.option("-C", "--repo", "repo", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".",
              help="buildhistory git repository (default: current directory).")
@json_opt
def history_diff(old, new, repo, as_json):
    """Compare two buildhistory revisions (like buildhistory-diff, plus version regressions)."""
    import subprocess as sp
    from .yocto import buildhistory as bh
    for rev in (old, new):
        if sp.run(["git", "-C", str(repo), "rev-parse", "--verify", "-q", rev + "^{commit}"], capture_output=True).returncode:
            raise BindistroError(f"{repo}: {rev}: not a commit of this git repository")
    findings = bh.compare(bh.read_rev(repo, old), bh.read_rev(repo, new))
    data = {"old": old, "new": new, "findings": [f.to_dict() for f in findings]}

    def human(d):
        for f in d["findings"]:
            out.print(f"{f['severity']:<7} {f['subject']}: {f['message']}", markup=False)
    emit(as_json, data, human)
    if any(f.severity == "error" for f in findings):
        sys.exit(1)


@main.command()
@click.argument("candidate", type=int)
@json_opt
@click.pass_obj
def notes(proj: Project, candidate, as_json):
    """Markdown release notes: packages added, upgraded, downgraded, removed; image sizes."""
    from .notes import notes_data, release_notes
    if not proj.store.db.candidate(candidate):
        raise BindistroError(f"candidate {candidate}: no such candidate (see `bindistro show`)")
    if as_json:
        click.echo(json.dumps(notes_data(proj.spec, proj.store, candidate), indent=1))
    else:
        click.echo(release_notes(proj.spec, proj.store, candidate), nl=False)


@main.command()
@json_opt
@click.pass_obj
def releases(proj: Project, as_json):
    """List releases, oldest first."""
    rels = proj.store.db.releases()
    data = [{"release": r.name, "sequence": r.seq, "candidate": r.candidate, "created": r.created} for r in rels]
    eol = proj.spec.eol.isoformat() if proj.spec.eol else None

    def human(data):
        t = Table("release", "seq", "candidate", "created", title=f"{proj.spec.product}" + (f" (EOL {eol})" if eol else ""))
        for r in data:
            t.add_row(r["release"], str(r["sequence"]), str(r["candidate"]), r["created"])
        out.print(t)
    emit(as_json, data, human)


@main.command()
@click.argument("what")
@json_opt
@click.pass_obj
def show(proj: Project, what, as_json):
    """Show a candidate (by id) or a release (by name)."""
    from .stage import summary
    rel = next((r for r in proj.store.db.releases() if r.name == what), None)
    if rel:
        path = proj.spec.publish_path / "releases" / rel.name / "manifest.json"
        data = json.loads(path.read_text())
        emit(as_json, data, lambda d: out.print(
            f"release {d['release']} (candidate {d['candidate']}, {d['created']}): {len(d['artifacts'])} artifacts"))
        return
    if not what.isdigit() or not proj.store.db.candidate(int(what)):
        raise BindistroError(f"{what}: no such candidate id or release name")
    row, arts = proj.store.db.candidate(int(what))
    data = summary(row.id, row.source, row.created, arts, row.warnings)
    data["released_as"] = [r.name for r in proj.store.db.releases() if r.candidate == row.id]
    data["packages"] = [{"name": a.name, "version": a.version, "arch": a.arch, "format": a.format,
                         "sha256": a.sha256} for a in arts if a.kind == "package"]

    def human(d):
        out.print(f"candidate {d['candidate']} from {d['source']} ({d['created']}): {d['artifacts']} artifacts"
                  + (f", released as {', '.join(d['released_as'])}" if d["released_as"] else ", not released"))
        for k, n in sorted(d["kinds"].items()):
            out.print(f"  {k:<13} {n}")
    emit(as_json, data, human)


@main.group()
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
        f = get_format(fmt) if fmt else feedmod.detect_format(directory)
    except ValueError as e:
        raise BindistroError(str(e)) from None
    try:
        written, read, reused = feedmod.index(f, directory, all_versions, tuple(checksum) or ("md5", "sha256"))
    except Exception as e:  # a broken package: name it and stop, leaving the old index
        from .formats.base import PackageError
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
    from .custom import add
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
        sys.exit(1)


def publish_dir(proj: Project, given: Path | None) -> Path:
    if given:
        return given
    try:
        return proj.spec.publish_path
    except BindistroError:
        raise click.UsageError("no project here: pass --from PUBLISH_DIR") from None


@main.command()
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
@json_opt
@click.pass_obj
def restore(proj: Project, build_dir, rel, source, url, hashserv_upstream, layers_dir, keyring, insecure, as_json):
    """Restore a release into a build directory: PR values, hash equivalence, sstate mirror, layers.
    The release manifest's signature is checked first; files are used only as the manifest lists them."""
    from .restore import Trust, project_trust
    from .restore import restore as do_restore
    spec = None
    try:
        spec = proj.spec
    except BindistroError:
        pass
    if url is None and source is None and spec is not None:
        url = spec.publish_url
    publish = publish_dir(proj, source)
    if keyring:
        trust = Trust([keyring.read_bytes()], insecure)
    elif spec is not None:
        trust = project_trust(spec, own_tree=publish.resolve() == spec.publish_path.resolve(), insecure=insecure)
    else:
        trust = Trust(insecure=insecure)
    r = do_restore(build_dir, publish, rel, url, hashserv_upstream, layers_dir, trust)

    def human(r):
        out.print(f"restored release {r['release']} into {r['build']}: {r['conf']}")
        if "prserv" in r:
            out.print(f"  PR database: {r['prserv']['rows']} entries, {r['prserv']['added']} added, {r['prserv']['raised']} raised")
        for l in r.get("layers", []):
            out.print(f"  layer {l['layer']}: {l['status']}")
    emit(as_json, r, human)


@main.command()
@click.argument("release_name", metavar="RELEASE")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--from", "source", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Published tree (default: the project's publish dir).")
@json_opt
@click.pass_obj
def bundle(proj: Project, release_name, out_dir, source, as_json):
    """What a user needs to rebuild a release from source and publish their own feed."""
    from .bundle import write_bundle
    url = None
    try:
        url = proj.spec.publish_url
    except BindistroError:
        pass
    r = write_bundle(publish_dir(proj, source), release_name, out_dir, url)
    emit(as_json, r, lambda r: out.print(f"bundle of release {r['release']} in {r['out']}: {', '.join(r['files'])}"))


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--kas", "kas_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Build with `kas build FILE`.")
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build"), show_default=True)
@click.option("--stage", "do_stage", is_flag=True, help="Stage the build when it succeeds.")
@click.option("--dry-run", is_flag=True, help="Print what would run.")
@click.argument("targets", nargs=-1)
@json_opt
@click.pass_obj
def build(proj: Project, kas_file, build_dir, do_stage, dry_run, targets, as_json):
    """Restore the last release, then run kas or bitbake with a captured console log."""
    from .build import run_build
    r = run_build(proj.spec, proj.store, build_dir, kas_file, list(targets), do_stage, dry_run)

    def human(r):
        out.print(("would run: " if dry_run else "ran: ") + " ".join(r["command"]), markup=False)
        if r.get("log"):
            out.print(f"console log: {r['log']}")
        if r.get("candidate"):
            out.print(f"staged as candidate {r['candidate']}")
        elif r.get("returncode") == 0 and not dry_run:
            out.print(f"next: bindistro stage {r['build_dir']}")
    emit(as_json, r, human)


@main.command()
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
    from . import fsck as fsckmod
    both = not do_store and publish_to is None
    spec = store = None
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
        raise SystemExit(1)


@main.command()
@click.option("--date", "when", type=click.DateTime(["%Y-%m-%d"]), help="EOL date (default: today).")
@json_opt
@click.pass_obj
def eol(proj: Project, when, as_json):
    """Declare end of life: no more candidates or releases; published feeds stay."""
    import datetime as dt
    from .release import relist
    sp = proj.spec
    sp.eol = when.date() if when else dt.date.today()
    specmod.dump(sp, sp.path)
    relist(sp, proj.store, "eol")
    emit(as_json, {"product": sp.product, "eol": sp.eol.isoformat(), "spec": str(sp.path)},
         lambda r: out.print(f"{r['product']}: end of life {r['eol']}; stage and release now refuse, feeds stay published"))


@main.group()
def keys():
    """Signing keys: GnuPG in state/gnupg, named by fingerprint in bindistro.yml."""


pass_file = click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="File holding the key passphrase (or set BINDISTRO_KEY_PASSPHRASE).")


def keyring(proj: Project, passphrase_file=None):
    from .keys import Keyring
    return Keyring(proj.spec.state_path / "gnupg", passphrase_file)


def default_uid(sp) -> str:
    return f"{sp.product} release signing key <release@{sp.product}.invalid>"


@keys.command("generate")
@click.option("--uid", help="User id (default: '<product> release signing key').")
@pass_file
@json_opt
@click.pass_obj
def keys_generate(proj: Project, uid, passphrase_file, as_json):
    """Make a signing key; it signs releases when the spec names none yet."""
    sp = proj.spec
    fpr = keyring(proj, passphrase_file).generate(uid or default_uid(sp))
    if not sp.signing_key:
        sp.signing_key = fpr
        specmod.dump(sp, sp.path)
    emit(as_json, {"fingerprint": fpr, "signing": sp.signing_key == fpr},
         lambda r: out.print(f"generated {fpr}" + (" (now keys.signing)" if r["signing"] else "")))


@keys.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_file
@json_opt
@click.pass_obj
def keys_import(proj: Project, file, passphrase_file, as_json):
    """Import a (secret or public) key file."""
    got = keyring(proj, passphrase_file).import_file(file)
    emit(as_json, {"imported": got}, lambda r: out.print("imported " + (", ".join(got) or "nothing new")))


@keys.command("export")
@click.argument("fingerprint")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def keys_export(proj: Project, fingerprint, out_file):
    """Write a public key (armored)."""
    data = keyring(proj).export(fingerprint)
    if out_file:
        out_file.write_bytes(data)
    else:
        click.echo(data.decode(), nl=False)


@keys.command("list")
@json_opt
@click.pass_obj
def keys_list(proj: Project, as_json):
    """Keys in the state directory and their role in the spec."""
    sp = proj.spec
    data = [dict(k, role="signing" if k["fingerprint"] == sp.signing_key else
                 "previous" if k["fingerprint"] in sp.previous_keys else "-") for k in keyring(proj).list()]
    emit(as_json, data, lambda d: [out.print(f"{k['fingerprint']}  {k['role']:<8}  {k['uid']}") for k in d])


@keys.command("rotate")
@click.option("--uid", help="User id of the new key.")
@pass_file
@json_opt
@click.pass_obj
def keys_rotate(proj: Project, uid, passphrase_file, as_json):
    """New key signs new releases; the old one stays trusted (keys.previous) so old releases verify."""
    sp = proj.spec
    if not sp.signing_key:
        raise BindistroError(f"{sp.path}: keys.signing: no key to rotate (bindistro keys generate)")
    new = keyring(proj, passphrase_file).generate(uid or default_uid(sp))
    sp.previous_keys = [sp.signing_key, *[k for k in sp.previous_keys if k != sp.signing_key]]
    sp.signing_key = new
    specmod.dump(sp, sp.path)
    emit(as_json, {"signing": new, "previous": sp.previous_keys},
         lambda r: out.print(f"new signing key {new}; still trusted: {', '.join(sp.previous_keys)}"))


@main.command("device-config")
@click.option("--machine", required=True)
@click.option("--format", "fmt", type=click.Choice(["ipk", "rpm", "deb"]), help="Default: the spec's first format.")
@click.option("--url", help="Where devices reach the publish tree (default: publish.url of the spec).")
@click.option("--custom", "customs", multiple=True, help="Also use (and trust the key of) this custom feed.")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@json_opt
@click.pass_obj
def device_config(proj: Project, machine, fmt, url, customs, out_dir, as_json):
    """Write a device's feed configuration, trusted keys and upgrade timer under OUT_DIR."""
    from .custom import custom_feeds
    from .device import write
    try:
        files = write(proj.spec, proj.store, machine, fmt or proj.spec.formats[0], out_dir, url,
                      custom_feeds(proj.spec, list(customs)))
    except ValueError as e:
        raise BindistroError(str(e)) from None
    emit(as_json, {"out": str(out_dir), "files": files}, lambda r: [out.print(f) for f in files])


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--releases", "count", type=click.IntRange(1), default=3, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@json_opt
def demo(out_dir, count, seed, as_json):
    """Sample builds of releases 1..N, each staged and released; leaves OUT/publish browsable."""
    from .demo import run
    r = run(out_dir, count, seed)

    def human(r):
        t = Table("release", "candidate", "packages", "new files", "changes", title=f"SAMPLE distro in {r['out']}")
        for x in r["releases"]:
            t.add_row(x["release"], str(x["candidate"]), str(x["packages"]), str(x["new_files"]), x["changes"])
        out.print(t)
        out.print(f"publish tree: {r['publish']}")
    emit(as_json, r, human)


def _register_plugins() -> None:
    # command groups that live with their feature (they import this module's helpers)
    from .cve.cli import cve
    main.add_command(cve)


_register_plugins()


if __name__ == "__main__":
    main()
