"""Boot an image under QEMU (TCG), talk to its serial console, report how far it got.

The console is qemu's stdio (`-serial mon:stdio -nographic`, as `runqemu nographic`). A reader
thread collects everything; the main thread waits for regexes on it. Commands are typed into the
console and framed with `printf 'BD-%s-%s' RC $?`: the echoed command line never contains the
printed `BD-RC-<n>`, so the result is found even when the tty echoes input.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import ptest
from .spec import Boot, BootCheck
from .yocto import qemuboot

PANIC = re.compile(r"Kernel panic - not syncing[^\r\n]*")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LAST_LINES = 15


@dataclass
class CheckResult:
    name: str
    run: str
    rc: int | None
    output: str
    ok: bool
    reason: str = ""


@dataclass
class BootResult:
    machine: str
    conf: str
    status: str                       # passed | panic | timeout | check-failed | error
    reason: str                       # one line
    command: list[str] = field(default_factory=list)
    seconds_to_marker: float | None = None
    seconds: float = 0.0
    powered_off: bool = False          # the guest shut down by itself after `poweroff`
    checks: list[CheckResult] = field(default_factory=list)
    ptests: dict[str, str] | None = None   # '<ptest>/<test>' -> PASS | FAIL | SKIP, when ptest-runner ran
    last_lines: list[str] = field(default_factory=list)
    console: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def to_dict(self, console: bool = False) -> dict:
        d = asdict(self)
        if not console:
            d.pop("console")
        return d


class Console:
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            chunk = self.proc.stdout.read1(65536)
            with self.cond:
                if not chunk:
                    self.cond.notify_all()
                    return
                self.buf += chunk
                self.cond.notify_all()

    def text(self, start: int = 0) -> str:
        with self.cond:
            data = bytes(self.buf[start:])
        return ANSI.sub("", data.decode("utf-8", "replace")).replace("\r", "")

    def size(self) -> int:
        with self.cond:
            return len(self.buf)

    def wait(self, patterns: list[re.Pattern], timeout: float, start: int = 0) -> tuple[int, re.Match] | None:
        """Index and match of the first pattern seen after byte `start`; None on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text(start)
            for i, p in enumerate(patterns):
                m = p.search(text)
                if m:
                    return i, m
            left = deadline - time.monotonic()
            if left <= 0 or (not self.reader.is_alive()):
                return None
            with self.cond:
                self.cond.wait(min(left, 0.5))

    def send(self, line: str) -> None:
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass


def last_lines(text: str, n: int = LAST_LINES) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()][-n:]


def _context(res: BootResult) -> list[str]:
    """The console lines that explain a failure: for a panic, those that lead up to it."""
    lines = [ln for ln in res.console.splitlines() if ln.strip() and "terminating on signal" not in ln]
    if res.status == "panic":
        at = next((i for i, ln in enumerate(lines) if PANIC.search(ln)), None)
        if at is not None:
            return lines[max(0, at - LAST_LINES + 1):at + 1]
    return lines[-LAST_LINES:]


def run_check(con: Console, check: BootCheck, timeout: float = 120) -> CheckResult:
    start = con.size()
    con.send(f"{check.run}; printf 'BD-%s-%s\\n' RC $?")
    got = con.wait([re.compile(r"BD-RC-(\d+)\n")], timeout, start)   # whole number: up to its newline
    text = con.text(start)
    name = check.name or check.run
    if got is None:
        return CheckResult(name, check.run, None, "\n".join(last_lines(text)), False, f"no answer within {timeout:.0f} s")
    rc = int(got[1].group(1))
    body = text[:got[1].start()]
    # the tty echoes the command line (wrapped when long): the output starts after its end
    echoed = body.rfind("RC $?")
    if echoed >= 0:
        body = body[body.find("\n", echoed) + 1:] if "\n" in body[echoed:] else ""
    output = body.strip()
    if rc != 0:
        return CheckResult(name, check.run, rc, output, False, f"exit status {rc}")
    if check.expect and not re.search(check.expect, output, re.M):
        return CheckResult(name, check.run, rc, output, False, f"output does not match {check.expect!r}")
    return CheckResult(name, check.run, rc, output, True)


