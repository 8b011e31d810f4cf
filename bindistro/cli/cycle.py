"""The cycle's own steps: init, stage, verify (waive, notes, history-diff), release, and what is there."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from .. import spec as specmod
from ..errors import BindistroError
from .base import Project, Reported, emit, err, from_build_opt, json_opt, machines_from_build, out, series_opt


@click.command()
@click.option("--product", default="sample-distro", show_default=True, help="Product (distro) name.")
@click.option("--force", is_flag=True, help="Overwrite an existing bindistro.yml.")
@click.option("--sample", is_flag=True, help="Boot-test settings for the SAMPLE images (marker of their /init, no login).")
@click.option("--boot/--no-boot", default=True, show_default=True, help="Enable the QEMU boot gate.")
@click.option("--database", metavar="URL", help="Metadata DB shared by several hosts: postgresql://USER@HOST/DB "
              "(password in PGPASSWORD or ~/.pgpass). Default: SQLite in the state directory.")
@from_build_opt
@json_opt
@click.pass_obj
def init(proj: Project, product, force, sample, boot, database, from_build, as_json):
    """Write a default distro spec (bindistro.yml) and state directories."""
    d = (proj.dir or Path.cwd())
    d.mkdir(parents=True, exist_ok=True)
    path = d / specmod.SPEC_FILE
    if path.exists() and not force:
        raise BindistroError(f"{path}: exists already (use --force to overwrite)")
    sp = specmod.default_spec(product, sample=sample, boot=boot)
    if from_build:
        sp.machines = machines_from_build(from_build)
    sp.database = database
    sp.path = path
    specmod.parse(sp.to_dict(), path)   # the default must be valid
    specmod.dump(sp, path)
    sp = specmod.load(path)
    from ..store import open_store
    open_store(sp)
    sp.publish_path.mkdir(parents=True, exist_ok=True)
    emit(as_json, {"spec": str(path), "state": str(sp.state_path), "publish": str(sp.publish_path),
                   "database": sp.database_url or str(sp.state_path / "bindistro.db")},
         lambda r: out.print(f"wrote {r['spec']}; state in {r['state']}, publishing to {r['publish']}"))

@click.command()
def schema():
    """Print the JSON Schema of bindistro.yml (for editors' YAML language servers and CI linting)."""
    click.echo(specmod.SCHEMA_FILE.read_text(), nl=False)

@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--kas", "kas_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="kas project file the build used (its .lock.yml is taken too).")
@click.option("--layers", "layer_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="setup-layers.json of the build (default: found beside the build dir).")
@series_opt
@json_opt
@click.pass_obj
def stage(proj: Project, path, kas_files, layer_files, series, as_json):
    """Record a build dir, tmp/deploy dir or feed dir as a candidate (of one series)."""
    from ..stage import stage as do_stage
    sp = proj.spec.choose_series(series)
    specmod.check_eol(sp, "candidates")
    r = do_stage(proj.store, path, sp, list(kas_files), list(layer_files))

    def human(r):
        out.print(f"candidate {r['candidate']}: {r['artifacts']} artifacts from {r['source']}"
                  + (f" (series {r['series']})" if r.get("series") else ""))
        for k, n in sorted(r["kinds"].items()):
            out.print(f"  {k:<13} {n}")
        for f, n in sorted(r["feeds"].items()):
            out.print(f"  feed {f:<20} {n} packages")
        for w in r["warnings"]:
            err.print(f"bindistro: warning: {w}", markup=False)
    emit(as_json, r, human)

@click.command()
@click.argument("candidate", type=int)
@click.option("--name", help="Release name (default: from release_name in the spec).")
@json_opt
@click.pass_obj
def release(proj: Project, candidate, name, as_json):
    """Publish a candidate: cumulative feeds, images, manifest."""
    from ..release import release as do_release
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

@click.command()
@click.argument("candidate", type=int)
@click.option("--gate", "only", multiple=True, help="Run only this gate (repeatable).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report.")
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML.")
@click.option("--opkg", type=click.Path(exists=True, dir_okay=False), help="The opkg binary for the ipk upgrade "
              "tests (default: tools.opkg of the spec, the build's opkg-native, the cache, PATH).")
@click.option("--last", is_flag=True, help="Show the candidate's last stored report (with today's waivers) "
              "instead of running the gates.")
@click.option("--plan", is_flag=True, help="List the independent jobs of this verify (gate x format x machine), "
              "with cost estimates and stages, for a CI engine to run in parallel.")
@click.option("--job", "job_id", metavar="ID", help="Run one job of the plan and store its findings (any host "
              "sharing the state DB and objects).")
@click.option("--collect", is_flag=True, help="Merge every planned job's findings into the report (fails while "
              "a job has not run).")
@json_opt
@click.pass_obj
def verify(proj: Project, candidate, only, html_out, junit_out, opkg, last, plan, job_id, collect, as_json):
    """Run the verify gates on a candidate; exit 1 when there are unwaived errors."""
    from .. import verify as v
    from ..verify import jobs
    from ..verify.render import to_html, to_junit
    if opkg:
        proj.spec.opkg = str(Path(opkg).resolve())     # for this run, as tools.opkg would say
    known = v.all_gates()
    for g in only:
        if g not in known:
            raise click.UsageError(f"unknown gate {g!r} (known: {', '.join(known)})")
    if sum(map(bool, (last, plan, job_id, collect))) > 1:
        raise click.UsageError("--last, --plan, --job and --collect exclude each other")
    if plan:
        emit(as_json, [j.to_dict() for j in jobs.plan(proj.spec, proj.store, candidate, list(only) or None)],
             lambda js: [out.print(f"{j['id']:<40} stage {j['stage']}  ~{j['cost']} s", markup=False) for j in js])
        return
    if job_id:
        done = jobs.run_job(proj.spec, proj.store, candidate, job_id, list(only) or None)
        emit(as_json, done, lambda d: out.print(f"candidate {d['candidate']}: job {d['job']} done on {d['host']} in "
                                                f"{d['seconds']} s, {d['findings']} findings stored", markup=False))
        return
    if last:
        rep = v.report(proj.store, candidate)
        if rep is None:
            raise BindistroError(f"candidate {candidate}: not verified yet (run `bindistro verify {candidate}`)")
    elif collect:
        rep = jobs.collect(proj.spec, proj.store, candidate, list(only) or None)
    else:
        rep = v.run(proj.spec, proj.store, candidate, list(only) or None)
    if html_out:
        html_out.write_text(to_html(rep, f"{proj.spec.product} verify"))
    if junit_out:
        junit_out.write_text(to_junit(rep))
    emit(as_json, rep, print_report)
    if v.unresolved_errors(rep):
        raise Reported()


@click.command("boot")
@click.argument("image", type=click.Path(exists=True, path_type=Path))
@click.option("--sample", is_flag=True, help="Use the SAMPLE images' boot settings instead of the spec's.")
@click.option("--timeout", type=click.IntRange(1), help="Seconds to reach the marker (default: the spec's).")
@click.option("--marker", help="Regex that means 'booted' (default: the spec's).")
@click.option("--log", "log_dir", type=click.Path(file_okay=False, path_type=Path), help="Keep console logs here.")
@json_opt
@click.pass_obj
def boot_cmd(proj: Project, image, sample, timeout, marker, log_dir, as_json):
    """Boot IMAGE (a *.qemuboot.conf, or a deploy/images dir) under QEMU and run the console checks."""
    from ..boot import boot
    from ..yocto.qemuboot import find_confs
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
        raise Reported()

@click.command()
@click.argument("candidate", type=int)
@click.argument("finding")
@click.option("--reason", required=True, help="Why the finding is acceptable (kept in the release manifest).")
@json_opt
@click.pass_obj
def waive(proj: Project, candidate, finding, reason, as_json):
    """Accept one finding of a candidate, with a reason."""
    from .. import verify as v
    r = v.waive(proj.store, candidate, finding, reason)
    emit(as_json, r, lambda r: out.print(f"waived {finding} of candidate {candidate}: {r['finding']['message']}"))

@click.command("history-diff")
@click.argument("old")
@click.argument("new")
@click.option("-C", "--repo", "repo", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".",
              help="buildhistory git repository (default: current directory).")
@json_opt
def history_diff(old, new, repo, as_json):
    """Compare two buildhistory revisions (like buildhistory-diff, plus version regressions)."""
    import subprocess as sp
    from ..yocto import buildhistory as bh
    for rev in (old, new):
        if sp.run(["git", "-C", str(repo), "rev-parse", "--verify", "-q", rev + "^{commit}"], capture_output=True).returncode:
            raise BindistroError(f"{repo}: {rev}: not a commit of this git repository")
    findings = bh.diff_revs(repo, old, new)
    data = {"old": old, "new": new, "findings": [f.to_dict() for f in findings]}

    def human(d):
        for f in d["findings"]:
            out.print(f"{f['severity']:<7} {f['subject']}: {f['message']}", markup=False)
    emit(as_json, data, human)
    if any(f.severity == "error" for f in findings):
        raise Reported()

@click.command()
@click.argument("candidate", type=int)
@json_opt
@click.pass_obj
def notes(proj: Project, candidate, as_json):
    """Markdown release notes: packages added, upgraded, downgraded, removed; image sizes."""
    from ..notes import notes_data, release_notes
    if not proj.store.db.candidate(candidate):
        raise BindistroError(f"candidate {candidate}: no such candidate (see `bindistro show`)")
    if as_json:
        click.echo(json.dumps(notes_data(proj.spec, proj.store, candidate), indent=1))
    else:
        click.echo(release_notes(proj.spec, proj.store, candidate), nl=False)

@click.command()
@json_opt
@click.pass_obj
def releases(proj: Project, as_json):
    """List releases, oldest first (with their series, when the spec has series)."""
    from .. import series as S
    rels = S.releases(proj.spec, proj.store)
    data = [{"release": r.name, "sequence": r.seq, "candidate": r.candidate, "created": r.created, "series": r.series}
            for r in rels]
    eol = proj.spec.eol.isoformat() if proj.spec.eol else None

    def human(data):
        from rich.table import Table      # (only for a human: --json never imports rich)
        t = Table("release", "series", "seq", "candidate", "created", title=f"{proj.spec.product}" + (f" (EOL {eol})" if eol else ""))
        for r in data:
            t.add_row(r["release"], r["series"] or "-", str(r["sequence"]), str(r["candidate"]), r["created"])
        out.print(t)
    emit(as_json, data, human)

@click.command()
@click.argument("what")
@json_opt
@click.pass_obj
def show(proj: Project, what, as_json):
    """Show a candidate (by id) or a release (by name)."""
    from ..stage import summary
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


COMMANDS = [init, schema, stage, verify, waive, history_diff, notes, release, releases, show, boot_cmd]
