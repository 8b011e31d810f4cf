"""Image security, read from each image's root filesystem archive: no preset or empty passwords, no SSH
host keys baked in (they must be made on first boot), only allowlisted systemd units enabled, no new
setuid/setgid files since the last release, no world-writable files."""
from __future__ import annotations

import re
import stat

from ... import model
from ...formats.base import ARCHIVE_ERRORS, open_tar
from ..finding import Finding

NAME = "image-security"
ROOTFS = re.compile(r"\.rootfs.*\.tar(\.(gz|bz2|xz|zst))?$")
WANTS = re.compile(r"^etc/systemd/system/[^/]+\.(wants|requires)/([^/]+)$")
LOCKED = re.compile(r"^(\*|!.*|x|)$")


def rootfs_artifacts(arts) -> dict[str, object]:
    """machine -> its rootfs archive (the newest name when an image dir has several)."""
    out = {}
    for a in arts:
        if a.kind == model.IMAGE and ROOTFS.search(a.name or ""):
            m = a.meta.get("machine") or a.arch
            if m not in out or a.name > out[m].name:
                out[m] = a
    return out


IMAGE_LIMIT = 1 << 40   # a rootfs is only streamed through here, never held: bound it loosely


def scan(path, name: str) -> dict:
    info = {"shadow": None, "host_keys": [], "units": [], "setuid": [], "world_writable": []}
    with open(path, "rb") as fh:
        try:
            tf = open_tar(name, fh, limit=IMAGE_LIMIT)
            for m in tf:
                p = m.name.removeprefix("./").lstrip("/")
                if p == "etc/shadow" and m.isfile():
                    info["shadow"] = tf.extractfile(m).read(1 << 20).decode(errors="replace")
                elif re.match(r"^etc/ssh/ssh_host_.*key", p):
                    info["host_keys"].append("/" + p)
                w = WANTS.match(p)
                if w and (m.issym() or m.isfile()):
                    info["units"].append(w.group(2))
                if m.isfile() and m.mode & (stat.S_ISUID | stat.S_ISGID):
                    info["setuid"].append("/" + p)
                if (m.isfile() and m.mode & stat.S_IWOTH) or (m.isdir() and m.mode & stat.S_IWOTH
                                                               and not m.mode & stat.S_ISVTX):
                    info["world_writable"].append("/" + p)
        except ARCHIVE_ERRORS as e:
            info["error"] = str(e)
    return info


def template(unit: str) -> str:
    # serial-getty@ttyS0.service is an instance of serial-getty@.service
    return re.sub(r"@[^.]*\.", "@.", unit)


def run(ctx) -> list[Finding]:
    cand = rootfs_artifacts(ctx.artifacts)
    if not cand:
        return [Finding("info", NAME, "image-security.no-rootfs", "-", "no root filesystem archive (.tar*) among the images: nothing inspected")]
    last = rootfs_artifacts(ctx.release_artifacts(ctx.last)) if ctx.last else {}
    allowed = set(ctx.spec.image_security.allowed_units)
    out = []
    for machine, a in sorted(cand.items()):
        s = scan(ctx.store.objects.path(a.sha256), a.name)
        subj = a.path
        if "error" in s:
            out.append(Finding("error", NAME, "image-security.unreadable", subj, f"{machine}: root filesystem archive unreadable: {s['error']}"))
            continue
        if s["shadow"] is None:
            out.append(Finding("warning", NAME, "image-security.no-shadow", subj, f"{machine}: no /etc/shadow in the image"))
        for line in (s["shadow"] or "").splitlines():
            parts = line.split(":")
            if len(parts) < 2:
                continue
            user, pw = parts[0], parts[1]
            if pw == "":
                out.append(Finding("error", NAME, "image-security.empty-password", subj, f"{machine}: user {user} has an empty password in /etc/shadow", scope=user))
            elif not LOCKED.match(pw):
                out.append(Finding("error", NAME, "image-security.preset-password", subj, f"{machine}: user {user} has a preset password in /etc/shadow", scope=user))
        for k in s["host_keys"]:
            out.append(Finding("error", NAME, "image-security.host-key", subj, f"{machine}: SSH host key {k} is in the image "
                               "(every device would share it; generate keys on first boot)", scope=k))
        for u in sorted(set(s["units"])):
            if u not in allowed and template(u) not in allowed:
                out.append(Finding("error", NAME, "image-security.unit-not-allowed", subj, f"{machine}: unit {u} is enabled by default and not in "
                                   "image_security.allowed_units", scope=u))
        if machine in last:
            before = scan(ctx.store.objects.path(last[machine].sha256), last[machine].name)
            for f in sorted(set(s["setuid"]) - set(before["setuid"])):
                out.append(Finding("warning", NAME, "image-security.new-setuid", subj, f"{machine}: new setuid/setgid file {f} since {ctx.last.name}", scope=f))
        for f in s["world_writable"]:
            out.append(Finding("warning", NAME, "image-security.world-writable", subj, f"{machine}: world-writable {f}", scope=f))
        out.append(Finding("info", NAME, "image-security.summary", subj, f"{machine}: {len(set(s['units']))} units enabled, "
                           f"{len(s['setuid'])} setuid/setgid files", {"units": sorted(set(s["units"])),
                                                                         "setuid": s["setuid"]}))
    return out
