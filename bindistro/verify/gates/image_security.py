"""Image security, read from each image's root filesystem archive: no preset or empty passwords, no SSH
host keys baked in, and something that makes them on first boot when an SSH server is installed
(openssh's sshdgenkeys.service wanted by its sshd unit, dropbear's dropbearkey.service; or an init
script running ssh-keygen/dropbearkey); only allowlisted systemd units enabled, no new setuid/setgid
files since the last release, no world-writable files."""
from __future__ import annotations

import re
import stat

from ...formats.base import ARCHIVE_ERRORS, open_tar
from ..finding import Finding
from ..rootfs import IMAGE_LIMIT, rootfs_artifacts

NAME = "image-security"
WANTS = re.compile(r"^etc/systemd/system/[^/]+\.(wants|requires)/([^/]+)$")
LOCKED = re.compile(r"^(\*|!.*|x|)$")
SSH_SERVERS = ("usr/sbin/sshd", "usr/sbin/dropbear")
# units and init scripts that may make (or wire up) SSH host keys; their text is read (bounded)
KEYGEN_FILES = re.compile(r"^(usr/lib|lib|etc)/systemd/system/(sshd[^/]*|ssh[^/]*|dropbear[^/]*)\.(service|socket)$"
                          r"|^etc/init\.d/(sshd|ssh|dropbear)$|^etc/default/dropbear$")
KEYGEN_TOOLS = re.compile(r"ssh-keygen\s+-A|ssh-keygen\b.*-f|dropbearkey\b")


def scan(path, name: str) -> dict:
    info = {"shadow": None, "host_keys": [], "units": [], "setuid": [], "world_writable": [], "ssh_servers": [],
            "keygen": {}}
    with open(path, "rb") as fh:
        try:
            tf = open_tar(name, fh, limit=IMAGE_LIMIT)
            for m in tf:
                p = m.name.removeprefix("./").lstrip("/")
                if p == "etc/shadow" and m.isfile():
                    info["shadow"] = tf.extractfile(m).read(1 << 20).decode(errors="replace")
                elif re.match(r"^etc/ssh/ssh_host_.*key", p):
                    info["host_keys"].append("/" + p)
                elif p in SSH_SERVERS and (m.isfile() or m.issym()):
                    info["ssh_servers"].append("/" + p)
                elif KEYGEN_FILES.match(p) and m.isfile():
                    info["keygen"]["/" + p] = tf.extractfile(m).read(64 << 10).decode(errors="replace")
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


def first_boot_keys(machine: str, subj: str, s: dict) -> list[Finding]:
    """An SSH server without baked keys needs something that makes them at first boot, and that
    something must be reached: a key-generation unit that an sshd unit wants or requires (or that is
    enabled), or an init script that runs the key tool."""
    if not s["ssh_servers"] or s["host_keys"]:
        return []
    texts = s["keygen"]
    gen_units = {p.rsplit("/", 1)[-1] for p, t in texts.items() if "/systemd/" in p and KEYGEN_TOOLS.search(t)}
    wanted = any(re.search(rf"^(Wants|Requires|BindsTo)=.*\b{re.escape(u)}\b", t, re.M)
                 for u in gen_units for p, t in texts.items() if "/systemd/" in p and not p.endswith("/" + u))
    scripts = [p for p, t in texts.items() if "/systemd/" not in p and KEYGEN_TOOLS.search(t)]
    if (gen_units and (wanted or gen_units & set(s["units"]))) or scripts:
        how = ", ".join(sorted(gen_units) + scripts)
        return [Finding("info", NAME, "image-security.first-boot-keys", subj,
                        f"{machine}: SSH host keys are made on first boot ({how})", scope=s["ssh_servers"][0])]
    why = (f"{', '.join(sorted(gen_units))} is there but no sshd unit wants it and it is not enabled" if gen_units
           else "no key-generation unit (sshdgenkeys.service, dropbearkey.service) or init script")
    return [Finding("error", NAME, "image-security.no-first-boot-keys", subj,
                    f"{machine}: {s['ssh_servers'][0]} is installed but nothing makes SSH host keys on first "
                    f"boot: {why}", scope=s["ssh_servers"][0])]


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
            if len(parts) > 2 and parts[2] == "0" and not LOCKED.match(pw):
                # `passwd -e`: the password must be changed at the first login (a first-boot mechanism)
                out.append(Finding("info", NAME, "image-security.password-expired", subj,
                                   f"{machine}: user {user} must set a new password at first login (expired in /etc/shadow)", scope=user))
            if pw == "":
                out.append(Finding("error", NAME, "image-security.empty-password", subj, f"{machine}: user {user} has an empty password in /etc/shadow", scope=user))
            elif not LOCKED.match(pw):
                out.append(Finding("error", NAME, "image-security.preset-password", subj, f"{machine}: user {user} has a preset password in /etc/shadow", scope=user))
        for k in s["host_keys"]:
            out.append(Finding("error", NAME, "image-security.host-key", subj, f"{machine}: SSH host key {k} is in the image "
                               "(every device would share it; generate keys on first boot)", scope=k))
        out += first_boot_keys(machine, subj, s)
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
