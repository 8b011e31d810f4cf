"""Publishing to an S3 API (moto's server on 127.0.0.1, started here): new objects first and never
overwritten, indexes after, a second release uploads only what is new, fsck checks the bucket like a
tree, and the real opkg, dnf and apt install from it over HTTP."""
from __future__ import annotations

import json

import pytest

from bindistro.publish import public_files
from bindistro.s3 import mutable
from conftest import Cli
from test_publish import _install_everywhere

pytestmark = pytest.mark.slow       # a server, real package managers

BUCKET, PREFIX = "distro", "sample"


@pytest.fixture
def s3(s3server, monkeypatch):
    import boto3
    for k, v in {"AWS_ENDPOINT_URL": s3server, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1", "BINDISTRO_KEY_PASSPHRASE": ""}.items():
        monkeypatch.setenv(k, v)
    c = boto3.client("s3")
    c.create_bucket(Bucket=BUCKET)
    # devices read anonymously, as through a CDN (moto wants s3:HeadObject spelled out for opkg's
    # HEAD requests; real S3 has no such action: s3:GetObject covers HEAD there)
    c.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:HeadObject"],
         "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    yield c
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        if page.get("Contents"):
            c.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": o["Key"]} for o in page["Contents"]]})
    c.delete_bucket(Bucket=BUCKET)


def keys(c) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])}


def test_releases_to_s3_install_with_real_package_managers(s3, s3server, tmp_path, sample_build):
    cli, proj = Cli(), tmp_path / "p"
    cli("-C", proj, "init", "--no-boot")
    spec = proj / "bindistro.yml"
    spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n"))
    fpr = cli.json("-C", proj, "keys", "generate", "--uid", "s3 test <s3@bindistro.invalid>")["fingerprint"]
    plain = spec.read_text()
    with_target = plain.replace("  url: http://localhost:8000\n",
                                f"  url: http://localhost:8000\n  target: s3://{BUCKET}/{PREFIX}\n")
    assert with_target != plain
    spec.write_text(with_target)

    def deploy(k):      # the sample's packages (every feed a device config names) + a probe at 1.k
        from bindistro_sample.churn import write_churn
        return write_churn(tmp_path / f"d{k}", k, 1, sample_build(1) / "tmp" / "deploy", prefix="publish-probe")

    def release(k):
        c = cli.json("-C", proj, "stage", deploy(k))["candidate"]
        cli("-C", proj, "verify", c, "--gate", "closure")
        cli("-C", proj, "release", c)

    release(1)                  # the release uploads: the bucket is the tree
    pub = proj / "publish"
    tree = {PREFIX + "/" + rel for rel, _ in public_files(pub)}
    assert set(keys(s3)) == tree
    pkg = next(k for k in tree if k.endswith(".ipk"))
    assert "immutable" in s3.head_object(Bucket=BUCKET, Key=pkg)["CacheControl"]
    idx = next(k for k in tree if k.endswith("/Packages"))
    assert "max-age=60" in s3.head_object(Bucket=BUCKET, Key=idx)["CacheControl"]

    # release 2 published locally only, then uploaded: only what is new goes up, indexes rewritten
    spec.write_text(plain)
    before = {rel for rel, _ in public_files(pub)}
    release(2)
    after = {rel for rel, _ in public_files(pub)}
    spec.write_text(with_target)
    etags = keys(s3)
    counts = cli.json("-C", proj, "upload")
    assert counts["uploaded"] == len(after - before) > 0
    assert 0 < counts["rewritten"] and counts["skipped"] + counts["uploaded"] + counts["rewritten"] == len(after)
    now = keys(s3)
    assert [k for k, e in etags.items() if not mutable(k.removeprefix(PREFIX + "/")) and now[k] != e] == []   # old objects untouched
    assert cli.json("-C", proj, "upload")["uploaded"] == 0      # nothing left: a rerun sends nothing

    cli("-C", proj, "keys", "export", fpr, "--out", tmp_path / "k.asc")
    ok = cli.json("-C", proj, "fsck", "--publish", f"s3://{BUCKET}/{PREFIX}", "--keyring", tmp_path / "k.asc")
    assert ok["ok"], ok["problems"]

    # a signed feed is never published unsigned (its old signature would sit beside a new index)
    spec.write_text(with_target.replace(f"signing: {fpr}", "signing: null"))
    c = cli.json("-C", proj, "stage", deploy(3))["candidate"]
    cli("-C", proj, "verify", c, "--gate", "closure")
    r = cli("-C", proj, "release", c, ok=False)
    assert r.exit_code == 1 and "published signed" in r.stderr and "keys.signing" in r.stderr, r.stderr
    spec.write_text(with_target)
    cli("-C", proj, "release", c)  # with the target set again: uploaded by the release itself
    assert set(keys(s3)) == {PREFIX + "/" + rel for rel, _ in public_files(pub)}
    _install_everywhere(cli, proj, f"{s3server}/{BUCKET}/{PREFIX}", tmp_path, version="1.3", formats=("rpm", "deb", "ipk"))

    # someone else's bytes under a published key: fsck names the object, upload never overwrites it
    s3.put_object(Bucket=BUCKET, Key=pkg, Body=b"not the package")
    r = cli("-C", proj, "fsck", "--publish", f"s3://{BUCKET}/{PREFIX}", "--keyring", tmp_path / "k.asc", ok=False)
    assert r.exit_code == 1 and f"s3://{BUCKET}/{pkg}" in r.stderr + r.stdout
    r = cli("-C", proj, "upload", ok=False)
    assert r.exit_code == 1 and "never overwritten" in r.stderr and f"s3://{BUCKET}/{pkg}" in r.stderr
    assert s3.get_object(Bucket=BUCKET, Key=pkg)["Body"].read() == b"not the package"


