"""PostgreSQL as the metadata DB: the same cycle, schema and migrations as SQLite, and commands on
different hosts (separate state dirs, one DB, one publish tree) that serialise where they must."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bindistro.store.schema import SCHEMA_VERSION
from conftest import Cli, link_copy

pytestmark = pytest.mark.slow       # a server, real cycles, concurrent processes

BIN = Path(sys.executable).parent / "bindistro"


def run(*args, env=None, ok=True):
    r = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})))
    if ok:
        assert r.returncode == 0, f"{args}: {r.stderr}"
    return r


def churn(out: Path, k: int, count: int = 6) -> Path:
    from bindistro_sample.churn import write_churn
    return write_churn(out, k, count, formats=("ipk", "rpm", "deb"), prefix="pg")


def cycle(d: Path, url: str | None, deploys: list[Path]) -> dict:
    """init (ipk, rpm, deb), keys, three stage -> verify -> release, fsck; what a reader sees."""
    cli = Cli()
    cli("-C", d, "init", "--no-boot", *(["--database", url] if url else []))
    spec = d / "bindistro.yml"
    spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n"))
    cli("-C", d, "keys", "generate", "--uid", "pg test <pg@bindistro.invalid>", "--algorithm", "ed25519")
    for deploy in deploys:
        cand = cli.json("-C", d, "stage", deploy)["candidate"]
        cli("-C", d, "verify", cand, "--gate", "closure")
        cli("-C", d, "release", cand)
    cli("-C", d, "fsck", "--store", "--publish")
    rels = cli.json("-C", d, "releases")
    manifests = {r["release"]: json.loads((d / "publish" / "releases" / r["release"] / "manifest.json").read_text())
                 for r in rels}
    return {"releases": [(r["release"], r["candidate"]) for r in rels],
            # rpms carry the project key's signature: their bytes differ between two projects
            "artifacts": {n: sorted((a["path"], a["sha256"] if not a["path"].endswith(".rpm") else "signed")
                                    for a in m["artifacts"]) for n, m in manifests.items()}}


def test_whole_cycle_gives_the_same_releases_on_both_back_ends(pg, tmp_path, monkeypatch):
    monkeypatch.setenv("BINDISTRO_KEY_PASSPHRASE", "")
    url = pg.new_database()
    deploys = [churn(tmp_path / f"deploy-{k}", k) for k in (1, 2, 3)]
    on_pg = cycle(tmp_path / "pg", url, deploys)
    on_sqlite = cycle(tmp_path / "sqlite", None, deploys)
    assert on_pg == on_sqlite
    assert not (tmp_path / "pg" / "state" / "bindistro.db").exists()     # nothing went to SQLite
    e = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with e.connect() as c:
        assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_VERSION
        assert c.execute(sa.text("SELECT count(*) FROM releases")).scalar() == 3
        # 64-bit where files need it: an mtime in nanoseconds does not fit PostgreSQL's integer
        assert c.execute(sa.text("SELECT max(mtime_ns) FROM filestat")).scalar() > 2 ** 31
    e.dispose()
    # the env var points a project at the DB too, and a password in the spec is refused
    r = run("-C", tmp_path / "sqlite", "releases", "--json", env={"BINDISTRO_DATABASE": url})
    assert [x["release"] for x in json.loads(r.stdout)] == ["1.1", "1.2", "1.3"]
    spec = tmp_path / "pg" / "bindistro.yml"
    spec.write_text(spec.read_text().replace("postgresql://postgres@", "postgresql://postgres:secret@"))
    r = run("-C", tmp_path / "pg", "releases", ok=False)
    assert r.returncode == 1 and "state.database: holds a password" in r.stderr and "secret" not in r.stderr


def test_restaging_reads_back_the_same_fields_on_both_back_ends(pg, tmp_path):
    """A file staged before is not read again: stage takes its architecture (and rpm's primary XML)
    out of the stored control data in SQL (MetaDB.package_fields), which each back end does its own
    way; the fields equal the stored ones, and the second stage hashes nothing and lists the same."""
    from bindistro.formats import get as get_format
    from bindistro.store.db import MetaDB
    from bindistro.store.schema import package_meta
    deploy = churn(tmp_path / "deploy", 1, 3)
    cli = Cli()
    for url in (pg.new_database(), None):
        d = tmp_path / ("pg" if url else "sqlite")
        cli("-C", d, "init", "--no-boot", *(["--database", url] if url else []))
        spec = d / "bindistro.yml"
        spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n"))
        first = cli.json("-C", d, "stage", deploy)
        again = cli.json("-C", d, "stage", deploy)
        assert again["hashed"] == 0 and again["hash_cache_hits"] == first["hashed"]
        assert (again["feeds"], again["kinds"]) == (first["feeds"], first["kinds"])
        db = MetaDB(url.replace("postgresql://", "postgresql+psycopg://") if url else f"sqlite:///{d / 'state' / 'bindistro.db'}")
        with db.engine.connect() as c:
            rows = c.execute(sa.select(package_meta.c.sha256, package_meta.c.format, package_meta.c.meta)).all()
        assert {f for _, f, _ in rows} == {"ipk", "rpm", "deb"}
        for fmt in ("ipk", "rpm", "deb"):
            keys = get_format(fmt).KNOWN_FIELDS
            full = {sha: meta for sha, f, meta in rows if f == fmt}
            got = db.package_fields(fmt, sorted(full), keys)
            assert set(got) == set(full)
            for sha, (_name, _version, fields) in got.items():
                want = {k if isinstance(k, str) else k[0]: full[sha][k] if isinstance(k, str) else full[sha][k[0]][:1]
                        for k in keys if (k if isinstance(k, str) else k[0]) in full[sha]}
                assert fields == want and fields
        db.engine.dispose()


def test_database_unreachable_is_one_line(tmp_path):
    run("-C", tmp_path / "p", "init", "--no-boot")
    r = run("-C", tmp_path / "p", "releases", env={"BINDISTRO_DATABASE": f"postgresql://nobody@/x?host={tmp_path}"},
            ok=False)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "postgresql+psycopg://nobody@/x" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_two_hosts_release_one_at_a_time(pg, tmp_path, monkeypatch):
    """Two state dirs (two hosts) sharing one DB and one publish tree: two releases at once
    serialise on the DB's lock, both land, and the tree is whole."""
    monkeypatch.setenv("BINDISTRO_KEY_PASSPHRASE", "")
    url = pg.new_database()
    a, cli = tmp_path / "a", Cli()
    cli("-C", a, "init", "--no-boot", "--database", url)
    spec = a / "bindistro.yml"
    spec.write_text(spec.read_text().replace("dir: publish", f"dir: {tmp_path / 'publish'}"))
    cli("-C", a, "keys", "generate", "--uid", "pg test <pg@bindistro.invalid>", "--algorithm", "ed25519")
    cands = []
    for k in (1, 2, 3):
        cands.append(cli.json("-C", a, "stage", churn(tmp_path / f"deploy-{k}", k, 2))["candidate"])
        cli("-C", a, "verify", cands[-1], "--gate", "closure")
    cli("-C", a, "release", cands[0])
    b = link_copy(a, tmp_path / "b")        # the other host: its own state dir (objects, keys, locks)
    shutil.rmtree(b / "state" / "work", ignore_errors=True)
    from bindistro.store.db import MetaDB
    db = MetaDB(url)
    env = dict(os.environ, BINDISTRO_KEY_PASSPHRASE="")
    errs = [tmp_path / "a.err", tmp_path / "b.err"]
    with db.lock("publish", "the test holds it"):       # both start while a third party publishes
        procs = [subprocess.Popen([str(BIN), "-C", str(d), "release", str(c)], stdout=subprocess.PIPE,
                                  stderr=e.open("w"), text=True, env=env)
                 for d, c, e in ((a, cands[1], errs[0]), (b, cands[2], errs[1]))]
        # until both wait for it (on a busy machine a process may take seconds to get there)
        deadline = time.monotonic() + 120
        while not all("waiting for the publish lock" in e.read_text() for e in errs):
            assert [p.poll() for p in procs] == [None, None], [e.read_text() for e in errs]
            assert time.monotonic() < deadline, [e.read_text() for e in errs]
            time.sleep(0.1)
    results = [p.communicate(timeout=120) for p in procs]
    db.engine.dispose()
    assert [p.returncode for p in procs] == [0, 0], (results, [e.read_text() for e in errs])
    rels = json.loads(run("-C", a, "releases", "--json").stdout)
    assert sorted(r["candidate"] for r in rels) == cands and len({r["release"] for r in rels}) == 3
    run("-C", a, "fsck", "--publish")
    # a candidate is released once only, whichever host asks
    assert run("-C", b, "release", cands[1], ok=False).returncode == 1


def test_verify_jobs_on_two_hosts_collect_what_a_local_verify_finds(pg, tmp_path, monkeypatch):
    """`verify --plan`'s jobs split between two hosts (two state dirs, one DB), then `--collect`: the
    same findings as `verify` run in one place; the CI configurations name every planned job."""
    import yaml
    monkeypatch.setenv("BINDISTRO_KEY_PASSPHRASE", "")
    url = pg.new_database()
    a, cli = tmp_path / "a", Cli()
    cli("-C", a, "init", "--no-boot", "--database", url)
    spec = a / "bindistro.yml"
    spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n"))
    cli("-C", a, "release", cli.json("-C", a, "stage", churn(tmp_path / "d1", 1, 3))["candidate"])
    cand = cli.json("-C", a, "stage", churn(tmp_path / "d2", 2, 3))["candidate"]
    def seen(findings):
        # the payload gate's summary counts what was unpacked now: the local run left its cache warm
        return {(f["id"], f["severity"], f["message"] if f["rule"] != "payload.summary" else "") for f in findings}
    local = seen(cli.json("-C", a, "verify", cand, ok=None)["findings"])
    plan = cli.json("-C", a, "verify", cand, "--plan")
    ids = [j["id"] for j in plan]
    assert {"closure:rpm:qemuarm64", "upgrade:deb:qemux86-64", "pm-upgrade:ipk:qemux86-64", "logs"} <= set(ids)
    assert all(j["stage"] == 2 for j in plan if j["gate"] == "pm-upgrade")
    b = link_copy(a, tmp_path / "b")
    r = cli("-C", a, "verify", cand, "--collect", ok=False)
    assert r.exit_code == 1 and "not run yet" in r.stderr
    # each job a process of its own, as a CI runner starts it (forked from a zygote that has the
    # imports done: zygote.py); within a stage of the CI engine, the two hosts run side by side
    from concurrent.futures import ThreadPoolExecutor
    from zygote import Zygotes
    with Zygotes() as zygotes, ThreadPoolExecutor(2) as hosts:
        def job(host: Path, j: str):
            return zygotes.get().run(["-C", host, "verify", cand, "--job", j], tmp_path, dict(os.environ), timeout=300)
        for stage in (1, 2):
            mine = [j["id"] for j in plan if j["stage"] == stage]
            for pair in [mine[i:i + 2] for i in range(0, len(mine), 2)]:
                for r in list(hosts.map(job, (a, b)[:len(pair)], pair)):
                    assert r.returncode == 0, r.stderr
    collected = cli.json("-C", b, "verify", cand, "--collect", ok=None)
    assert seen(collected["findings"]) == local
    assert cli.json("-C", a, "verify", cand, "--last", ok=None)["findings"] == collected["findings"]
    # the CI configurations run exactly the planned jobs
    gl = yaml.safe_load(cli("-C", a, "ci", "gitlab", cand).stdout)
    assert sorted(j for k in gl if k.startswith("verify-") for j in gl[k]["parallel"]["matrix"][0]["JOB"]) == sorted(ids)
    assert gl["collect"]["stage"] == "collect"
    bb = cli("-C", a, "ci", "buildbot", cand).stdout
    compile(bb, "master.cfg", "exec")
    assert all(f'"{i}"' in bb for i in ids)
    r = cli("-C", a, "verify", cand, "--job", "nope", ok=False)
    assert r.exit_code == 1 and "no verify job 'nope'" in r.stderr


def test_two_hosts_share_state_in_postgresql_and_objects_in_s3(pg, s3server, tmp_path, monkeypatch):
    """Host A stages with `state.objects: s3://…`: its new objects go to the bucket before the DB
    names them. Host B — another directory holding only the spec, no object — verifies the same
    candidate from the shared DB and bucket and finds what A finds; an object whose bytes in the
    bucket are not its name is refused with one line naming the key."""
    import boto3
    for k, v in {"AWS_ENDPOINT_URL": s3server, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1", "BINDISTRO_KEY_PASSPHRASE": ""}.items():
        monkeypatch.setenv(k, v)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="objects")
    url = pg.new_database()
    a, b, cli = tmp_path / "a", tmp_path / "b", Cli()
    cli("-C", a, "init", "--no-boot", "--database", url)
    spec = a / "bindistro.yml"
    spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n")
                    .replace(f"  database: {url}\n", f"  database: {url}\n  objects: s3://objects/store\n"))
    assert "objects: s3://objects/store" in spec.read_text()
    cli("-C", a, "release", cli.json("-C", a, "stage", churn(tmp_path / "d1", 1, 3))["candidate"])
    cand = cli.json("-C", a, "stage", churn(tmp_path / "d2", 2, 3))["candidate"]
    bucket = {o["Key"].rsplit("/", 1)[-1] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="objects")
              for o in page.get("Contents", [])}
    local_a = {p.name for p in (a / "state/objects").rglob("*") if p.is_file()}
    assert local_a and local_a <= bucket              # every object A made is shared

    b.mkdir()
    shutil.copy(spec, b / "bindistro.yml")            # host B: the spec, nothing else
    def seen(findings):
        return {(f["id"], f["severity"]) for f in findings}
    here = seen(cli.json("-C", a, "verify", cand, ok=None)["findings"])
    there = seen(cli.json("-C", b, "verify", cand, ok=None)["findings"])
    assert here == there
    fetched = {p.name for p in (b / "state/objects").rglob("*") if p.is_file()}
    assert fetched and fetched <= bucket
    assert cli.json("-C", b, "fsck", "--store")["ok"]

    # a damaged object in the bucket: host C refuses it, naming the key
    c = tmp_path / "c"
    c.mkdir()
    shutil.copy(spec, c / "bindistro.yml")
    sha = sorted(fetched)[0]
    key = f"store/{sha[:2]}/{sha[2:4]}/{sha}"
    s3.put_object(Bucket="objects", Key=key, Body=b"not the object")
    r = cli("-C", c, "verify", cand, ok=False)
    assert r.exit_code == 1 and f"s3://objects/{key}" in r.stderr and "refused" in r.stderr, r.stderr
    assert not (c / "state/objects" / sha[:2] / sha[2:4] / sha).exists()
