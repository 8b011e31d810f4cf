"""`bindistro ci gitlab|buildbot CAND`: a ready configuration that runs `verify CAND --plan`'s jobs in
parallel on that engine, then `--collect`. The engine schedules; bindistro only says what to run."""
from __future__ import annotations

import json

import click

from .base import Project

INTRO = "bindistro verify as parallel jobs: each runs on any host sharing the state DB and objects"


def _jobs(proj: Project, candidate: int, only):
    from ..verify import jobs
    return jobs.plan(proj.spec, proj.store, candidate, list(only) or None)


def _gate_args(only) -> str:
    return "".join(f" --gate {g}" for g in only)


@click.group("ci")
def ci():
    """Configurations for existing CI engines (verify jobs in parallel)."""


def engine(name: str):
    """A `ci NAME CAND [--gate G]…` command."""
    def wrap(f):
        f = click.pass_obj(f)
        f = click.option("--gate", "only", multiple=True, help="Plan only this gate (repeatable).")(f)
        return ci.command(name)(click.argument("candidate", type=int)(f))
    return wrap


@engine("gitlab")
def gitlab(proj: Project, candidate, only):
    """A GitLab CI child pipeline: parallel:matrix per stage, then --collect."""
    jobs = _jobs(proj, candidate, only)
    stages = sorted({j.stage for j in jobs})
    lines = [f"# {INTRO}", f"# candidate {candidate}: {len(jobs)} jobs; include as a child pipeline (trigger:include)",
             "stages: [" + ", ".join(f"verify-{s}" for s in stages) + ", collect]", ""]
    for s in stages:
        ids = [j.id for j in jobs if j.stage == s]
        lines += [f"verify-{s}:", f"  stage: verify-{s}", "  parallel:", "    matrix:",
                  f"      - JOB: {json.dumps(ids)}",
                  "  script:", f"    - bindistro verify {candidate}{_gate_args(only)} --job \"$JOB\"", ""]
    lines += ["collect:", "  stage: collect", "  script:",
              f"    - bindistro verify {candidate}{_gate_args(only)} --collect --junit verify.xml",
              "  artifacts:", "    when: always", "    reports:", "      junit: verify.xml", ""]
    click.echo("\n".join(lines), nl=False)


@engine("buildbot")
def buildbot(proj: Project, candidate, only):
    """A Buildbot master.cfg fragment: one builder per job, a stage's builders triggered together."""
    jobs = _jobs(proj, candidate, only)
    stages = sorted({j.stage for j in jobs})
    out = [f"# {INTRO}", f"# candidate {candidate}: {len(jobs)} jobs. Add to master.cfg; give WORKERS your workers.",
           "from buildbot.plugins import steps, util, schedulers", "",
           "WORKERS = ['worker1', 'worker2']",
           f"JOBS = {json.dumps({s: [j.id for j in jobs if j.stage == s] for s in stages}, indent=1)}", "",
           "def verify_factory(job):", "    f = util.BuildFactory()",
           f"    f.addStep(steps.ShellCommand(name=job, command=['bindistro', 'verify', '{candidate}'"
           + "".join(f", '--gate', '{g}'" for g in only) + ", '--job', job], haltOnFailure=True))",
           "    return f", "",
           "for stage, ids in JOBS.items():",
           "    for job in ids:",
           "        c['builders'].append(util.BuilderConfig(name=f'verify-{job}', workernames=WORKERS, factory=verify_factory(job)))",
           "    c['schedulers'].append(schedulers.Triggerable(name=f'verify-stage-{stage}', builderNames=[f'verify-{j}' for j in ids]))",
           "", "collect = util.BuildFactory()"]
    for s in stages:
        out.append(f"collect.addStep(steps.Trigger(schedulerNames=['verify-stage-{s}'], waitForFinish=True, haltOnFailure=True))")
    out += [f"collect.addStep(steps.ShellCommand(name='collect', command=['bindistro', 'verify', '{candidate}'"
            + "".join(f", '--gate', '{g}'" for g in only) + ", '--collect']))",
            "c['builders'].append(util.BuilderConfig(name='verify-collect', workernames=WORKERS, factory=collect))",
            "c['schedulers'].append(schedulers.ForceScheduler(name='verify', builderNames=['verify-collect']))", ""]
    click.echo("\n".join(out), nl=False)


COMMANDS = [ci]
