"""Signing keys: GnuPG in an isolated home inside the state directory, keys named by fingerprint.

Passphrases come from a file or the BINDISTRO_KEY_PASSPHRASE environment variable, never from the
command line (they would show in `ps` and shell history).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import BindistroError

PASS_ENV = "BINDISTRO_KEY_PASSPHRASE"
ALGORITHMS = ("rsa3072", "ed25519")      # GnuPG's names (quick-gen-key); the first is the default
MAX_SOCKET_PATH = 107                    # sockaddr_un's sun_path, less its terminating NUL
LONGEST_SOCKET = "/S.gpg-agent.browser"


class Keyring:
    def __init__(self, home: Path, passphrase_file: Path | None = None):
        self.home = home
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(home, 0o700)
        self._pass_file = passphrase_file
        self._listed: list[dict] | None = None     # list(), until this object adds a key

    def passphrase(self) -> str:
        if self._pass_file:
            return self._pass_file.read_text().rstrip("\n")
        return os.environ.get(PASS_ENV, "")

    @functools.cached_property
    def gpg_home(self) -> str:
        """The home as gpg is told it. gpg-agent's sockets go in the home unless /run/user/UID
        exists (often it does not: containers, CI, su), and a socket's path is limited to 107
        bytes: under a longer home the agent does not start and every secret key looks missing.
        Such a home is named through a short symlink in a directory only this user can write."""
        home = str(self.home.resolve())
        if len(home) + len(LONGEST_SOCKET) <= MAX_SOCKET_PATH:
            return home
        name = f"bindistro-{os.getuid()}"
        d = Path(tempfile.gettempdir(), name)
        if len(f"{d}/g-{'0' * 16}{LONGEST_SOCKET}") > MAX_SOCKET_PATH:      # a long TMPDIR
            d = Path("/tmp", name)
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise BindistroError(f"{d}: not a private directory of this user (for gpg-agent's sockets of {home})")
        link = d / f"g-{hashlib.blake2b(home.encode(), digest_size=8).hexdigest()}"
        if not (link.is_symlink() and os.readlink(link) == home):
            new = d / f".{link.name}.{os.getpid()}"
            new.unlink(missing_ok=True)
            os.symlink(home, new)
            os.replace(new, link)
        return str(link)

    def gpg(self, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["gpg", "--homedir", self.gpg_home, "--batch", "--no-tty", "--pinentry-mode", "loopback", *args]
        r = subprocess.run(cmd, input=input, capture_output=True)
        if check and r.returncode != 0:
            last = (r.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            raise BindistroError(f"gpg {args[0]} failed: {last}")
        return r

    def _with_pass(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        with tempfile.NamedTemporaryFile("w", dir=self.home, delete=True) as pf:
            pf.write(self.passphrase())
            pf.flush()
            return self.gpg("--passphrase-file", pf.name, *args, input=input)

    def generate(self, uid: str, algorithm: str = ALGORITHMS[0]) -> str:
        """A new signing key. RSA 3072 by default: every package manager a device may still run
        verifies it. Ed25519 signs in ~1/3 of the time (rpmsign 15.6 -> 5.5 ms a package) and is
        verified by scarthgap's opkg (through GnuPG), rpm (4.16 and later) and apt (gpgv)."""
        if algorithm not in ALGORITHMS:
            raise BindistroError(f"key algorithm {algorithm!r}: one of {', '.join(ALGORITHMS)}")
        self._with_pass("--yes", "--quick-gen-key", uid, algorithm, "sign", "never")   # --yes: same uid again on rotation
        self._listed = None
        return self.list()[-1]["fingerprint"]

    def list(self) -> list[dict]:
        if self._listed is None:
            self._listed = self._list()
        return list(self._listed)

    def _list(self) -> list[dict]:
        out = self.gpg("--with-colons", "--fixed-list-mode", "--list-secret-keys", check=False).stdout.decode()
        keys, cur = [], None
        for line in out.splitlines():
            f = line.split(":")
            if f[0] == "sec":
                # field 4: OpenPGP's algorithm id (1 RSA, 22 EdDSA), 3: bits, 17: the curve
                algo = f"rsa{f[2]}" if f[3] == "1" else (f[16] or "eddsa") if f[3] == "22" else f"algorithm {f[3]}"
                cur = {"fingerprint": None, "uid": None, "created": f[5], "algorithm": algo}
                keys.append(cur)
            elif f[0] == "fpr" and cur and cur["fingerprint"] is None:
                cur["fingerprint"] = f[9]
            elif f[0] == "uid" and cur and cur["uid"] is None:
                cur["uid"] = f[9]
        return keys

    def has(self, fpr: str) -> bool:
        return any(k["fingerprint"] == fpr for k in self.list())

    def export(self, fpr: str, armor: bool = True) -> bytes:
        r = self.gpg(*(["--armor"] if armor else []), "--export", fpr)
        if not r.stdout:
            raise BindistroError(f"key {fpr}: not in {self.home}")
        return r.stdout

    def public_keyring(self, fprs) -> bytes:
        """These keys' public parts as one binary keyring (what gpgv reads), those the home holds;
        b"" for none. One gpg run and no agent: checking signatures needs no secret key."""
        if not fprs:
            return b""
        return subprocess.run(public_gpg(self.home) + ["--export", *fprs], capture_output=True).stdout

    def import_file(self, path: Path) -> list[str]:
        before = {k["fingerprint"] for k in self.list()}
        self._listed = None
        try:
            self._with_pass("--import", str(path))
        except BindistroError as e:
            raise BindistroError(f"{path}: not imported ({str(e).removeprefix('gpg --import failed: ')})") from None
        self._listed = None
        return [k["fingerprint"] for k in self.list() if k["fingerprint"] not in before]

    def sign_detached(self, fpr: str, path: Path, out: Path, armor: bool = True) -> None:
        self._with_pass("--yes", "--local-user", fpr, "--digest-algo", "SHA256", *(["--armor"] if armor else []),
                        "--output", str(out), "--detach-sign", str(path))

    def clearsign(self, fpr: str, path: Path, out: Path) -> None:
        self._with_pass("--yes", "--local-user", fpr, "--digest-algo", "SHA256", "--output", str(out),
                        "--clearsign", str(path))

    @contextlib.contextmanager
    def clones(self, n: int, under: Path):
        """`n` keyrings holding copies of this one (secret keys too), for `n` threads to sign at
        once: gpg-agent makes one signature at a time, so rpmsign runs sharing it wait on it
        (measured: 300 rpms, RSA-3072, 2 rpmsign runs: one agent 6.5-7.0 s, an agent each 3.7-4.1
        s). On the way out their agents are stopped and the copies removed."""
        rings: list[Keyring] = []
        try:
            for i in range(n):
                d = under / f"gnupg-{i}"
                shutil.copytree(self.home, d, ignore=shutil.ignore_patterns("S.*", "*.lock", ".#lk*", "random_seed"))
                rings.append(Keyring(d, self._pass_file))
            yield rings
        finally:
            for r in rings:
                r.stop_agent()
                if r.gpg_home != str(r.home.resolve()):
                    with contextlib.suppress(OSError):
                        os.unlink(r.gpg_home)       # the short link to it (gpg_home)
                shutil.rmtree(r.home, ignore_errors=True)

    def stop_agent(self) -> None:
        """Stop this home's agent, and wait until it is gone: `gpgconf --kill` returns before the
        agent has exited, and on a loaded machine clones' agents were still there, holding the
        key, more than 10 s after their homes were removed. Signalled if it has not gone in 5 s."""
        r = subprocess.run(["gpg-connect-agent", "--homedir", self.gpg_home, "--no-autostart", "getinfo pid", "/bye"],
                           capture_output=True, text=True)
        pid = next((int(x[2:]) for x in r.stdout.splitlines() if x.startswith("D ") and x[2:].strip().isdigit()), None)
        subprocess.run(["gpgconf", "--homedir", self.gpg_home, "--kill", "gpg-agent"], capture_output=True)
        if pid is not None:
            _wait_gone(pid, 5.0)

    def rpmsign(self, fpr: str, *paths: Path) -> None:
        """Add rpm signatures in place (the files are private copies, not published ones)."""
        with tempfile.TemporaryDirectory() as home, tempfile.NamedTemporaryFile("w", dir=self.home) as pf:
            pf.write(self.passphrase())
            pf.flush()
            Path(home, ".rpmmacros").write_text("%_dbpath /var/lib/rpm\n")
            r = subprocess.run(["rpmsign", "--addsign", "--define", "__gpg /usr/bin/gpg",
                                "--define", f"_gpg_path {self.gpg_home}", "--define", f"_gpg_name {fpr}",
                                "--define", f"_gpg_sign_cmd_extra_args --batch --pinentry-mode loopback --passphrase-file {pf.name}",
                                *map(str, paths)], capture_output=True, text=True, env=dict(os.environ, HOME=home))
            if r.returncode != 0:
                raise BindistroError(f"rpmsign of {len(paths)} package(s) failed: {r.stderr.strip()[-300:]}")


