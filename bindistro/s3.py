"""Publishing to any S3 API (behind a CDN): the local publish tree stays the one atomic source; after
each publishing command its current generation is uploaded to `publish.target: s3://BUCKET/PREFIX`.

S3 has no atomic switch of many keys, so the order is what keeps readers safe:
  1. immutable files (packages, images, manifests, content-named repodata …) first, each a
     conditional write (If-None-Match: *): a key that exists is never overwritten, and one holding
     other bytes stops the upload with an error — published bytes never change, here either;
  2. then the files a release rewrites (model.rewritten): in each feed the index before its signature,
     the feed viewer's site/ and api/, and releases.json, SECURITY.md and security.txt last.
A device reading index then signature sees a mismatched pair only while one object is written.
Immutable keys get `Cache-Control: public, max-age=31536000, immutable`, the rewritten ones a short
max-age, so a CDN serves no stale index for longer than that. Every key already there with the same
MD5 (its ETag) and size is skipped: an interrupted upload resumes without re-sending anything.
Endpoint and credentials come from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …), never
from the spec.
"""
from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
from pathlib import Path

from . import faults
from .errors import BindistroError
from .model import FEED_SIGNATURES, LISTINGS, rewritten

SIGNATURES = {n.rsplit("/", 1)[-1] for names in FEED_SIGNATURES.values() for n in names}
LAST = LISTINGS
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=60"
TARGET = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(\S*))?$")


class S3Error(BindistroError):
    pass


def parse(target: str) -> tuple[str, str]:
    m = TARGET.match(target)
    if not m:
        raise S3Error(f"{target}: not an s3://BUCKET/PREFIX target")
    prefix = (m.group(2) or "").strip("/")
    return m.group(1), prefix + "/" if prefix else ""


def client():
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise S3Error("boto3 is not installed (pip install 'bindistro[s3]')") from None
    return boto3.client("s3", config=Config(retries={"max_attempts": 5, "mode": "standard"}))


mutable = rewritten        # what a publishing command may rewrite gets the short cache and goes up last


def _order(rel: str) -> tuple:
    name = rel.rsplit("/", 1)[-1]
    return (name in LAST, rel.rsplit("/", 1)[0], name in SIGNATURES, rel)