def test_bad_target_and_unreachable_endpoint_are_one_line(tmp_path, monkeypatch):
    cli, proj = Cli(), tmp_path / "p"
    cli("-C", proj, "init", "--no-boot")
    spec = proj / "bindistro.yml"
    spec.write_text(spec.read_text().replace("  url: http://localhost:8000\n",
                                             "  url: http://localhost:8000\n  target: s3://Bad_Bucket\n"))
    r = cli("-C", proj, "upload", ok=False)
    assert r.exit_code == 1 and "publish.target: must be s3://BUCKET" in r.stderr
    spec.write_text(spec.read_text().replace("s3://Bad_Bucket", "s3://distro/x"))
    for k, v in {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
                 "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(k, v)
    r = cli("-C", proj, "upload", ok=False)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and "s3://distro/x/: cannot list" in lines[0], r.stderr


def test_release_to_s3_killed_at_any_point_resumes_and_never_rewrites_an_object(s3, small_signed, tmp_path):
    """SIGKILL at ≥ 10 points spread over a release that uploads to the bucket (generation, then the
    upload, object by object): after the rerun (`release`, then `upload` when the release had already
    been made visible) the bucket is the tree, fsck passes on it, and no immutable object ever had a
    second version with other bytes (the bucket keeps every version)."""
    import os
    import signal
    from conftest import link_copy
    from test_publish import cli_in_child, drop
    cli = Cli()
    bucket = "distro-versioned"       # its own bucket, kept until the server stops: every version stays
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    cli("-C", small_signed, "keys", "export", "--out", tmp_path / "k.asc",
        cli.json("-C", small_signed, "keys", "list")[0]["fingerprint"])

    def project(name):
        proj = link_copy(small_signed, tmp_path / name)
        spec = proj / "bindistro.yml"
        spec.write_text(spec.read_text().replace("  url: http://localhost:8000\n",
                                                 f"  url: http://localhost:8000\n  target: s3://{bucket}/{name}\n"))
        cli("-C", proj, "upload")                 # the bucket holds release 1, as the tree does
        return proj

    probe = project("probe")
    log = tmp_path / "points.log"
    assert cli_in_child(probe, ["release", "2"], 0, log) == 0
    points = [line.split() for line in log.read_text().splitlines()]
    uploads = [int(n) for n, what in points if what == "upload"]
    assert len(uploads) > 10
    picks = sorted({max(1, round(i * len(points) / 9)) for i in range(1, 10)} | {uploads[0], uploads[-1]})
    assert len(picks) >= 10
    for k in picks:
        name = f"k{k}"
        proj = project(name)
        status = cli_in_child(proj, ["release", "2"], k)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (k, status)
        r = cli("-C", proj, "release", 2, ok=None)
        assert r.exit_code == 0 or "already published" in r.stderr, r.stderr
        cli("-C", proj, "upload")
        there = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{name}/")
                 for o in page.get("Contents", [])}
        assert there == {f"{name}/{rel}" for rel, _ in public_files(proj / "publish")}
        ok = cli.json("-C", proj, "fsck", "--publish", f"s3://{bucket}/{name}", "--keyring", tmp_path / "k.asc")
        assert ok["ok"], (k, points[k - 1][1], ok["problems"][:3])
        etags: dict[str, set] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"{name}/"):
            for v in page.get("Versions", []):
                etags.setdefault(v["Key"], set()).add(v["ETag"])
        twice = [key for key, e in etags.items() if len(e) > 1 and not mutable(key.removeprefix(f"{name}/"))]
        assert twice == [], (k, points[k - 1][1], twice[:3])
        drop(proj)
    drop(probe)