def public_gpg(home) -> list[str]:
    """gpg for public-key work (import, export, list, dearmor, verify), mostly in a throw-away home:
    it needs no agent, and without --no-autostart gpg starts one per home (an agent's start and stop
    cost more than the work: ~3 % of the suite's CPU)."""
    return ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--no-autostart"]


@contextlib.contextmanager
def scratch_gnupg():
    """A throw-away GnuPG home for public_gpg (no agent to stop)."""
    with tempfile.TemporaryDirectory(prefix="bindistro-gnupg-") as home:
        os.chmod(home, 0o700)
        yield home


class SignatureChecker:
    """Checks detached and inline signatures against a fixed set of public keys, with gpgv (no
    trust database: a key is either in the set or not)."""

    def __init__(self, armored_keys: list[bytes] = (), keyring: bytes = b""):
        """`armored_keys`: public keys from anywhere (imported: gpg checks them); `keyring`: a binary
        export of our own keyring (Keyring.public_keyring), used as it is."""
        self._tmp = tempfile.TemporaryDirectory(prefix="bindistro-gpgv-")
        home = Path(self._tmp.name)
        os.chmod(home, 0o700)
        self.keyring = home / "trusted.gpg"
        exported = keyring
        if armored_keys:
            for k in armored_keys:
                subprocess.run(public_gpg(home) + ["--import"], input=k, capture_output=True)
            exported += subprocess.run(public_gpg(home) + ["--export"], capture_output=True).stdout
        self.keyring.write_bytes(exported)
        self.has_keys = bool(exported)

    def check(self, signed: Path, sig: Path | None = None) -> str | None:
        """None when the signature is good, else why not (one line)."""
        if not self.has_keys:
            return "no public key to check it with"
        args = ["gpgv", "--keyring", str(self.keyring), "--status-fd", "1"] + ([str(sig)] if sig else []) + [str(signed)]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode == 0 and "[GNUPG:] GOODSIG" in r.stdout:
            return None
        for tag, why in (("BADSIG", "BAD signature"), ("NO_PUBKEY", "signed by an unknown key"),
                         ("EXPKEYSIG", "signed by an expired key"), ("NODATA", "not a signature")):
            if f"[GNUPG:] {tag}" in r.stdout:
                return why
        return "signature not verified"


def _wait_gone(pid: int, seconds: float) -> None:
    """Wait for gpg-agent `pid` to exit; SIGTERM it after `seconds` (checked to be a gpg-agent
    still: a pid can be reused)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"gpg-agent" not in f.read():
                    return
        except OSError:
            return
        if time.monotonic() >= deadline:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
            return
        time.sleep(0.02)