def _md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def listing(s3, bucket: str, prefix: str) -> dict[str, tuple[str, int]]:
    """key -> (md5 from the ETag of a single-part upload, size)."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = (o["ETag"].strip('"'), o["Size"])
    return out


def _error(e) -> str:
    return getattr(e, "response", {}).get("Error", {}).get("Code", "") or type(e).__name__


UPLOADERS = 8    # immutable objects go up side by side (one PUT at a time was ~6 ms an object locally)


def side_by_side(fn, items):
    """fn(item) for each item, UPLOADERS at a time (boto3 clients may be shared by threads), results
    in order as they are ready; the first failure stops what has not started."""
    from concurrent.futures import ThreadPoolExecutor
    ex = ThreadPoolExecutor(UPLOADERS)
    try:
        yield from ex.map(fn, items)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


class Md5s:
    """md5 of the tree's files by (device, inode, size, mtime), kept between uploads by the caller
    (publish.upload: a JSON document in the state dir): a tree's files are never written in place
    (a new index is a new file, a generation hard-links the files before it), so an upload hashes
    only the files new since the last one instead of the whole tree (GBs at distro scale). An
    unreadable document is an empty one."""

    def __init__(self, doc: bytes | None = None):
        self.seen: dict[str, str] = {}
        try:
            self.old = json.loads(doc).get("md5", {}) if doc else {}
        except (ValueError, AttributeError):
            self.old = {}

    def __call__(self, p: Path, fresh: bool = False) -> str:
        """`fresh`: hash the file whatever the cache says (before refusing on its word)."""
        st = os.stat(p)
        k = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        got = None if fresh else self.old.get(k)
        if not (isinstance(got, str) and len(got) == 32):
            got = _md5(p)
        self.seen[k] = got          # dict item assignment is atomic: upload's threads share this
        return got

    def changed(self) -> bytes | None:
        """What to keep after an upload (the files it saw: those gone from the tree drop out), or
        None when it is what was kept already."""
        return None if self.seen == self.old else json.dumps({"md5": self.seen}).encode()


def upload(files, target: str, progress=None, md5s: Md5s | None = None) -> dict:
    """Bring the bucket to the tree readers see, `files` = its (rel path, real path) pairs
    (publish.public_files); returns counts. Immutable objects first, several at once (each is a
    conditional write of its own, so their order does not matter); then the rewritten files one by
    one in their order (an index before its signature, the listing last). `md5s`: the caller's
    cache of the tree's md5s (publish.upload keeps one); none: every file is hashed."""
    from botocore.exceptions import BotoCoreError, ClientError
    md5s = md5s if md5s is not None else Md5s()
    bucket, prefix = parse(target)
    s3 = client()
    try:
        there = listing(s3, bucket, prefix)
    except (ClientError, BotoCoreError) as e:
        raise S3Error(f"s3://{bucket}/{prefix}: cannot list ({_error(e)}: {e})") from None
    files = sorted(files, key=lambda f: (mutable(f[0]), _order(f[0])))
    counts = {"uploaded": 0, "uploaded_bytes": 0, "skipped": 0, "rewritten": 0}

    def one(rel: str, path: Path) -> tuple[str, int]:
        key = prefix + rel
        md5, size = md5s(path), path.stat().st_size
        if key in there and there[key] != (md5, size):
            md5 = md5s(path, fresh=True)    # the bucket disagrees: not on the cache's word alone
        if there.get(key) == (md5, size):
            return "skipped", 0
        if key in there and not mutable(rel):
            raise S3Error(f"s3://{bucket}/{key}: holds other bytes than {rel} of the tree; a published "
                          "object is never overwritten (who else writes to this bucket?)")
        extra = {"CacheControl": SHORT_CACHE if mutable(rel) else IMMUTABLE_CACHE,
                 "ContentType": mimetypes.guess_type(rel)[0] or "application/octet-stream"}
        if not mutable(rel):
            extra["IfNoneMatch"] = "*"
        try:
            with open(path, "rb") as body:
                s3.put_object(Bucket=bucket, Key=key, Body=body, ContentMD5=_b64(md5), **extra)
        except ClientError as e:
            if _error(e) in ("PreconditionFailed", "ConditionalRequestConflict"):
                head = s3.head_object(Bucket=bucket, Key=key)
                if head["ETag"].strip('"') == md5:     # another uploader of this tree was first
                    return "skipped", 0
                raise S3Error(f"s3://{bucket}/{key}: written meanwhile with other bytes than {rel}; "
                              "not overwritten") from None
            raise S3Error(f"s3://{bucket}/{key}: upload failed ({_error(e)}); run `bindistro upload` "
                          "to resume") from None
        except BotoCoreError as e:
            raise S3Error(f"s3://{bucket}/{key}: upload failed ({e}); run `bindistro upload` to resume") from None
        faults.point("upload")
        return ("rewritten" if key in there else "uploaded"), size

    def count(rel: str, got: tuple[str, int]) -> None:
        counts[got[0]] += 1
        counts["uploaded_bytes"] += got[1]
        if progress and got[0] != "skipped":
            progress(rel)

    fixed = [f for f in files if not mutable(f[0])]
    for (rel, _p), got in zip(fixed, side_by_side(lambda f: one(*f), fixed)):
        count(rel, got)
    for rel, path in files[len(fixed):]:
        count(rel, one(rel, path))
    return counts


def _b64(md5_hex: str) -> str:
    import base64
    return base64.b64encode(bytes.fromhex(md5_hex)).decode()


def download(target: str, dest: Path, limit: int = 64 << 30) -> int:
    """Every object under the target into `dest` (for fsck: the bucket checked like a tree), several
    at once (one GET at a time was most of an fsck); `limit` bounds what an untrusted bucket may make
    us write, checked on the listing before anything is fetched."""
    bucket, prefix = parse(target)
    s3 = client()
    os.chmod(dest, 0o755)       # a tree as a web server serves it
    objects = listing(s3, bucket, prefix)
    total = sum(size for _md5v, size in objects.values())
    if total > limit:
        raise S3Error(f"s3://{bucket}/{prefix}: more than {limit >> 30} GiB; not downloaded")
    for key in objects:
        rel = key[len(prefix):]
        if not rel or rel.startswith("/") or ".." in rel.split("/") or rel.endswith("/"):
            raise S3Error(f"s3://{bucket}/{key}: a key no tree can hold")
        try:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        except OSError:         # "a" and "a/b" both keys: a file and a directory of one name
            raise S3Error(f"s3://{bucket}/{key}: a key no tree can hold (a file of its name is a key too)") from None

    def one(key: str, size: int) -> None:
        out = dest / key[len(prefix):]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]     # one request (download_file: HEAD + GET)
        try:
            f = open(out, "wb")
        except OSError:
            raise S3Error(f"s3://{bucket}/{key}: a key no tree can hold (keys lie below it)") from None
        with f:
            got = 0
            while chunk := body.read(1 << 20):
                got += len(chunk)
                if got > size:      # listed as `size`: an object that grows while read is not trusted
                    raise S3Error(f"s3://{bucket}/{key}: longer than the {size} bytes listed")
                f.write(chunk)
        os.chmod(out, 0o644)

    for _ in side_by_side(lambda kv: one(kv[0], kv[1][1]), objects.items()):
        pass
    return total
