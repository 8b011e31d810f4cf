"""Configuration audit of local.conf / bblayers.conf / auto.conf and kas files, parsed by bitbake."""
from __future__ import annotations

import tempfile
from pathlib import Path

from ... import model
from ...yocto import conf as bbconf
from ...yocto import kas
from ..finding import Finding

NAME = "config"
INSECURE = ("debug-tweaks", "allow-empty-password", "empty-root-password", "allow-root-login")


def audit(d, subject: str, ships_gpl: bool, spec=None) -> list[Finding]:
    out = []
    feats = set(bbconf.words(d, "IMAGE_FEATURES")) | set(bbconf.words(d, "EXTRA_IMAGE_FEATURES"))
    for f in INSECURE:
        if f in feats:
            out.append(Finding("error", NAME, "config.image-feature", subject, f"image feature {f} is enabled: released images must not "
                               "allow password-less or root logins", scope=f))
    classes = set(bbconf.words(d, "INHERIT")) | set(bbconf.words(d, "USER_CLASSES"))
    for c in ("reproducible_build", "buildhistory"):
        if c not in classes:
            out.append(Finding("warning", NAME, "config.class-missing", subject, f"{c} is not inherited (INHERIT / USER_CLASSES)", scope=c))
    if d.getVar("BB_SIGNATURE_HANDLER") != "OEEquivHash" or not d.getVar("BB_HASHSERVE"):
        out.append(Finding("error", NAME, "config.hashequiv-off", subject, 'hash equivalence is off: set BB_SIGNATURE_HANDLER = "OEEquivHash" '
                           "and BB_HASHSERVE"))
    if not d.getVar("PRSERV_HOST"):
        out.append(Finding("error", NAME, "config.no-prserv", subject, "no PR server (PRSERV_HOST): package revisions cannot keep rising"))
    if ships_gpl and "archiver" not in classes:
        out.append(Finding("warning", NAME, "config.no-archiver", subject, "GPL packages ship but the archiver class is not inherited"))
    if "archiver" in classes:
        # the process page: original sources, the recipe, and the recipe's data
        for flag, want in (("src", "original"), ("recipe", "1"), ("dumpdata", "1")):
            have = d.getVarFlag("ARCHIVER_MODE", flag) or ""
            if have != want:
                out.append(Finding("warning", NAME, "config.archiver-mode", subject, f'ARCHIVER_MODE[{flag}] is "{have}"; '
                                   f'set "{want}" so the published sources rebuild what shipped', scope=flag))
    if "packagefeed-stability" in classes:
        out.append(Finding("warning", NAME, "config.obsolete-class", subject, "packagefeed-stability was removed from oe-core in "
                           "2020 (hash equivalence and reproducible builds took its place): drop it from INHERIT",
                           scope="packagefeed-stability"))
    distro = d.getVar("DISTRO") or ""
    if distro in ("", "nodistro"):
        out.append(Finding("warning", NAME, "config.no-distro", subject, "DISTRO is not set: a binary distro needs its own "
                           "distro configuration (its feeds, versions and policies)"))
    if d.getVar("DEFAULTTUNE"):
        out.append(Finding("warning", NAME, "config.defaulttune", subject, f'DEFAULTTUNE = "{d.getVar("DEFAULTTUNE")}" is set: the '
                           "feeds carry the machines' default tunes only, and packages of another tune will not install from them"))
    if spec is not None and d.getVar("PACKAGE_CLASSES") is not None:     # (unset here: the distro conf's)
        classes_pkg = bbconf.words(d, "PACKAGE_CLASSES")
        for fmt in spec.formats:
            if f"package_{fmt}" not in classes_pkg:
                out.append(Finding("error", NAME, "config.package-classes", subject, f"the spec publishes {fmt} but PACKAGE_CLASSES "
                                   f'("{" ".join(classes_pkg)}") has no package_{fmt}', scope=fmt))
    return out


def layer_findings(ctx) -> list[Finding]:
    from ...yocto import layers as L
    a = next((a for a in ctx.artifacts if a.kind == model.LAYERS), None)
    if a is None:
        return [Finding("warning", NAME, "config.no-layer-list", "layers", "no layer list (setup-layers.json, kas file or buildhistory "
                        "metadata-revs): the release cannot be rebuilt from source")]
    out = []
    for l in L.from_json(ctx.store.objects.path(a.sha256).read_text()):
        if not l.pinned:
            out.append(Finding("error", NAME, "config.layer-unpinned", l.name, f"layer {l.name} is not pinned to a commit "
                               f"({l.branch or 'no revision'}; from {a.meta.get('from', '?')})"))
    return out


def run(ctx) -> list[Finding]:
    out = layer_findings(ctx)
    ships_gpl = any("GPL" in str((a.meta or {}).get("License", "")) for a in ctx.artifacts if a.kind == model.PACKAGE)
    confs = {a.path: a for a in ctx.artifacts if a.kind == model.CONF}
    bbconfs = [p for p in ("conf/bblayers.conf", "conf/local.conf", "conf/auto.conf") if p in confs]
    with tempfile.TemporaryDirectory(dir=ctx.work) as tmp:
        top = Path(tmp)
        (top / "conf").mkdir()
        for p, a in confs.items():
            if p.startswith("conf/"):   # required fragments too, e.g. conf/bindistro.conf
                (top / p).write_bytes(ctx.store.objects.path(a.sha256).read_bytes())
        if bbconfs:
            try:
                d = bbconf.parse([top / p for p in bbconfs], top)
                out += audit(d, "conf/local.conf", ships_gpl, ctx.spec)
            except bbconf.ConfError as e:
                out.append(Finding("error", NAME, "config.conf-unparsable", "conf", str(e).replace(str(top) + "/", "")))
        else:
            out.append(Finding("warning", NAME, "config.no-local-conf", "conf", "no conf/local.conf in the candidate: configuration not audited"))
        for p, a in confs.items():
            if not p.endswith((".yml", ".yaml")) or p.endswith(".lock.yml"):
                continue
            kf = top / Path(p).name
            kf.write_bytes(ctx.store.objects.path(a.sha256).read_bytes())
            lock = confs.get(p.rsplit(".", 1)[0] + ".lock.yml")
            if lock:
                kf.with_name(kf.stem + ".lock.yml").write_bytes(ctx.store.objects.path(lock.sha256).read_bytes())
            out += audit_kas(kf, p, ships_gpl)
    return out


def audit_kas(path: Path, subject: str, ships_gpl: bool = False) -> list[Finding]:
    out = []
    k = kas.load(path)
    try:
        d = bbconf.parse([], path.parent, {f"{subject} local_conf_header {n}": t for n, t in k.local_conf.items()})
    except bbconf.ConfError as e:
        return [Finding("error", NAME, "config.kas-unreadable", subject, str(e))]
    # kas files rarely carry hash-equivalence and PR settings (they often come from the distro conf),
    # so only what a kas file states is judged here: image features and pinning
    out += [f for f in audit(d, subject, ships_gpl) if "image feature" in f.message]
    for r in k.repos:
        if r.url and not r.commit:
            out.append(Finding("error", NAME, "config.repo-unpinned", subject, f"layer repository {r.name} is not pinned to a commit "
                               f"(branch {r.branch or '?'}; add commit: or a .lock.yml)", scope=r.name))
    return out
