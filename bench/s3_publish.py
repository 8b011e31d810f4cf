#!/usr/bin/env python3
"""Publishing to S3 at distro scale: a world-sized sample released into a local S3 server (moto's S3 back
end on 127.0.0.1, served by the tests' keep-alive server, tests/wsgiserve.py: moto's own server
finds the service of each request among all of moto's, ~3x the CPU of a request), then a second
release with ~5 % churn. Prints per release the
objects uploaded, skipped and rewritten, the bytes sent and the time of the release (local
generation + upload); the second release must upload only its new objects plus the indexes.

    .venv/bin/python bench/s3_publish.py [--packages 20000] [--formats ipk,rpm,deb] [--smoke] [--json]

--smoke: 40 small packages, ipk, an Ed25519 key, in deploy dirs the churn writer makes instead of sample builds (does
the publishing path run? CI runs this; figures are printed, never judged there).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "bindistro"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))     # wsgiserve


def cli(*args, env=None) -> str:
    r = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"bindistro {' '.join(map(str, args[:4]))}: {r.stderr.strip()[-500:]}")
    return r.stdout




def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packages", type=int, default=20000)
    ap.add_argument("--formats", default="ipk,rpm,deb")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.smoke:         # the sample distro alone is ~1,800 objects: the smoke checks the path, not the size
        a.packages, a.formats = 40, "ipk"
    fmts = a.formats.split(",")
    from moto.moto_server.werkzeug_app import create_backend_app
    from wsgiserve import start
    server, url = start(create_backend_app("s3"))       # a thread here: the steps run as processes
    env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1", BINDISTRO_KEY_PASSPHRASE="")
    tmp = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    rows = []
    try:
        import boto3
        boto3.client("s3", endpoint_url=url, aws_access_key_id="bench", aws_secret_access_key="bench",
                     region_name="us-east-1").create_bucket(Bucket="distro")
        proj = tmp / "proj"
        cli("-C", proj, "init", "--no-boot", env=env)
        spec = proj / "bindistro.yml"
        spec.write_text(spec.read_text().replace("- ipk\n", "".join(f"- {f}\n" for f in fmts))
                        .replace("  url: http://localhost:8000\n", "  url: http://localhost:8000\n  target: s3://distro/bench\n"))
        cli("-C", proj, "keys", "generate", "--uid", "bench <bench@bindistro.invalid>",
            *(["--algorithm", "ed25519"] if a.smoke else []), env=env)
        for k in (1, 2):
            build = tmp / (f"deploy-{k}" if a.smoke else "build")     # sample-build keeps its build dir
            if a.smoke:
                from bindistro_sample.churn import write_churn
                write_churn(build, k, a.packages, formats=fmts)
            else:
                cli("sample-build", build, "--release", k, "--packages", a.packages, "--formats", ",".join(fmts), env=env)
            cand = json.loads(cli("-C", proj, "stage", build, "--json", env=env))["candidate"]
            cli("-C", proj, "verify", cand, "--gate", "closure", env=env)
            # the release uploads; a following `upload` counts what it sent (it finds nothing to send)
            spec.write_text(spec.read_text().replace("  target: s3://distro/bench\n", ""))
            t = time.perf_counter()
            cli("-C", proj, "release", cand, env=env)
            local = time.perf_counter() - t
            spec.write_text(spec.read_text().replace("  url: http://localhost:8000\n",
                                                     "  url: http://localhost:8000\n  target: s3://distro/bench\n"))
            t = time.perf_counter()
            counts = json.loads(cli("-C", proj, "upload", "--json", env=env))
            up = time.perf_counter() - t
            again = json.loads(cli("-C", proj, "upload", "--json", env=env))
            row = {"release": k, "release_seconds": round(local, 2), "upload_seconds": round(up, 2), **counts,
                   "second_upload_sent": again["uploaded"] + again["rewritten"]}
            rows.append(row)
            print(f"release {k}: local release {local:6.2f} s, upload {up:6.2f} s: {counts['uploaded']} objects "
                  f"({counts['uploaded_bytes'] / 1e6:.1f} MB) uploaded, {counts['rewritten']} indexes rewritten, "
                  f"{counts['skipped']} already there; a second upload sent {row['second_upload_sent']}")
        print(f"s3 publish: {a.packages} packages x {','.join(fmts)}: release 2 uploaded {rows[-1]['uploaded']} new objects "
              f"+ {rows[-1]['rewritten']} indexes of {rows[-1]['uploaded'] + rows[-1]['rewritten'] + rows[-1]['skipped']}")
        if a.json:
            print(json.dumps(rows, indent=1))
    finally:
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
