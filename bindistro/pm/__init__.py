"""Real package managers in throw-away roots: dnf --installroot for rpm, apt + dpkg --root for deb.

Both read only a published tree (file:// feeds). Host quirks handled here:
- Debian's rpm keeps its DB under ~/.rpmdb: a private HOME with `.rpmmacros` sets `%_dbpath`.
- rpm refuses Yocto arches (core2_64, qemux86_64) on an x86_64 host unless the private HOME's
  `.rpmrc` lists them in x86_64's `arch_compat`; dnf learns them from `<root>/etc/dnf/vars/arch`.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..errors import BindistroError

# the CPU each OE tune/machine package architecture runs on
CPU_OF = {"core2-64": "x86_64", "qemux86_64": "x86_64", "x86-64-v3": "x86_64", "corei7-64": "x86_64",
          "cortexa57": "aarch64", "cortexa53": "aarch64", "cortexa72": "aarch64", "armv8a": "aarch64",
          "qemuarm64": "aarch64", "aarch64": "aarch64", "cortexa57-virt": "aarch64"}
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def machine_cpu(archs: list[str]) -> str | None:
    return next((CPU_OF[a] for a in archs if a in CPU_OF), None)


def can_run(cpu: str | None) -> bool:
    """The host runs `cpu`'s binaries: natively, or through qemu-user registered with binfmt_misc
    with the F flag (so it also works inside a chroot, where maintainer scripts run)."""
    if cpu is None:
        return False
    if cpu == os.uname().machine:
        return True
    try:
        text = Path(f"/proc/sys/fs/binfmt_misc/qemu-{cpu}").read_text()
    except OSError:
        return False
    flags = next((l.split(":", 1)[1] for l in text.splitlines() if l.startswith("flags:")), "")
    return text.startswith("enabled") and "F" in flags


class PMError(BindistroError):
    def __init__(self, cmd: list[str], out: str):
        self.cmd, self.out = cmd, out
        super().__init__(f"{' '.join(cmd[:3])} … failed:\n{out[-2000:]}")


def run(cmd: list[str], env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """The one way package-manager processes run here: output captured as text; with `check`, a
    failure is a PMError carrying that output."""
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise PMError(cmd, r.stdout + r.stderr)
    return r


def _run(cmd: list[str], env: dict | None = None) -> str:
    return run(cmd, env, check=True).stdout


class DnfRoot:
    def __init__(self, work: Path, feeds: list[str], archs: list[str], repo_text: str | None = None):
        """`feeds`: base URLs (one repo each); `archs`: rpm arches, highest priority first;
        `repo_text`: a device's own .repo file instead (e.g. from `bindistro device-config`)."""
        self.root, self.home = work / "root", work / "home"
        (self.root / "etc" / "dnf" / "vars").mkdir(parents=True, exist_ok=True)
        (self.root / "etc" / "yum.repos.d").mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / ".rpmmacros").write_text("%_dbpath /var/lib/rpm\n")
        own = [a for a in archs if a != "noarch"]
        host = os.uname().machine        # rpm checks packages against the host's arch: make ours compatible
        (self.home / ".rpmrc").write_text(f"arch_compat: {host}: {' '.join(own)} amd64 em64t athlon noarch\n")
        (self.root / "etc" / "dnf" / "vars" / "arch").write_text(":".join(own + [host]))
        repo = "".join(f"[feed{i}]\nname=feed {u}\nbaseurl={u}\ngpgcheck=0\nrepo_gpgcheck=0\n\n"
                       for i, u in enumerate(feeds))
        (self.root / "etc" / "yum.repos.d" / "bindistro.repo").write_text(repo_text or repo)
        self.env = {"HOME": str(self.home), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}

    def dnf_cmd(self, *args: str) -> list[str]:
        return ["dnf", "-y", "-q", f"--installroot={self.root}", f"--setopt=reposdir={self.root}/etc/yum.repos.d",
                "--disableplugin=local", "--setopt=skip_if_unavailable=False", "--refresh",
                "--releasever=1", "--setopt=install_weak_deps=False", *args]

    def dnf(self, *args: str) -> str:
        return _run(self.dnf_cmd(*args), self.env)

    def installed(self) -> dict[str, str]:
        """name -> [epoch:]version-release."""
        out = _run(["rpm", f"--root={self.root}", "-qa", "--qf", "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\n"], self.env)
        res = {}
        for line in out.splitlines():
            name, evr = line.split(" ", 1)
            res[name] = evr[2:] if evr.startswith("0:") else evr
        return res


class AptRoot:
    def __init__(self, work: Path, feeds: list[str], dpkg_arch: str = "amd64", sources_text: str | None = None):
        """`feeds`: flat repository URLs (`deb [trusted=yes] URL ./`); `sources_text`: a device's
        own deb822 .sources file instead (signed feeds)."""
        self.root, self.apt = work / "root", work / "apt"
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "var/lib/dpkg/status").touch()
        for d in ("etc/apt/preferences.d", "etc/apt/apt.conf.d", "etc/apt/sources.list.d",
                  "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/log/apt"):
            (self.apt / d).mkdir(parents=True, exist_ok=True)
        if sources_text:
            (self.apt / "etc/apt/sources.list").write_text("")
            (self.apt / "etc/apt/sources.list.d/device.sources").write_text(sources_text)
        else:
            (self.apt / "etc/apt/sources.list").write_text("".join(f"deb [trusted=yes] {u} ./\n" for u in feeds))
        self.opts = [f"-oDir={self.apt}", f"-oDir::State::status={self.root}/var/lib/dpkg/status",
                     f"-oAPT::Architecture={dpkg_arch}", f"-oAPT::Architectures::={dpkg_arch}",
                     f"-oDPkg::Options::=--root={self.root}", f"-oDPkg::Options::=--log={self.root}/var/log/dpkg.log",
                     "-oDebug::NoLocking=1", "-oAPT::Sandbox::User=root", "-oAcquire::Languages=none",
                     "-oAPT::Install-Recommends=false"]
        # the device's apt configuration, not the host's: apt reads APT_CONFIG first, and the parts
        # directory it names replaces /etc/apt/apt.conf.d (Debian's 70debconf there runs
        # dpkg-preconfigure, i.e. apt-extracttemplates over every .deb, which no Yocto device has)
        (self.apt / "apt.conf").write_text(f'Dir::Etc::parts "{self.apt}/etc/apt/apt.conf.d";\n'
                                           f'Dir::Etc::main "{self.apt}/etc/apt/apt.conf";\n')
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
                    "APT_CONFIG": str(self.apt / "apt.conf")}

    def apt_get(self, *args: str) -> str:
        return _run(["apt-get", "-y", "-q", *self.opts, *args], self.env)

    def installed(self) -> dict[str, str]:
        out = _run(["dpkg-query", f"--admindir={self.root}/var/lib/dpkg", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n"], self.env)
        return {l.split()[0]: l.split()[1] for l in out.splitlines() if l.split()[2:3] == ["ii"]}
