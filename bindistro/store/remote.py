"""Objects in an S3 bucket (`state.objects: s3://BUCKET/PREFIX`), shared by every host that stages,
verifies or releases: the state dir's objects/ becomes a cache of it. Keys are the local layout
(<prefix><aa>/<bb>/<sha256>); an object is content-addressed, so it is written once, with a
conditional write, and never replaced; a fetched object is hashed while it streams in and refused
when its bytes are not its name (the bucket is not trusted more than a published tree)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import BindistroError
from .objects import object_name

LIMIT = 1 << 40


class RemoteObjects:
    def __init__(self, url: str):
        from ..s3 import parse
        self.url = url
        self.bucket, self.prefix = parse(url)
        self._s3 = None

    @property
    def s3(self):
        if self._s3 is None:
            from ..s3 import client
            self._s3 = client()
        return self._s3

    def key(self, sha: str) -> str:
        return self.prefix + object_name(sha)

    def where(self, sha: str) -> str:
        return f"s3://{self.bucket}/{self.key(sha)}"

    def _fail(self, sha: str, what: str, e) -> BindistroError:
        from ..s3 import _error
        return BindistroError(f"{self.where(sha)}: cannot {what} ({_error(e)})")

    def has(self, sha: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            self.s3.head_object(Bucket=self.bucket, Key=self.key(sha))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._fail(sha, "read", e) from None
        except BotoCoreError as e:
            raise self._fail(sha, "read", e) from None

    def put(self, sha: str, path: Path) -> bool:
        """Upload object `sha` unless the bucket has it; True when it was uploaded."""
        from botocore.exceptions import BotoCoreError, ClientError
        from ..s3 import _b64, _md5, _error
        try:
            with open(path, "rb") as body:
                self.s3.put_object(Bucket=self.bucket, Key=self.key(sha), Body=body, ContentMD5=_b64(_md5(path)),
                                   IfNoneMatch="*", CacheControl="public, max-age=31536000, immutable")
            return True
        except ClientError as e:
            if _error(e) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False          # another host was first: the same name holds the same bytes
            raise self._fail(sha, "upload", e) from None
        except BotoCoreError as e:
            raise self._fail(sha, "upload", e) from None

    def fetch(self, sha: str, dest: Path, mode: int) -> None:
        """Object `sha` into `dest` (renamed into place complete and checked)."""
        from botocore.exceptions import BotoCoreError, ClientError
        from .objects import makedirs
        makedirs(dest.parent)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.fetch")
        h, n = hashlib.sha256(), 0
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key(sha))["Body"]
            with open(tmp, "wb") as f:
                for chunk in body.iter_chunks(1 << 20):
                    n += len(chunk)
                    if n > LIMIT:
                        raise BindistroError(f"{self.where(sha)}: larger than {LIMIT} bytes; refused")
                    h.update(chunk)
                    f.write(chunk)
            if h.hexdigest() != sha:
                raise BindistroError(f"{self.where(sha)}: its bytes are not object {sha[:12]}… (sha256 "
                                     f"{h.hexdigest()[:12]}…); refused")
            os.chmod(tmp, mode)
            os.replace(tmp, dest)
        except ClientError as e:
            raise self._fail(sha, "fetch", e) from None
        except BotoCoreError as e:
            raise self._fail(sha, "fetch", e) from None
        finally:
            tmp.unlink(missing_ok=True)
