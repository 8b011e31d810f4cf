"""The demo's publish tree as devices and mirrors read it (kept apart from test_publish.py, whose crash
tests must not wait for the demo)."""
from __future__ import annotations

import http.client
import json
import shutil
import stat

from bindistro.publish import public_files
from httpserve import serve, world_readable_copy


def fsck_ok(cli, proj, *what):
    r = cli("-C", proj, "fsck", *what, "--json", ok=None)
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data["ok"], [p for p in data["problems"] if p["severity"] == "error"][:5]
    return data


def test_demo_tree_is_served_to_another_user_and_fsck_passes(demo, cli):
    data = fsck_ok(cli, demo)
    assert data["checked"]["releases"] == 3 and data["checked"]["feeds"] == 18
    pub = world_readable_copy(demo / "publish")
    try:
        files = dict(public_files(pub))
        assert len(files) > 1500 and "releases.json" in files and "feeds/rpm/noarch/repodata/repomd.xml" in files
        with serve(pub, user="nobody") as url:
            host, port = url.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            for rel, p in files.items():
                conn.request("GET", "/" + rel)
                r = conn.getresponse()
                body = r.read()
                assert r.status == 200, f"{rel}: HTTP {r.status}"
                assert body == p.read_bytes(), rel
    finally:
        shutil.rmtree(pub.parent)
    # modes as published: files 0644, directories 0755, whatever the publisher's umask was
    for rel, p in public_files(demo / "publish"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, rel
        assert stat.S_IMODE(p.parent.stat().st_mode) == 0o755, rel
