"""The solver gates' published feeds come from repos kept between runs (verify/history.py): what
they find must not depend on whether those repos are fresh, kept, damaged or gone, and a candidate
that puts other bytes under a published name is checked as itself, not as the published file."""
import json
import shutil


def _findings(cli, proj, cand) -> list[tuple[str, str, str]]:
    rep = cli.json("-C", proj, "verify", cand, "--gate", "closure", "--gate", "upgrade", ok=None)   # errors: exit 1
    return sorted((f["rule"], f["subject"], f["message"]) for f in rep["findings"] if f["gate"] != "payload")


def test_kept_feed_repos_find_what_a_fresh_build_finds(cli, project, mini_build):
    spec = project / "bindistro.yml"
    spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n"))
    for rel in (1, 2):
        cand = cli.json("-C", project, "stage", mini_build(rel))["candidate"]
        cli("-C", project, "verify", cand, "--gate", "closure")
        cli("-C", project, "release", cand)
    cand = cli.json("-C", project, "stage", mini_build(3))["candidate"]
    kept = project / "state" / "work" / "solv"
    first = _findings(cli, project, cand)
    repos = sorted(kept.glob("*/*.solv"))
    # one per format and feed a machine names (published yet or not)
    feeds = len([d for d in (project / "publish" / "feeds").glob("*/*") if d.is_dir()])
    assert feeds >= 15 and len(repos) >= feeds and all(p.with_suffix(".idx").is_file() for p in repos)
    assert _findings(cli, project, cand) == first
    for p in repos:                         # damaged: rebuilt from the store
        p.write_bytes(p.read_bytes()[:40])
    repos[0].with_suffix(".idx").write_text("{not json")
    assert _findings(cli, project, cand) == first
    assert sorted(kept.glob("*/*.solv")) == repos and all(p.stat().st_size > 40 for p in repos)
    shutil.rmtree(kept)                     # gone: made again
    assert _findings(cli, project, cand) == first
    assert not [f for f in first if f[0].startswith("closure.")]

    # a release later, each kept repo is the next release's (the one before it removed)
    cli("-C", project, "release", cand)
    cand = cli.json("-C", project, "stage", mini_build(4))["candidate"]
    assert _findings(cli, project, cand) == _findings(cli, project, cand)
    now = sorted(kept.glob("*/*.solv"))
    assert len(now) == len(repos) and not set(now) & set(repos)


def test_other_bytes_under_a_published_name_are_checked_as_the_candidates(cli, project, mini_build):
    cand = cli.json("-C", project, "stage", mini_build(1))["candidate"]
    cli("-C", project, "verify", cand, "--gate", "closure")
    cli("-C", project, "release", cand)
    # seed 2: `tool` 1.1 again, other bytes, and a dependency nothing provides
    cand = cli.json("-C", project, "stage", mini_build(1, seed=2))["candidate"]
    got = _findings(cli, project, cand)
    assert any(r == "closure.uninstallable" and s == "tool" and "libnowhere1" in m for r, s, m in got), json.dumps(got)
