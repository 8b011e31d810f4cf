"""The whole cycle beyond one machine: metadata in PostgreSQL, objects and the published tree in S3
(moto's server), nothing but the spec and keys on the host; real package managers install from the
bucket. (A file of its own, so that pytest-xdist runs it beside test_postgres.py.)"""
from __future__ import annotations

import json

import pytest

from conftest import Cli

pytestmark = pytest.mark.slow


def s3_env(monkeypatch, endpoint: str) -> None:
    for k, v in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1", "BINDISTRO_KEY_PASSPHRASE": ""}.items():
        monkeypatch.setenv(k, v)


def public_read(s3, bucket: str, prefix: str) -> None:
    """Devices read the tree anonymously, as through a CDN (moto wants s3:HeadObject spelled out)."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:HeadObject"],
         "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*"}]}))


def test_cycle_on_postgresql_with_objects_and_publishing_in_s3(pg, s3server, tmp_path, monkeypatch, sample_build):
    """The cycle with nothing but the spec and keys on the host: metadata in PostgreSQL, objects in a
    bucket, the tree published to the same bucket; fsck passes on the bucket, and the real dnf, apt
    and opkg install from it over HTTP, as devices behind a CDN would."""
    import boto3
    from bindistro_sample.churn import write_churn
    from test_publish import _install_everywhere
    s3_env(monkeypatch, s3server)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cycle")
    public_read(s3, "cycle", "tree")            # devices read the tree, never the store
    url, d, cli = pg.new_database(), tmp_path / "p", Cli()
    cli("-C", d, "init", "--no-boot", "--database", url)
    spec = d / "bindistro.yml"
    spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n")
                    .replace(f"  database: {url}\n", f"  database: {url}\n  objects: s3://cycle/objects\n")
                    .replace("  url: http://localhost:8000\n", "  url: http://localhost:8000\n  target: s3://cycle/tree\n"))
    fpr = cli.json("-C", d, "keys", "generate", "--uid", "cycle <cycle@bindistro.invalid>")["fingerprint"]
    for k in (1, 2):
        deploy = write_churn(tmp_path / f"d{k}", k, 1, sample_build(1) / "tmp" / "deploy", prefix="publish-probe")
        cand = cli.json("-C", d, "stage", deploy)["candidate"]
        cli("-C", d, "verify", cand, "--gate", "closure")
        cli("-C", d, "release", cand)
    assert cli.json("-C", d, "fsck", "--store", "--publish")["ok"]
    cli("-C", d, "keys", "export", fpr, "--out", tmp_path / "k.asc")
    ok = cli.json("-C", d, "fsck", "--publish", "s3://cycle/tree", "--keyring", tmp_path / "k.asc")
    assert ok["ok"] and ok["checked"]["releases"] == 2, ok["problems"][:3]
    stored = sum(1 for page in s3.get_paginator("list_objects_v2").paginate(Bucket="cycle", Prefix="objects/")
                 for _ in page.get("Contents", []))
    assert stored >= len([p for p in (d / "state/objects").rglob("*") if p.is_file()])
    _install_everywhere(cli, d, f"{s3server}/cycle/tree", tmp_path, version="1.2")


def test_demo_on_postgresql_with_objects_and_tree_in_s3(pg, s3server, tmp_path, monkeypatch):
    """`bindistro demo` (two sample releases, every gate but the boots) with its metadata in
    PostgreSQL, its objects and its published tree in S3: fsck passes on the bucket and a device's
    real opkg installs from it."""
    import boto3
    from test_opkg import device_root, installed, opkg
    s3_env(monkeypatch, s3server)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="demo")
    public_read(s3, "demo", "tree")
    d, cli = tmp_path / "demo", Cli()
    r = cli.json("demo", "--no-boot", "--one-series", "--releases", 2, "--out", d, "--database", pg.new_database(),
                 "--objects", "s3://demo/objects", "--target", "s3://demo/tree")
    assert [x["release"] for x in r["releases"]] == ["1.1", "1.2"]
    assert not (d / "state" / "bindistro.db").exists()           # the metadata went to PostgreSQL
    fpr = cli.json("-C", d, "keys", "list")[0]["fingerprint"]
    cli("-C", d, "keys", "export", fpr, "--out", tmp_path / "k.asc")
    ok = cli.json("-C", d, "fsck", "--publish", "s3://demo/tree", "--keyring", tmp_path / "k.asc")
    assert ok["ok"] and ok["checked"]["releases"] == 2, ok["problems"][:3]
    root = device_root(cli, d, f"{s3server}/demo/tree", tmp_path / "dev")
    assert "Packages.asc" in (lambda r: r.stdout + r.stderr)(opkg(root, "update"))
    opkg(root, "install", "htop")
    assert installed(root)["htop"]
