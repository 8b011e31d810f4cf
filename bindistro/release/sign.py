"""Signing at release time, as OE's classes do it: rpm package signatures (rpmsign) and
repodata/repomd.xml.asc; ipk Packages.asc or Packages.sig per feed (+ optional .ipk.asc per
package); deb Release.gpg and InRelease; a detached signature of each release manifest.
Published files are never re-signed: an rpm signed once keeps that signature for ever."""
from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import workers
from ..errors import BindistroError
from ..formats.rpm import Rpm
from ..keys import Keyring
from ..model import FEED_SIGNATURES, Artifact
from ..spec import Spec
from ..store import Store
from ..store.objects import hash_file, makedirs, sync_fs

MIN_SHARE = 20         # rpms per agent at least: a home's copy and its agent's start cost ~0.1 s
SIGN_BATCH = 200       # rpms per rpmsign run (its command line)


class Signer:
    def __init__(self, spec: Spec, store: Store, fpr: str | None = None):
        """Signs with the spec's release key, or with `fpr` (a custom feed's own key)."""
        self.store = store
        self.fpr = fpr or spec.signing_key
        self.spec = spec
        self.keys = Keyring(store.dir / "gnupg") if self.fpr else None
        self._signed = None
        if self.keys and not self.keys.has(self.fpr):
            raise BindistroError(f"{spec.path if not fpr else 'key ' + fpr}: key {self.fpr} is not in "
                                 f"{store.dir / 'gnupg'} (bindistro keys import FILE)")

    def lookup(self, a: Artifact) -> Artifact:
        """The published form of a package: the signed rpm if there is one (its control data is
        left to MetaDB.with_control: the signed table's holds every rpm's XML, read per feed)."""
        if a.format != "rpm":
            return a
        if self._signed is None:
            self._signed = self.store.db.signed_forms()
            # a signed form is its own published form: one passed in again (a release of a candidate
            # first published to a channel) is not signed again
            self._signed.update({v[0]: v for v in self._signed.values()})
        r = self._signed.get(a.sha256)
        return a.but(sha256=r[0], size=r[1], md5=r[2], meta={}) if r else a

    def forget(self) -> None:
        """Drop what lookup() read (every signed rpm's hashes: a world's history is 100,000s)."""
        self._signed = None

    def published_forms(self, arts: list[Artifact]) -> list[Artifact]:
        """Each package as it is published: new rpms get their signature. A signature is made once
        and kept: the signed file is what every later release publishes."""
        # once per content: a package listed twice would get two signatures (of different times)
        todo = self.store.db.with_control(list({a.sha256: a for a in arts if a.format == "rpm" and self.keys
                                                and self.lookup(a) is a}.values()))
        if todo:
            objects = self.store.objects
            with objects.adding(self.store.referenced_objects):
                makedirs(objects.root)
                # made on the objects' filesystem: the signed copies are renamed into place
                with tempfile.TemporaryDirectory(dir=objects.root, prefix=".tmp-signing-") as tmp:
                    rows = self._sign_rpms(todo, Path(tmp))
                    sync_fs(Path(tmp))          # the copies' bytes, then their names (as stage does)
                    objects.adopt([(r.pop("copy"), r["sha256"]) for r in rows])
                    sync_fs(Path(tmp))
                self.store.db.add_signed(rows)
            self._signed = None
        return [self.lookup(a) for a in arts]

    def _sign_rpms(self, todo: list[Artifact], tmp: Path) -> list[dict]:
        """Signed copies of `todo` in `tmp`, and their `signed` rows (+ "copy": the file). rpmsign
        runs gpg once per package, and gpg-agent signs one at a time: one agent per share, each
        share signed in one thread (rpmsign runs of at most SIGN_BATCH files) and read there."""
        copies = []
        for i, a in enumerate(todo):
            copy = tmp / str(i) / a.filename
            copy.parent.mkdir()
            shutil.copyfile(self.store.objects.path(a.sha256), copy)
            copies.append(copy)
        shares = max(1, min(workers.cores(), len(todo) // MIN_SHARE))
        parts = [list(range(k, len(todo), shares)) for k in range(shares)]

        def sign(ring: Keyring, part: list[int]) -> list[tuple[int, dict]]:
            out = []
            for i in range(0, len(part), SIGN_BATCH):
                batch = part[i:i + SIGN_BATCH]
                ring.rpmsign(self.fpr, *(copies[n] for n in batch))
                for n in batch:
                    a, copy = todo[n], copies[n]
                    sha, md5, size = hash_file(copy, md5=True)
                    out.append((n, dict(unsigned=a.sha256, sha256=sha, size=size, md5=md5, key=self.fpr,
                                        meta=dict(a.meta, xml=Rpm._chunks(copy, a.filename)), copy=str(copy))))
            return out

        with self.keys.clones(shares - 1, tmp) as more, ThreadPoolExecutor(shares) as ex:
            done = [r for rows in ex.map(sign, [self.keys, *more], parts) for r in rows]
        return [row for _, row in sorted(done, key=lambda r: r[0])]

    def sign_feed(self, fmt: str, feed_dir: Path) -> list[Path]:
        if not self.keys:
            # the generation holds the last release's signature of this feed (a hard link): a new
            # index beside it would go out with a signature of another file
            for name in FEED_SIGNATURES[fmt]:
                if (feed_dir / name).exists():
                    raise BindistroError(f"{feed_dir.name}/{name}: this feed was published signed, and "
                                         f"{self.spec.path} names no signing key (keys.signing): refusing to "
                                         "publish it unsigned")
            return []
        if fmt == "ipk":
            armor = self.spec.ipk_feed_signature == "asc"
            out = feed_dir / ("Packages.asc" if armor else "Packages.sig")
            self._sign(feed_dir / "Packages", out, armor)
            return [out]
        if fmt == "deb":
            self._sign(feed_dir / "Release", feed_dir / "Release.gpg", True)
            self._atomic(feed_dir / "InRelease", lambda tmp: self.keys.clearsign(self.fpr, feed_dir / "Release", tmp))
            return [feed_dir / "Release.gpg", feed_dir / "InRelease"]
        out = feed_dir / "repodata" / "repomd.xml.asc"
        self._sign(feed_dir / "repodata" / "repomd.xml", out, True)
        return [out]

    def sign_file(self, path: Path) -> Path | None:
        if not self.keys:
            return None
        out = path.with_name(path.name + ".asc")
        self._sign(path, out, True)
        return out

    def _sign(self, path: Path, out: Path, armor: bool) -> None:
        self._atomic(out, lambda tmp: self.keys.sign_detached(self.fpr, path, tmp, armor))

    @staticmethod
    def _atomic(out: Path, make) -> None:
        tmp = out.with_name(f".{out.name}.tmp")
        make(tmp)
        tmp.replace(out)

    def publish_keys(self, pub: Path) -> list[Path]:
        """Public keys under keys/ (each written once; a key never changes)."""
        if not self.keys:
            return []
        out = []
        for fpr in dict.fromkeys([self.fpr, *self.spec.previous_keys]):
            p = pub / "keys" / f"{fpr}.asc"
            if not p.exists() and self.keys.has(fpr):
                p.parent.mkdir(parents=True, exist_ok=True)
                self._atomic(p, lambda tmp, f=fpr: tmp.write_bytes(self.keys.export(f)))
                out.append(p)
        return out
