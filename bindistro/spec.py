"""The distro spec (`bindistro.yml`): typed model, validation with clear errors, YAML round trip."""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import BindistroError, SpecError
from .model import FEED_ROOT

SPEC_FILE = "bindistro.yml"
KNOWN_FORMATS = ("ipk", "rpm", "deb")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass
class Machine:
    name: str
    # package architectures in priority order (lowest first, like PACKAGE_ARCHS)
    archs: list[str]

    @property
    def machine_arch(self) -> str:
        return self.archs[-1]


@dataclass
class BootCheck:
    run: str                      # shell command typed on the console; passes when it exits 0
    name: str = ""
    expect: str | None = None     # optional regex the output must match

    def to_dict(self) -> dict:
        d = {"run": self.run}
        if self.name:
            d["name"] = self.name
        if self.expect:
            d["expect"] = self.expect
        return d


DEFAULT_CHECKS = [
    BootCheck("uname -m", "architecture"),
    BootCheck("cat /proc/1/comm", "init is running"),
    BootCheck("if command -v systemctl >/dev/null; then systemctl is-system-running --wait; fi", "no failed units"),
]


@dataclass
class Boot:
    """The boot gate: boot each image under QEMU, wait for the marker, run the checks, power off."""
    enabled: bool = True
    timeout: int = 300            # seconds to reach the marker (TCG is slow)
    marker: str = "login:"        # regex on the serial console
    login: str | None = "root"    # typed at the marker when set
    checks: list[BootCheck] = field(default_factory=lambda: list(DEFAULT_CHECKS))
    poweroff: str = "poweroff"
    network: bool = False         # user-mode networking, host side on loopback only
    pm_smoke: str | None = None   # optional package-manager command run in the booted image
    ptest: bool = True            # run ptest-runner after the checks when the image carries it

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "timeout": self.timeout, "marker": self.marker, "login": self.login,
                "checks": [c.to_dict() for c in self.checks], "poweroff": self.poweroff,
                "network": self.network, "pm_smoke": self.pm_smoke, "ptest": self.ptest}


def sample_boot() -> Boot:
    """Boot settings for the SAMPLE images: the defaults (their /init offers a login prompt that gives
    a root shell) with stricter checks."""
    return Boot(checks=[
        BootCheck("uname -m", "architecture", r"^(x86_64|aarch64)$"),
        BootCheck("grep -qx init /proc/1/comm", "init is running"),
        BootCheck("test -x /bin/sh && busybox true", "shell works"),
        BootCheck("test ! -e /var/lib/bindistro-hello/migration-failed", "hello settings migrated"),
    ])


# units a minimal systemd image may enable (systemctl preset-all with OE's defaults)
DEFAULT_UNITS = ["getty@.service", "serial-getty@.service", "systemd-networkd.service", "systemd-networkd.socket",
                 "systemd-networkd-wait-online.service", "systemd-resolved.service", "systemd-timesyncd.service",
                 "systemd-network-generator.service", "systemd-pstore.service", "systemd-userdbd.socket",
                 "remote-fs.target", "machines.target", "getty.target"]


# OE's copyleft_filter.bbclass defaults: recipes whose licenses match are the ones whose sources ship
COPYLEFT_INCLUDE = ["GPL*", "LGPL*", "AGPL*"]
COPYLEFT_EXCLUDE = ["CLOSED", "Proprietary"]


@dataclass
class Sources:
    copyleft: list[str] = field(default_factory=lambda: list(COPYLEFT_INCLUDE))     # license globs
    exclude: list[str] = field(default_factory=lambda: list(COPYLEFT_EXCLUDE))
    exceptions: dict[str, str] = field(default_factory=dict)                         # recipe -> reason
    downloads: bool = False     # also stage and publish DL_DIR (sources/downloads/: an own-mirrors source mirror)

    def to_dict(self) -> dict:
        return {"copyleft": list(self.copyleft), "exclude": list(self.exclude), "exceptions": dict(self.exceptions),
                **({"downloads": True} if self.downloads else {})}


@dataclass
class ImageSecurity:
    allowed_units: list[str] = field(default_factory=lambda: list(DEFAULT_UNITS))

    def to_dict(self) -> dict:
        return {"allowed_units": list(self.allowed_units)}


DEFAULT_SLA = {"critical": 7, "high": 30, "medium": 90, "low": 180, "unknown": 30}


@dataclass
class Security:
    """PSIRT settings: who to tell, how fast fixes come (days by CVSS severity)."""
    contact: str = "mailto:security@example.invalid"
    policy_url: str | None = None
    sla_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SLA))
    expires_days: int = 365       # security.txt Expires, counted from when it is written

    def to_dict(self) -> dict:
        return {"contact": self.contact, "policy_url": self.policy_url, "sla_days": dict(self.sla_days),
                "expires_days": self.expires_days}


