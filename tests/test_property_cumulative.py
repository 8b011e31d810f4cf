"""Property: whatever sequence of releases is published — even out of order, with every verify
finding waived, with other bytes under a released name and version — no published file is changed or
removed, and every version ever released stays listed in its feed's index.

The releases are conftest's mini builds (a dozen real packages per format, both machines' arches),
not the 340-package sample: the guarantee is the publish layer's, which does not depend on the count,
and small releases let hypothesis try twice as many sequences."""
import hashlib
import json
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bindistro.cli import main

from bindistro.formats import FORMATS
from bindistro.model import rewritten
from bindistro.publish import public_files


def snapshot(pub: Path) -> dict[str, str]:
    """Every published file a release may not rewrite (model.rewritten: indexes, which only grow, the
    listing and policy, which describe the present, and the feed viewer)."""
    return {rel: hashlib.sha256(p.read_bytes()).hexdigest()
            for rel, p in public_files(pub) if not rewritten(rel)} if pub.exists() else {}


def listed(pub: Path) -> set[tuple[str, str, str, str]]:
    """(format, feed, name, version) of every index entry of every feed."""
    out = set()
    for fmt in FORMATS.values():
        for feed in sorted((pub / "feeds" / fmt.name).glob("*")):
            for idx in fmt.find_indexes(feed):
                out |= {(fmt.name, feed.name, e.name, e.version) for e in fmt.read_index(idx)}
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.integers(1, 3)), min_size=1, max_size=5))
@example([(1, 1), (2, 1)])             # other bytes under a released version: refused
@example([(1, 3), (2, 1), (1, 2)])     # out of order, a waived closure error, a dropped package
def test_published_files_never_change(mini_build, tmp_path, steps):
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    # a directory per example, removed with the run's (not one by one: see conftest.pytest_sessionfinish)
    tmp = tempfile.mkdtemp(dir=tmp_path)
    proj = Path(tmp) / "p"
    assert run("-C", proj, "init", "--no-boot").exit_code == 0
    spec = proj / "bindistro.yml"
    spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n"))
    pub = proj / "publish"
    released: set[tuple[str, str, str]] = set()
    went_out: set[tuple[int, int]] = set()          # (seed, release) steps that were released
    for seed, rel in steps:
        before = snapshot(pub)
        listed_before = listed(pub)
        st_ = run("-C", proj, "stage", mini_build(rel, seed), "--json")
        assert st_.exit_code == 0, st_.stderr
        cand = json.loads(st_.stdout)["candidate"]
        # an operator who waives every finding of the gate that refuses most (closure: the others
        # have tests of their own): what remains is the publish layer's own guarantee
        rep = json.loads(run("-C", proj, "verify", cand, "--gate", "closure", "--gate", "buildhistory",
                             "--json").stdout)
        errors = [f for f in rep["findings"] if f["severity"] == "error"]
        assert seed == 1 or any("libnowhere1" in f["message"] for f in errors), errors
        for f in errors:
            assert run("-C", proj, "waive", cand, f["id"], "--reason", "property test").exit_code == 0
        r = run("-C", proj, "release", cand, "--json")
        after = snapshot(pub)
        # nothing published is changed or removed, whether the release went through or not
        assert all(after.get(k) == v for k, v in before.items())
        # the other seed's release of this number made `tool` 1.<rel> with other bytes
        assert (r.exit_code != 0) == any(rel == r2 and seed != s2 for s2, r2 in went_out), (steps, r.stderr)
        if r.exit_code == 0:
            went_out.add((seed, rel))
            manifest = json.loads((pub / "releases" / json.loads(r.stdout)["release"] / "manifest.json").read_text())
            released |= {(a["format"], a["arch"], a["name"], a["version"])
                         for a in manifest["artifacts"] if a["kind"] == "package"}
        else:
            # refused (same name+version, other content): the feeds are exactly as before
            assert r.exit_code == 1 and "would replace published" in r.stderr
            assert after == before and listed(pub) == listed_before
        assert released <= listed(pub)