def boot(conf: Path, cfg: Boot, log: Path | None = None) -> BootResult:
    qb = qemuboot.load(conf)
    res = BootResult(qb.machine, str(conf), "error", "")
    argv = qemuboot.command(qb, network=cfg.network)
    res.command = argv
    if shutil.which(argv[0]) is None:
        res.reason = f"{argv[0]} is not installed (Debian: qemu-system-x86 / qemu-system-arm)"
        return res
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    con = Console(proc)
    try:
        _drive(con, cfg, res, t0)
    finally:
        res.powered_off = _stop(proc, con, cfg, res.status == "passed")
        res.seconds = round(time.monotonic() - t0, 1)
        res.console = con.text()
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(res.console)
        if not res.ok:
            res.last_lines = _context(res)
    return res


def _panicked(con: Console, res: BootResult, seen: re.Match) -> None:
    time.sleep(2)   # the rest of the panic line and its backtrace follow
    # the match may have been cut at a read boundary: read the line again now it is complete
    m = PANIC.search(con.text()) or seen
    res.status, res.reason = "panic", m.group(0).strip()


def _drive(con: Console, cfg: Boot, res: BootResult, t0: float) -> None:
    got = con.wait([re.compile(cfg.marker), PANIC], cfg.timeout)
    if got is None:
        if con.proc.poll() is not None:
            res.status, res.reason = "error", f"qemu exited with status {con.proc.returncode} before the marker"
        else:
            res.status, res.reason = "timeout", f"no {cfg.marker!r} on the console within {cfg.timeout} s"
        return
    if got[0] == 1:
        _panicked(con, res, got[1])
        return
    res.seconds_to_marker = round(time.monotonic() - t0, 1)
    if cfg.login:
        start = con.size()
        con.send(cfg.login)
        if con.wait([re.compile(r"[#$] ?$", re.M), re.compile(r"[Pp]assword:")], 60, start) is None:
            res.status, res.reason = "check-failed", f"no shell prompt after logging in as {cfg.login}"
            return
    # wait until a shell answers (the marker may come before the shell is ready)
    start = con.size()
    con.send("")
    # kernel messages below warnings off the console from here on (still in dmesg): an info line
    # ("clocksource: Switched to …") printed mid-check became part of the check's output; errors,
    # oopses and panics still print and are still caught
    con.send("echo 4 > /proc/sys/kernel/printk 2>/dev/null; printf 'BD-%s\\n' READY")
    ready = con.wait([re.compile(r"BD-READY"), PANIC], 60, start)
    if ready is None:
        res.status, res.reason = "check-failed", "no shell on the console after the marker"
        return
    if ready[0] == 1:
        _panicked(con, res, ready[1])
        return
    checks = list(cfg.checks)
    if cfg.pm_smoke:
        checks.append(BootCheck(cfg.pm_smoke, "package manager smoke test"))
    for c in checks:
        r = run_check(con, c)
        res.checks.append(r)
        if not r.ok and res.status != "check-failed":
            res.status = "check-failed"
            res.reason = f"check {r.name!r} failed: {r.reason}" + (f": {r.output.splitlines()[-1]}" if r.output else "")
        if r.rc is None:
            return          # the console did not answer: later checks would only wait as long
    if cfg.ptest:
        _ptests(con, res)
    if res.status == "check-failed":
        return              # every check ran: results after an upgrade are compared check by check
    res.status = "passed"
    res.reason = f"reached the marker in {res.seconds_to_marker} s; {len(res.checks)} checks passed"


def _ptests(con: Console, res: BootResult) -> None:
    """Run ptest-runner when the image carries it; its results are kept, not judged here: a
    ptest's history (upgrade_boot.py) says whether a FAIL is new."""
    has = run_check(con, BootCheck("command -v ptest-runner >/dev/null", "ptest-runner present"), 20)
    if not has.ok:
        return
    r = run_check(con, BootCheck("ptest-runner", "ptest-runner"), 600)
    res.ptests = ptest.parse(r.output) or {}


def _stop(proc: subprocess.Popen, con: Console, cfg: Boot, clean: bool) -> bool:
    """Power the guest off (or stop qemu); True when the guest powered itself off."""
    powered_off = False
    if proc.poll() is None and clean:
        con.send(cfg.poweroff)
        try:
            proc.wait(30)
            powered_off = True
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    con.reader.join(5)
    return powered_off