@dataclass
class Series:
    """One branch of the product (kirkstone, scarthgap, ...): its own release names, cumulative feeds,
    releases and end of life. What it leaves unset comes from the top of the spec."""
    name: str
    version: str | None = None
    release_name: str | None = None
    eol: dt.date | None = None
    supported: bool = True
    upgrade_from: list[str] | None = None     # older series whose devices move here (None: every older supported one)
    machines: list[Machine] | None = None     # a branch may rename feeds (another tune, another SoC family)
    path: str | None = None                   # its feeds' directory (default feeds/<name>)

    @property
    def feed_root(self) -> str:
        return self.path or f"feeds/{self.name}"

    def to_dict(self) -> dict:
        d = {"version": self.version, "release_name": self.release_name,
             "eol": self.eol.isoformat() if self.eol else None, "supported": self.supported,
             "upgrade_from": self.upgrade_from, "path": self.path,
             "machines": {m.name: {"archs": list(m.archs)} for m in self.machines} if self.machines else None}
        return {k: v for k, v in d.items() if v is not None and not (k == "supported" and v)}


@dataclass
class Spec:
    product: str
    version: str = "1"
    release_name: str = "{version}.{n}"
    machines: list[Machine] = field(default_factory=list)
    formats: list[str] = field(default_factory=lambda: ["ipk"])
    publish_dir: str = "publish"
    publish_url: str = "http://localhost:8000"
    publish_target: str | None = None         # s3://BUCKET/PREFIX: the tree is uploaded there too (s3.py)
    state_dir: str = "state"
    database: str | None = None               # state.database: a PostgreSQL URL (default: SQLite in state_dir)
    objects: str | None = None                # state.objects: s3://BUCKET/PREFIX shared by hosts (store/remote.py)
    eol: dt.date | None = None
    targets: list[str] = field(default_factory=list)
    signing_key: str | None = None            # fingerprint that signs new releases
    previous_keys: list[str] = field(default_factory=list)   # still trusted: older releases used them
    ipk_feed_signature: str = "asc"           # like PACKAGE_FEED_GPG_SIGNATURE_TYPE: asc | sig
    sign_ipk_packages: bool = False           # detached signature per .ipk, like sign_ipk
    sstate_keys: list[str] = field(default_factory=list)   # like SSTATE_VALID_SIGS (default: release keys)
    require_signed_sstate: bool = False       # like SSTATE_VERIFY_SIG: unsigned sstate blocks a release (default: on with keys.sstate)
    opkg: str | None = None                   # tools.opkg: the opkg binary for upgrade tests
    boot: Boot = field(default_factory=Boot)
    security: Security = field(default_factory=Security)
    image_security: ImageSecurity = field(default_factory=ImageSecurity)
    sources: Sources = field(default_factory=Sources)
    series: list[Series] = field(default_factory=list)   # oldest first; empty: one line of releases (feeds/)
    current: str | None = None    # the series this view is of (in_series); None when the spec has none
    base: "Spec | None" = field(default=None, repr=False, compare=False)   # a series view's whole spec
    path: Path | None = None  # where it was loaded from

    @property
    def root(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self.root / q

    @property
    def state_path(self) -> Path:
        return self.resolve(self.state_dir)

    @property
    def database_url(self) -> str | None:
        """The metadata DB: BINDISTRO_DATABASE, else state.database, else None (SQLite in the state dir)."""
        env = os.environ.get("BINDISTRO_DATABASE")
        if env:
            problem = database_url_problem(env)
            if problem:
                raise BindistroError(f"BINDISTRO_DATABASE: {problem}")
            return env
        return self.database

    @property
    def objects_url(self) -> str | None:
        """Where the objects are shared: BINDISTRO_OBJECTS, else state.objects, else only the state dir."""
        env = os.environ.get("BINDISTRO_OBJECTS")
        if env:
            from .s3 import TARGET
            if not TARGET.match(env):
                raise BindistroError(f"BINDISTRO_OBJECTS: {env!r} is not s3://BUCKET[/PREFIX]")
            return env
        return self.objects

    @property
    def publish_path(self) -> Path:
        return self.resolve(self.publish_dir)

    @property
    def release_keys(self) -> list[str]:
        """The keys devices trust for this distro: the signing key first, then the previous ones."""
        return list(dict.fromkeys(k for k in [self.signing_key, *self.previous_keys] if k))

    # --- series: a view of the spec per series, so every step below works on one line of releases

    def series_names(self) -> list[str]:
        return [x.name for x in self.series]

    def get_series(self, name: str | None) -> Series | None:
        """The declared series `name`; None names the first (a store row from before series)."""
        if not self.series:
            if name:
                raise BindistroError(f"{self.path}: no series {name!r}: the spec declares no series")
            return None
        if name is None:
            return self.series[0]
        for x in self.series:
            if x.name == name:
                return x
        raise BindistroError(f"{self.path}: no series {name!r} (series: {', '.join(self.series_names())})")

    def in_series(self, name: str | None) -> "Spec":
        """This spec as series `name` sees it: its version, release names, machines and eol."""
        b = self.whole
        x = b.get_series(name)
        if x is None:
            return b
        return dataclasses.replace(b, version=x.version or b.version, release_name=x.release_name or b.release_name,
                                   eol=x.eol or b.eol, machines=x.machines or b.machines, current=x.name, base=b)

    def choose_series(self, name: str | None) -> "Spec":
        """The view a command that makes something new works on: `--series`, or the only series."""
        if name is None and len(self.series) > 1:
            raise BindistroError(f"{self.path}: several series ({', '.join(self.series_names())}): "
                                 "say which with --series")
        return self.in_series(name or (self.series[0].name if self.series else None))

    @property
    def whole(self) -> "Spec":
        """The spec itself, not a series' view of it."""
        return self.base or self

    @property
    def product_eol(self) -> dt.date | None:
        """The product's end of life (a series view's `eol` is its series')."""
        return self.whole.eol

    @property
    def feed_root(self) -> str:
        """Where this view's feeds live: feeds/<format>/<arch>/ under it."""
        x = self.get_series(self.current) if self.current else None
        return x.feed_root if x else "feeds"

    def channel_root(self, name: str) -> str:
        return f"channels/{self.current}/{name}" if self.current else f"channels/{name}"

    def upgrade_from(self) -> list[str]:
        """The older series whose latest release must upgrade to this view's candidates."""
        if not self.current:
            return []
        names = self.series_names()
        older = self.series[:names.index(self.current)]
        x = self.get_series(self.current)
        today = dt.date.today()
        live = [o.name for o in older if o.supported and not (o.eol and o.eol <= today)]
        return [n for n in x.upgrade_from if n in live] if x.upgrade_from is not None else live

    def feeds(self) -> list[str]:
        """One feed per package architecture, `all` and machine arch included, in first-seen order."""
        out: list[str] = []
        for m in self.machines:
            for a in m.archs:
                if a not in out:
                    out.append(a)
        return out

    def format_release_name(self, n: int, today: dt.date | None = None) -> str:
        today = today or dt.date.today()
        return self.release_name.format(version=self.version, n=n, date=today.strftime("%Y%m%d"),
                                        product=self.product)

    def to_dict(self) -> dict:
        return {
            "product": {"name": self.product, "version": self.version},
            "release_name": self.release_name,
            "machines": {m.name: {"archs": list(m.archs)} for m in self.machines},
            "formats": list(self.formats),
            "feeds": {"layout": "per-arch"},
            "publish": {"dir": self.publish_dir, "url": self.publish_url}
                       | ({"target": self.publish_target} if self.publish_target else {}),
            "state_dir": self.state_dir,
            **({"state": {k: v for k, v in (("database", self.database), ("objects", self.objects)) if v}}
               if self.database or self.objects else {}),
            "targets": list(self.targets),
            "keys": {"signing": self.signing_key, "previous": list(self.previous_keys),
                     "ipk_feed_signature": self.ipk_feed_signature, "sign_ipk_packages": self.sign_ipk_packages,
                     "sstate": list(self.sstate_keys)}
            # written only when it differs from what keys.sstate implies, so adding keys turns it on
            | ({"require_signed_sstate": self.require_signed_sstate}
               if self.require_signed_sstate != bool(self.sstate_keys) else {}),
            "eol": self.eol.isoformat() if self.eol else None,
            "boot": self.boot.to_dict(),
            "security": self.security.to_dict(),
            "image_security": self.image_security.to_dict(),
            "sources": self.sources.to_dict(),
        } | ({"series": {x.name: x.to_dict() for x in self.series}} if self.series else {}) | ({"tools": {"opkg": self.opkg}} if self.opkg else {})


def default_spec(product: str = "sample-distro", sample: bool = False, boot: bool = True) -> Spec:
    b = sample_boot() if sample else Boot()
    b.enabled = boot
    return Spec(
        product=product, boot=b,
        machines=[Machine("qemux86-64", ["all", "core2-64", "qemux86_64"]),
                  Machine("qemuarm64", ["all", "cortexa57", "cortexa57-virt", "qemuarm64"])],
        targets=["core-image-minimal"],
    )


HEADER = """\
# bindistro distro spec. Edit, then run `bindistro stage BUILD_DIR`.
# Checked against a JSON Schema: `bindistro schema > bindistro.schema.json` gives it to your editor
# (yaml-language-server: add `# yaml-language-server: $schema=bindistro.schema.json` here).
# machines: package architectures per machine, lowest priority first (like PACKAGE_ARCHS);
#           each architecture becomes one feed: feeds/<format>/<arch>/.
# boot: the boot gate (QEMU, serial console): marker regex, login user, checks run on the console.
# release_name: template with {version}, {n} (release number), {date} (YYYYMMDD), {product}.
# series: branches of the distro, oldest first (`bindistro series add NAME`): each has its own
#         releases, feeds (feeds/<series>/<format>/<arch>/), eol; its version/machines override these.
"""


def dump(spec: Spec, path: Path) -> None:
    path.write_text(HEADER + yaml.safe_dump(spec.to_dict(), sort_keys=False))


def check_eol(spec: Spec, what: str) -> None:
    """Refuse new `what` (candidates, builds, releases) once the spec's series or product is past its eol."""
    if spec.eol and dt.date.today() >= spec.eol:
        who = f"series {spec.current}" if spec.current else "the product"
        raise BindistroError(f"{spec.path}: eol: {who} reached end of life on {spec.eol}; "
                             f"no more {what} (published feeds stay available)")


# --- the commands that change the spec (eol, keys) do it here, so the file stays valid -------------

def set_eol(spec: Spec, when: dt.date, series: str | None = None) -> None:
    """The product's end of life, or (`series`) that series' only."""
    spec = spec.whole
    if series:
        spec.get_series(series).eol = when
    else:
        spec.eol = when
    _save(spec)


def add_series(spec: Spec, name: str, version: str | None = None, first: str | None = None,
               machines: list[Machine] | None = None) -> Series:
    """A new series, newest last. A spec without series first names its line of releases `first`
    with `path: feeds`: its feeds, releases and every URL devices use stay where they are."""
    spec = spec.whole
    old = list(spec.series)
    if not old and not first:
        raise BindistroError(f"{spec.path}: the spec has no series yet: name the releases it has with --first NAME "
                             "(they keep their feeds/ and every published URL)")
    if old and first and first != old[0].name:
        raise BindistroError(f"{spec.path}: the first series is {old[0].name} already")
    x = Series(name, version=version, machines=machines)
    spec.series = (old or [Series(first, path="feeds")]) + [x]
    try:
        _save(spec)           # checked like any spec: names, release names that would collide
    except BindistroError:
        spec.series = old
        raise
    return x


def adopt_signing_key(spec: Spec, fpr: str) -> bool:
    """A new key signs releases when none does yet; True when it became keys.signing."""
    if spec.signing_key:
        return False
    spec.signing_key = fpr
    _save(spec)
    return True


def rotate_signing_key(spec: Spec, new: str) -> None:
    """`new` signs from now on; the old key stays trusted (keys.previous) so old releases verify."""
    spec.previous_keys = [spec.signing_key, *[k for k in spec.previous_keys if k != spec.signing_key]]
    spec.signing_key = new
    _save(spec)


def _save(spec: Spec) -> None:
    spec = spec.whole          # a series view writes the whole spec, never its own values on top
    parse(spec.to_dict(), spec.path)        # never write a spec that would not load again
    dump(spec, spec.path)


# libyaml's parser when PyYAML has it (every command reads the spec: 6.7 -> 1.6 ms), the same
# safe constructor either way
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_SPEC = 1 << 20     # a distro spec is a few KB
MAX_DEPTH = 20         # the schema nests four levels; deeper is an attack on the parser's recursion
SCHEMA_FILE = Path(__file__).with_name("spec.schema.json")


@functools.cache
def schema() -> dict:
    """The spec's JSON Schema (draft 2020-12), shipped for editors as bindistro/spec.schema.json."""
    return json.loads(SCHEMA_FILE.read_text())


def load(path: Path) -> Spec:
    try:
        path = path.resolve()
    except (OSError, RuntimeError) as e:        # a symlink loop
        raise SpecError(str(path), "-", f"cannot be resolved ({e})") from None
    p = str(path)
    try:
        if path.stat().st_size > MAX_SPEC:
            raise SpecError(p, "-", f"larger than {MAX_SPEC >> 10} KB; not a distro spec")
        text = path.read_text(encoding="utf-8")
        _check_events(text, p)
        raw = yaml.load(text, Loader=LOADER)
    except FileNotFoundError:
        raise SpecError(p, "-", "no such file (run `bindistro init` or pass -C DIR)") from None
    except IsADirectoryError:
        raise SpecError(p, "-", "is a directory, not a spec file") from None
    except UnicodeDecodeError as e:
        raise SpecError(p, "-", f"not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise SpecError(p, "-", f"cannot be read ({e.strerror})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "-"
        raise SpecError(p, where, f"not valid YAML: {_short(getattr(e, 'problem', None) or e)}") from None
    except (ValueError, OverflowError) as e:     # a YAML date like 2025-13-45
        raise SpecError(p, "-", f"not valid YAML: {_short(str(e))}") from None
    if not isinstance(raw, dict):
        raise SpecError(p, "-", "must be a mapping")
    return parse(raw, path, text)


def _check_events(text: str, p: str) -> None:
    """Refuse what could blow up before the schema sees it: anchors/aliases ("billion laughs": a few KB
    expand to gigabytes; a spec has none) and nesting deep enough to exhaust the parser's recursion."""
    depth = 0
    for ev in yaml.parse(text, Loader=LOADER):
        if isinstance(ev, yaml.AliasEvent) or getattr(ev, "anchor", None):
            raise SpecError(p, f"line {ev.start_mark.line + 1}", "YAML anchors and aliases are not allowed in a spec")
        if isinstance(ev, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(p, f"line {ev.start_mark.line + 1}", f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(ev, yaml.CollectionEndEvent):
            depth -= 1


def _short(v, width: int = 80) -> str:
    s = v if isinstance(v, str) and v.isprintable() else repr(v)    # control characters shown escaped
    return s if len(s) <= width else s[:width] + "…"


def _plain(v):
    """YAML's own types as JSON sees them: dates as ISO text (the schema checks the form)."""
    if isinstance(v, dict):
        return {(k.isoformat() if isinstance(k, dt.date) else k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v.isoformat() if isinstance(v, dt.date) and not isinstance(v, dt.datetime) else v


def validate(raw: dict, p: str, text: str | None = None) -> None:
    """Check a loaded spec against the schema; the first problem becomes one SpecError naming the key
    (and its line when the YAML text is at hand)."""
    data = _plain(raw)
    bad_key = _non_text_key(data, [])
    if bad_key is not None:
        path, k = bad_key
        line = _line_of(text, path) if text else None
        raise SpecError(p, _key(path), f"key {_short(k)} must be text" + (f" (line {line})" if line else ""))
    stamp = _valid_stamp(data)
    if stamp and stamp.exists():
        return
    import jsonschema      # 70-100 ms (its metaschemas): only where a spec was not seen valid before
    v = jsonschema.Draft202012Validator(schema())
    err = jsonschema.exceptions.best_match(v.iter_errors(data))
    if err is None:
        if stamp:
            try:
                stamp.parent.mkdir(parents=True, exist_ok=True)
                stamp.touch()
            except OSError:
                pass        # (validated again next time)
        return
    path, msg = _describe(err)
    line = _line_of(text, path) if text and err.validator != "required" else None
    raise SpecError(p, _key(path), msg + (f" (line {line})" if line else ""))


def _valid_stamp(data) -> Path | None:
    """The cache's mark that this spec (as data) passed this schema: every command reads the spec,
    and importing jsonschema was a third of a small command's start. None if it cannot be named."""
    from .cache import cache_dir
    try:
        text = json.dumps(data, sort_keys=True)
    except (TypeError, ValueError):
        return None
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes() + b"\0" + text.encode()).hexdigest()
    return cache_dir() / "valid-specs" / digest


def _non_text_key(v, path):
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str):
                return path, k
            found = _non_text_key(x, path + [k])
            if found:
                return found
    elif isinstance(v, list):
        for i, x in enumerate(v):
            found = _non_text_key(x, path + [i])
            if found:
                return found
    return None


_TYPE_NAMES = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping", "null": "empty"}


def _describe(e) -> tuple[list, str]:
    path = list(e.absolute_path)
    kind = e.validator
    for x in (e, e.parent):                 # the schema's own words for its rule, where it has some
        sch = x.schema if x is not None else None
        if isinstance(sch, dict) and "x-message" in sch:
            words = sch["x-message"]
            return list(x.absolute_path), (words if words.startswith("must") else f"{_short(x.instance, 60)} {words}")
    if kind == "additionalProperties":
        allowed = sorted(e.schema.get("properties", {}))
        extra = sorted(k for k in e.instance if k not in allowed and not any(
            re.search(pat, k) for pat in e.schema.get("patternProperties", {})))
        known = ", ".join(allowed) or ", ".join(sorted(e.schema.get("patternProperties", {})))
        return path + extra[:1], f"unknown key (known: {known})"
    if kind == "required":
        missing = [k for k in e.validator_value if k not in e.instance]
        return path + missing[:1], "is required"
    if kind == "type":
        t = e.validator_value
        names = " or ".join(_TYPE_NAMES.get(x, x) for x in (t if isinstance(t, list) else [t]))
        return path, f"must be {names}, not {_short(e.instance, 40)}"
    if kind == "enum":
        return path, f"{e.instance!r:.40} is not one of {', '.join(map(str, e.validator_value))}"
    if kind == "const":
        return path, f"must be {e.validator_value!r}"
    if kind == "pattern":
        return path, f"{_short(e.instance, 60)} is not allowed here (must match {e.validator_value})"
    if kind in ("minItems", "minProperties", "minLength"):
        return path, "must be non-empty"
    if kind == "uniqueItems":
        return path, "lists an item twice"
    if kind in ("maxItems", "maxProperties", "maxLength", "maximum", "minimum"):
        return path, f"out of range ({kind} {e.validator_value})"
    if kind == "oneOf":
        return path, f"{_short(e.instance, 60)} is not allowed here"
    return path, _short(e.message, 120)


def _key(path: list) -> str:
    parts = (f"[{x}]" if isinstance(x, int) else str(x) if str(x).isprintable() else repr(x) for x in path)
    return ".".join(parts).replace(".[", "[") or "-"


def _line_of(text: str, path: list) -> int | None:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            hit = [(k, v) for k, v in node.value if k.value == str(step)]
            if not hit:
                return node.start_mark.line + 1
            k, node = hit[0]
            if step == path[-1]:
                return k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            break
    return node.start_mark.line + 1 if node is not None else None


def _req(raw: dict, key: str, typ, p: str, default=None):
    v = raw.get(key, default)
    if v is None and default is None:
        raise SpecError(p, key, "is required")
    if not isinstance(v, typ):
        raise SpecError(p, key, f"must be {typ.__name__ if isinstance(typ, type) else typ[0].__name__}")
    return v


def parse(raw: dict, path: Path, text: str | None = None) -> Spec:
    """A Spec from loaded YAML: the schema first (`text` lets its errors give the line), then the
    checks a schema cannot express (templates, regular expressions, dates)."""
    p = str(path)
    validate(raw, p, text)
    prod = _req(raw, "product", dict, p)
    name = _req(prod, "name", str, p)
    if not _NAME_RE.fullmatch(name):
        raise SpecError(p, "product.name", f"{name!r} is not a plain name (letters, digits, . _ + -)")
    version = str(prod.get("version", "1"))
    release_name = _req(raw, "release_name", str, p, "{version}.{n}")

    _check_template(release_name, version, name, p, "release_name")
    machines = _machines(_req(raw, "machines", dict, p), p, "machines")

    formats = _req(raw, "formats", list, p, ["ipk"])
    for f in formats:
        if f not in KNOWN_FORMATS:
            raise SpecError(p, "formats", f"{f!r} is not one of {', '.join(KNOWN_FORMATS)}")
    if not formats:
        raise SpecError(p, "formats", "needs at least one format")

    feeds = raw.get("feeds") or {"layout": "per-arch"}
    if not isinstance(feeds, dict) or feeds.get("layout", "per-arch") != "per-arch":
        raise SpecError(p, "feeds.layout", "only 'per-arch' is supported (one feed per package architecture)")

    pub = raw.get("publish") or {}
    if not isinstance(pub, dict):
        raise SpecError(p, "publish", "must be a mapping with dir and url")
    publish_dir = str(pub.get("dir", "publish"))
    publish_url = str(pub.get("url", "http://localhost:8000"))
    publish_target = pub.get("target")
    from .s3 import TARGET      # one definition of an S3 target (s3.py imports nothing heavy)
    if publish_target is not None and not TARGET.match(str(publish_target)):
        raise SpecError(p, "publish.target", "must be s3://BUCKET[/PREFIX] (endpoint and credentials come from "
                        "the environment: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
    state_dir = str(raw.get("state_dir", "state"))
    state = raw.get("state") or {}
    database = state.get("database") if isinstance(state, dict) else None
    if database is not None and database_url_problem(database):
        raise SpecError(p, "state.database", database_url_problem(database))
    objects = state.get("objects") if isinstance(state, dict) else None
    if objects is not None and not TARGET.match(str(objects)):
        raise SpecError(p, "state.objects", "must be s3://BUCKET[/PREFIX] (endpoint and credentials come from the environment)")

    eol = _date(raw.get("eol"), p, "eol")
    series = _series(raw.get("series") or {}, version, release_name, name, formats, p)

    targets = raw.get("targets") or []
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise SpecError(p, "targets", "must be a list of bitbake targets")

    keys = raw.get("keys") or {}
    if not isinstance(keys, dict):
        raise SpecError(p, "keys", "must be a mapping (signing, previous, ipk_feed_signature, sign_ipk_packages)")
    signing = keys.get("signing")
    previous = keys.get("previous") or []
    sstate_keys = keys.get("sstate") or []
    for k, v in [("keys.signing", signing)] + [("keys.previous", x) for x in previous] + [("keys.sstate", x) for x in sstate_keys]:
        if v is not None and not (isinstance(v, str) and re.fullmatch(r"[0-9A-F]{40}", v)):
            raise SpecError(p, k, f"{v!r} is not a key fingerprint (40 upper-case hex digits; see `bindistro keys list`)")
    sigtype = keys.get("ipk_feed_signature", "asc")
    if sigtype not in ("asc", "sig"):
        raise SpecError(p, "keys.ipk_feed_signature", "must be asc (armored) or sig (binary)")

    boot = parse_boot(raw.get("boot"), p)
    security = parse_security(raw.get("security"), p)
    imgsec = raw.get("image_security") or {}
    units = imgsec.get("allowed_units", DEFAULT_UNITS) if isinstance(imgsec, dict) else None
    if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
        raise SpecError(p, "image_security.allowed_units", "must be a list of systemd unit names")

    src = raw.get("sources") or {}
    sources = Sources(list(src.get("copyleft", COPYLEFT_INCLUDE)), list(src.get("exclude", COPYLEFT_EXCLUDE)),
                      dict(src.get("exceptions") or {}), bool(src.get("downloads", False)))

    tools = raw.get("tools") or {}
    if not isinstance(tools, dict) or set(tools) - {"opkg"}:
        raise SpecError(p, "tools", "must be a mapping with opkg: PATH (the opkg binary for upgrade tests)")
    if tools.get("opkg") is not None and not isinstance(tools["opkg"], str):
        raise SpecError(p, "tools.opkg", "must be a path to an opkg binary")

    return Spec(product=name, version=version, opkg=tools.get("opkg"), boot=boot, security=security, image_security=ImageSecurity(list(units)), sources=sources, release_name=release_name, machines=machines,
                formats=list(formats), publish_dir=publish_dir, publish_url=publish_url, publish_target=publish_target,
                state_dir=state_dir, database=database, objects=objects, eol=eol, targets=list(targets), signing_key=signing,
                previous_keys=list(previous), ipk_feed_signature=sigtype,
                sign_ipk_packages=bool(keys.get("sign_ipk_packages", False)), sstate_keys=list(sstate_keys),
                # keys for sstate mean signed sstate is expected: on unless the spec says otherwise
                require_signed_sstate=bool(keys.get("require_signed_sstate", bool(sstate_keys))), series=series,
                path=path)


def _check_template(release_name: str, version: str, product: str, p: str, key: str) -> None:
    try:
        for _text, fname, fspec, conv in string.Formatter().parse(release_name):
            # plain fields only: a width like {n:>999999999} would build a gigabyte string
            if fname is not None and (fname not in ("version", "n", "date", "product") or fspec or conv):
                raise ValueError(f"{{{fname}{'!' + conv if conv else ''}{':' + fspec if fspec else ''}}}: "
                                 "only {version}, {n}, {date}, {product} without format specs")
        probe = release_name.format(version=version, n=1, date="20000101", product=product)
    except (KeyError, IndexError, ValueError) as e:
        raise SpecError(p, key, f"bad template: {e}") from None
    if not _NAME_RE.fullmatch(probe):
        raise SpecError(p, key, f"gives {probe!r}, not usable as a directory name")


def _machines(raw: dict, p: str, where: str) -> list[Machine]:
    if not raw:
        raise SpecError(p, where, "needs at least one machine")
    machines = []
    for mname, m in raw.items():
        key = f"{where}.{mname}"
        if not isinstance(m, dict) or not isinstance(m.get("archs"), list) or not m["archs"]:
            raise SpecError(p, f"{key}.archs", "must be a non-empty list of package architectures")
        for a in m["archs"]:
            if not isinstance(a, str) or not _NAME_RE.fullmatch(a):
                raise SpecError(p, f"{key}.archs", f"{a!r} is not a package architecture name")
        if len(set(m["archs"])) != len(m["archs"]):
            raise SpecError(p, f"{key}.archs", "lists an architecture twice")
        machines.append(Machine(str(mname), list(m["archs"])))
    return machines


def _date(v, p: str, key: str) -> dt.date | None:
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            raise SpecError(p, key, f"{v!r} is not a date (YYYY-MM-DD)") from None
    if v is not None and not isinstance(v, dt.date):
        raise SpecError(p, key, "must be a date (YYYY-MM-DD) or empty")
    return v


def _series(raw: dict, version: str, release_name: str, product: str, formats: list[str], p: str) -> list[Series]:
    """The declared series, oldest first. Their feed directories must not overlap, and a series name
    is never a format's (feeds/<format>/ is where a tree from before series keeps its feeds)."""
    out: list[Series] = []
    for name, x in raw.items():
        key = f"series.{name}"
        if name in KNOWN_FORMATS:
            raise SpecError(p, key, f"{name!r} is a package format's name; feeds/{name}/ is taken")
        x = x or {}
        ver = str(x["version"]) if x.get("version") is not None else None
        tmpl = x.get("release_name")
        _check_template(tmpl or release_name, ver or version, product, p, f"{key}.release_name")
        ups = x.get("upgrade_from")
        for u in ups or []:
            if u not in [o.name for o in out]:
                raise SpecError(p, f"{key}.upgrade_from", f"{u!r} is not a series listed before {name!r} "
                                "(series are listed oldest first)")
        path = x.get("path")
        if path is not None and not FEED_ROOT.fullmatch(path):
            raise SpecError(p, f"{key}.path", "must be feeds (a tree published before series) or feeds/NAME")
        s = Series(str(name), ver, tmpl, _date(x.get("eol"), p, f"{key}.eol"), bool(x.get("supported", True)),
                   list(ups) if ups is not None else None,
                   _machines(x["machines"], p, f"{key}.machines") if x.get("machines") else None, path)
        for o in out:
            if (s.version or version, s.release_name or release_name) == (o.version or version, o.release_name or release_name):
                raise SpecError(p, f"{key}.version", f"series {o.name} has the same version and release_name: "
                                "their release names would collide")
            if s.feed_root == o.feed_root:
                raise SpecError(p, f"{key}.path", f"{s.feed_root} is series {o.name}'s feed directory too")
        out.append(s)
    return out


DATABASE_URL = re.compile(r"^(sqlite|postgresql)(\+[a-z0-9]+)?://")


def database_url_problem(url) -> str | None:
    """Why `url` is no metadata DB URL for the store; None when it is one. Never one holding a
    password: PGPASSWORD or ~/.pgpass keep it out of a file that is committed and shared."""
    if not isinstance(url, str) or not DATABASE_URL.match(url):
        return "must be a postgresql://USER@HOST/DB URL (or sqlite:///PATH)"
    from urllib.parse import urlsplit
    if urlsplit(url).password:
        return "holds a password: give it in PGPASSWORD or ~/.pgpass instead"
    return None


def parse_security(raw, p: str) -> Security:
    if raw is None:
        return Security()
    if not isinstance(raw, dict):
        raise SpecError(p, "security", "must be a mapping (contact, policy_url, sla_days, expires_days)")
    known = {"contact", "policy_url", "sla_days", "expires_days"}
    for k in raw:
        if k not in known:
            raise SpecError(p, f"security.{k}", f"unknown key (known: {', '.join(sorted(known))})")
    contact = raw.get("contact", Security.contact)
    if not isinstance(contact, str) or not re.match(r"^(mailto:|https://|tel:)", contact):
        raise SpecError(p, "security.contact", "must be a mailto:, https:// or tel: URI (RFC 9116)")
    sla = dict(DEFAULT_SLA)
    for k, v in (raw.get("sla_days") or {}).items():
        if k not in DEFAULT_SLA:
            raise SpecError(p, f"security.sla_days.{k}", f"unknown severity (known: {', '.join(DEFAULT_SLA)})")
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise SpecError(p, f"security.sla_days.{k}", "must be a number of days")
        sla[k] = v
    exp = raw.get("expires_days", 365)
    if not isinstance(exp, int) or isinstance(exp, bool) or not 1 <= exp <= 366:
        raise SpecError(p, "security.expires_days", "must be 1..366 (RFC 9116 advises less than a year)")
    return Security(contact, raw.get("policy_url"), sla, exp)


def parse_boot(raw, p: str) -> Boot:
    if raw is None:
        return Boot()
    if not isinstance(raw, dict):
        raise SpecError(p, "boot", "must be a mapping (enabled, timeout, marker, login, checks, poweroff, network, pm_smoke, ptest)")
    known = {"enabled", "timeout", "marker", "login", "checks", "poweroff", "network", "pm_smoke", "ptest"}
    for k in raw:
        if k not in known:
            raise SpecError(p, f"boot.{k}", f"unknown key (known: {', '.join(sorted(known))})")
    b = Boot()
    timeout = raw.get("timeout", b.timeout)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise SpecError(p, "boot.timeout", "must be a positive number of seconds")
    marker = raw.get("marker", b.marker)
    if not isinstance(marker, str) or not marker:
        raise SpecError(p, "boot.marker", "must be a non-empty regular expression")
    try:
        re.compile(marker)
    except re.error as e:
        raise SpecError(p, "boot.marker", f"not a regular expression: {e}") from None
    checks = []
    for i, c in enumerate(raw.get("checks", [x.to_dict() for x in b.checks]) or []):
        if isinstance(c, str):
            c = {"run": c}
        if not isinstance(c, dict) or not isinstance(c.get("run"), str) or not c["run"].strip():
            raise SpecError(p, f"boot.checks[{i}]", "must be a command, or a mapping with run (and name, expect)")
        if c.get("expect") is not None:
            try:
                re.compile(c["expect"])
            except re.error as e:
                raise SpecError(p, f"boot.checks[{i}].expect", f"not a regular expression: {e}") from None
        checks.append(BootCheck(c["run"], str(c.get("name") or ""), c.get("expect")))
    for k in ("login", "pm_smoke"):
        if raw.get(k) is not None and not isinstance(raw.get(k), str):
            raise SpecError(p, f"boot.{k}", "must be a string or empty")
    return Boot(enabled=bool(raw.get("enabled", True)), timeout=timeout, marker=marker,
                login=raw.get("login", b.login), checks=checks, poweroff=str(raw.get("poweroff") or b.poweroff),
                network=bool(raw.get("network", False)), pm_smoke=raw.get("pm_smoke"),
                ptest=bool(raw.get("ptest", True)))


def find(start: Path) -> Path:
    """The spec file of the project containing `start` (like git finds its repository)."""
    start = start.resolve()
    for d in [start, *start.parents]:
        if (d / SPEC_FILE).is_file():
            return d / SPEC_FILE
    raise SpecError(str(start / SPEC_FILE), "-", "no bindistro.yml here or above (run `bindistro init` or pass -C DIR)")
