"""The whole cycle beyond one machine: metadata in PostgreSQL, objects and the published tree in S3
(moto's server), nothing but the spec and keys on the host; real package managers install from the
bucket. (The S3 publishing protocol is tested here, on the demo and the cycle after it: one sample cycle
for both.) (A file of its own, so that pytest-xdist runs it beside test_postgres.py.)"""
from __future__ import annotations

import json

import pytest

from conftest import Cli, s3_env

pytestmark = pytest.mark.slow


def public_read(s3, bucket: str, prefix: str) -> None:
    """Devices read the tree anonymously, as through a CDN (moto wants s3:HeadObject spelled out)."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:HeadObject"],
         "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*"}]}))


def keys(c, bucket: str, prefix: str) -> dict[str, str]:
    return {o["Key"]: o["ETag"] for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])}


def test_demo_then_cycle_on_postgresql_with_objects_and_publishing_in_s3(pg, s3server, tmp_path, monkeypatch):
    """`bindistro demo` (a sample release, every gate but the boots) with nothing but the spec and
    keys on the host: metadata in PostgreSQL, objects in a bucket, the tree published to the same
    bucket; then the cycle goes on from that project. A release uploads the tree (immutable objects
    with a long cache, indexes with a short one); an `upload` after a local-only release sends only
    what is new and never touches an old object; a signed feed is never published unsigned; fsck
    passes on the bucket; the real dnf, apt and opkg install from the bucket over HTTP, as devices
    behind a CDN would. (One demo for the demo's options and the publishing protocol: two sample cycles
    in S3 were most of this file's time. Someone else's bytes in a bucket: test_s3.py, on a small tree.)"""
    import boto3
    from bindistro.publish import public_files
    from bindistro.s3 import mutable
    from bindistro.store.objects import hash_file
    from bindistro_sample.churn import write_churn
    from test_opkg import installed, opkg
    from test_publish import _install_everywhere
    s3_env(monkeypatch, s3server)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cycle")
    public_read(s3, "cycle", "tree")            # devices read the tree, never the store
    d, cli = tmp_path / "demo", Cli()
    r = cli.json("demo", "--no-boot", "--one-series", "--releases", 1, "--out", d, "--database", pg.new_database(),
                 "--objects", "s3://cycle/objects", "--target", "s3://cycle/tree", "--key-algorithm", "ed25519")
    assert [x["release"] for x in r["releases"]] == ["1.1"]
    assert not (d / "state" / "bindistro.db").exists()           # the metadata went to PostgreSQL
    fpr = cli.json("-C", d, "keys", "list")[0]["fingerprint"]
    spec = d / "bindistro.yml"
    with_target = spec.read_text()
    plain = with_target.replace("  target: s3://cycle/tree\n", "")
    assert with_target != plain

    # the demo's releases uploaded: the bucket is the tree
    pub = d / "publish"
    tree = {"tree/" + rel for rel, _ in public_files(pub)}
    assert set(keys(s3, "cycle", "tree/")) == tree
    pkg = next(k for k in tree if k.endswith(".ipk"))
    assert "immutable" in s3.head_object(Bucket="cycle", Key=pkg)["CacheControl"]
    idx = next(k for k in tree if k.endswith("/Packages"))
    assert "max-age=60" in s3.head_object(Bucket="cycle", Key=idx)["CacheControl"]

    def release(k, ok=True):     # the demo's release-1 packages (published) + a probe at 1.k
        deploy = write_churn(tmp_path / f"d{k}", k, 1, d / "builds" / "release-1" / "tmp" / "deploy",
                             prefix="publish-probe")
        cand = cli.json("-C", d, "stage", deploy)["candidate"]
        cli("-C", d, "verify", cand, "--gate", "closure")
        return cand, cli("-C", d, "release", cand, ok=ok)

    # release 2 published locally only, then uploaded: only what is new goes up, indexes rewritten
    spec.write_text(plain)
    before = {rel for rel, _ in public_files(pub)}
    release(2)
    after = {rel for rel, _ in public_files(pub)}
    spec.write_text(with_target)
    etags = keys(s3, "cycle", "tree/")
    counts = cli.json("-C", d, "upload")
    assert counts["uploaded"] == len(after - before) > 0
    assert 0 < counts["rewritten"] and counts["skipped"] + counts["uploaded"] + counts["rewritten"] == len(after)
    now = keys(s3, "cycle", "tree/")
    assert [k for k, e in etags.items() if not mutable(k.removeprefix("tree/")) and now[k] != e] == []   # old objects untouched
    assert cli.json("-C", d, "upload")["uploaded"] == 0      # nothing left: a rerun sends nothing

    # the tree passes fsck and the bucket holds its bytes, object for object (an ETag is the md5 of a
    # single-part upload): the bucket passes as the tree does. (fsck reading a bucket itself, a
    # tree killed mid-upload and someone else's bytes in it: test_s3.py, on a small tree; a
    # full sample tree's ~2,000 GETs through moto cost ~10 s here and check nothing more.)
    ok = cli.json("-C", d, "fsck", "--store", "--publish")
    assert ok["ok"] and ok["checked"]["releases"] == 2, ok["problems"][:3]
    assert keys(s3, "cycle", "tree/") == {"tree/" + rel: f'"{hash_file(p, md5=True)[1]}"' for rel, p in public_files(pub)}
    stored = sum(1 for page in s3.get_paginator("list_objects_v2").paginate(Bucket="cycle", Prefix="objects/")
                 for _ in page.get("Contents", []))
    assert stored >= len([p for p in (d / "state/objects").rglob("*") if p.is_file()])

    # a signed feed is never published unsigned (its old signature would sit beside a new index)
    spec.write_text(with_target.replace(f"signing: {fpr}", "signing: null"))
    cand, r = release(3, ok=False)
    assert r.exit_code == 1 and "published signed" in r.stderr and "keys.signing" in r.stderr, r.stderr
    spec.write_text(with_target)
    cli("-C", d, "release", cand)   # with the target set again: uploaded by the release itself
    assert set(keys(s3, "cycle", "tree/")) == {"tree/" + rel for rel, _ in public_files(pub)}
    _install_everywhere(cli, d, f"{s3server}/cycle/tree", tmp_path, version="1.3")
    root = tmp_path / "opkg-root"       # the device _install_everywhere made: the demo's htop too
    assert "Packages.asc" in (lambda r: r.stdout + r.stderr)(opkg(root, "update"))
    opkg(root, "install", "htop")
    assert installed(root)["htop"]
