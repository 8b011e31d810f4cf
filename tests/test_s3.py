"""Publishing to an S3 API (moto's server on 127.0.0.1, started here): a release killed at any point
resumes and never rewrites an object; bad targets are one line. What a release uploads, an upload
after it, fsck of a bucket and devices installing from it: test_beyond_one_machine.py, on the cycle
with PostgreSQL and objects in S3 as well."""
from __future__ import annotations

import pytest

from bindistro.publish import public_files
from bindistro.s3 import mutable
from conftest import Cli, s3_env

pytestmark = pytest.mark.slow       # a server, a dozen killed releases


@pytest.fixture
def s3(s3server, monkeypatch):
    import boto3
    s3_env(monkeypatch, s3server)
    return boto3.client("s3")


def with_target(small_signed, dest, target: str):
    """A copy of the small signed project publishing to `target` (s3://BUCKET/PREFIX)."""
    from conftest import link_copy
    proj = link_copy(small_signed, dest)
    spec = proj / "bindistro.yml"
    spec.write_text(spec.read_text().replace("  url: http://localhost:8000\n",
                                             f"  url: http://localhost:8000\n  target: {target}\n"))
    return proj


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
    been made visible) the bucket holds the tree's bytes, fsck passes on it, and no immutable object
    ever had a second version with other bytes (the bucket keeps every version)."""
    import os
    import signal
    from bindistro.store.objects import hash_file
    from test_publish import cli_in_child, drop
    cli = Cli()
    bucket = "distro-versioned"       # its own bucket, kept until the server stops: every version stays
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    cli("-C", small_signed, "keys", "export", "--out", tmp_path / "k.asc",
        cli.json("-C", small_signed, "keys", "list")[0]["fingerprint"])

    def project(name):
        proj = with_target(small_signed, tmp_path / name, f"s3://{bucket}/{name}")
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
        # the bucket is the tree, object for object (an ETag is the md5 of a single-part upload) and
        # the tree passes fsck: so the bucket does. fsck reads the bucket itself at the last point
        # (each read fetches every object through moto: most of a point's time)
        there = {o["Key"]: o["ETag"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{name}/")
                 for o in page.get("Contents", [])}
        assert there == {f"{name}/{rel}": f'"{hash_file(p, md5=True)[1]}"' for rel, p in public_files(proj / "publish")}
        where = ["--publish", f"s3://{bucket}/{name}", "--keyring", tmp_path / "k.asc"] if k == picks[-1] else ["--publish"]
        ok = cli.json("-C", proj, "fsck", *where)
        assert ok["ok"], (k, points[k - 1][1], ok["problems"][:3])
        etags: dict[str, set] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"{name}/"):
            for v in page.get("Versions", []):
                etags.setdefault(v["Key"], set()).add(v["ETag"])
        twice = [key for key, e in etags.items() if len(e) > 1 and not mutable(key.removeprefix(f"{name}/"))]
        assert twice == [], (k, points[k - 1][1], twice[:3])
        drop(proj)
    drop(probe)


def test_fsck_of_a_bucket_whose_keys_no_tree_can_hold_is_one_line(s3, tmp_path):
    """A bucket is untrusted input: `x` and `x/y` both keys (a file and a directory of one name)."""
    s3.create_bucket(Bucket="odd")
    for key in ("t/releases.json", "t/feeds", "t/feeds/ipk/all/Packages"):
        s3.put_object(Bucket="odd", Key=key, Body=b"{}")
    cli, proj = Cli(), tmp_path / "p"
    cli("-C", proj, "init", "--no-boot")
    r = cli("-C", proj, "fsck", "--publish", "s3://odd/t", ok=False)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and "a key no tree can hold" in lines[0] and "s3://odd/t/feeds" in lines[0], r.stderr


def test_someone_elses_bytes_under_a_published_key_are_named_and_never_overwritten(s3, small_signed, tmp_path):
    """The bucket is not ours alone: fsck names the object whose bytes are not what was published,
    and `upload` refuses to overwrite it (a published key is never rewritten, whoever wrote it)."""
    cli = Cli()
    s3.create_bucket(Bucket="shared")
    proj = with_target(small_signed, tmp_path / "p", "s3://shared/t")
    cli("-C", proj, "upload")
    cli("-C", proj, "keys", "export", "--out", tmp_path / "k.asc", cli.json("-C", proj, "keys", "list")[0]["fingerprint"])
    fsck = ["-C", proj, "fsck", "--publish", "s3://shared/t", "--keyring", tmp_path / "k.asc"]
    assert cli.json(*fsck)["ok"]
    pkg = "t/" + next(rel for rel, _ in public_files(proj / "publish") if rel.endswith(".ipk"))
    s3.put_object(Bucket="shared", Key=pkg, Body=b"not the package")
    r = cli(*fsck, ok=False)
    assert r.exit_code == 1 and f"s3://shared/{pkg}" in r.stderr + r.stdout
    r = cli("-C", proj, "upload", ok=False)
    assert r.exit_code == 1 and "never overwritten" in r.stderr and f"s3://shared/{pkg}" in r.stderr
    assert s3.get_object(Bucket="shared", Key=pkg)["Body"].read() == b"not the package"


def test_upload_hashes_only_files_new_since_the_last_one(s3, small_signed, tmp_path):
    """An upload keeps each file's md5 by inode, size and mtime (a tree's files are never written in
    place): the next upload reads only new files. The cache is only a cache: wrong or missing
    entries never change what is uploaded, and a failed upload does not write it."""
    import json
    from bindistro.store.objects import hash_file
    cli = Cli()
    s3.create_bucket(Bucket="md5s")
    proj = with_target(small_signed, tmp_path / "p", "s3://md5s/t")
    spec = proj / "bindistro.yml"
    cache = proj / "state" / "upload-md5.json"
    first = cli.json("-C", proj, "upload")
    files = list(public_files(proj / "publish"))
    assert first["uploaded"] == len(files)
    kept = json.loads(cache.read_text())["md5"]
    assert sorted(kept.values()) == sorted(hash_file(p, md5=True)[1] for _, p in files)
    before = cache.stat().st_mtime_ns
    assert cli.json("-C", proj, "upload")["skipped"] == len(files)
    assert cache.stat().st_mtime_ns == before            # nothing new: not rewritten
    # a release adds files: the cache follows the tree
    cli("-C", proj, "release", 2)
    files = list(public_files(proj / "publish"))
    assert sorted(json.loads(cache.read_text())["md5"].values()) == sorted(hash_file(p, md5=True)[1] for _, p in files)
    # lying entries: where the bucket disagrees, the file is hashed again before anything is sent
    # or refused; nothing is uploaded, and the cache is right again
    right = json.loads(cache.read_text())["md5"]
    cache.write_text(json.dumps({"md5": {k: "0" * 32 for k in right}}))
    assert cli.json("-C", proj, "upload")["skipped"] == len(files)
    assert json.loads(cache.read_text())["md5"] == right
    cache.write_text("not json")                         # unreadable: as if there were none
    assert cli.json("-C", proj, "upload")["skipped"] == len(files)
    assert json.loads(cache.read_text())["md5"] == right
    # a failed upload leaves the state dir as it was: release 3 made locally, then someone else's
    # bytes under one of its new immutable keys
    targeted = spec.read_text()
    spec.write_text(targeted.replace("  target: s3://md5s/t\n", ""))
    cli("-C", proj, "release", 3)
    spec.write_text(targeted)
    new = sorted(rel for rel, _ in public_files(proj / "publish") if rel.endswith(".ipk")
                 and rel not in {r for r, _ in files})
    s3.put_object(Bucket="md5s", Key=f"t/{new[0]}", Body=b"someone else's")
    before = cache.read_bytes()
    r = cli("-C", proj, "upload", ok=False)
    assert r.exit_code == 1 and "holds other bytes than" in r.stderr, r.stderr
    assert cache.read_bytes() == before
