"""SAMPLE DATA defects, put into release N on purpose (relative to release N-1) to prove the gates."""
from __future__ import annotations

from .recipes import TUNE, Recipe

DEFECTS = {
    "pr-backwards": "bash's PR goes from r1 back to r0 (a PR DB that was not restored)",
    "same-version-new-content": "an unchanged package gets other bytes under the same version",
    "removed-package": "the recipe `less` disappears and nothing provides or replaces it",
    "broken-dependency": "htop depends on libdoesnotexist1, which no feed has",
    "debug-tweaks": "local.conf enables EXTRA_IMAGE_FEATURES debug-tweaks",
    "log-error": "the console log records a failed task",
    "unsolvable-upgrade": "the new util-linux conflicts with busybox, which every image has",
    "boot-panic": "the image's /init exits, so the kernel panics (\"Attempted to kill init\")",
    "postinst-fails-on-upgrade": "bindistro-hello's new postinst exits 1 when it is run for an upgrade",
    "breaks-after-upgrade": "bindistro-hello's new maintainer scripts botch a settings migration on upgrade "
                            "(exit 0): the fresh image is fine, an upgraded system fails a boot check",
    "conffile-not-noreplace": "shadow's new /etc/login.defs is %config without noreplace (rpm), not a "
                              "conffile (ipk, deb), and changed",
    "file-conflict": "the new kmod also ships /usr/bin/dbus, a file of the dbus package",
    "abi-break": "libhello.so.1 (bindistro-hello) drops hello_greet and changes hello_count, same SONAME",
    "root-password": "the image's /etc/shadow has a preset root password",
    "host-keys": "the image ships SSH host keys (/etc/ssh/ssh_host_ed25519_key)",
    "extra-service": "the image enables telnetd.service, which is not in the spec's allowlist",
    "missing-sources": "the archiver output of busybox (GPL-2.0-only) is missing from tmp/deploy/sources",
    "no-first-boot-keys": "the image drops openssh's sshdgenkeys.service: nothing makes SSH host keys on first boot",
    "image-not-preconfigured": "the images carry no feed configuration (a build conf without PACKAGE_FEED_URIS "
                               "and without bindistro's feed settings)",
    "series-backport-newer": "a backport into this (older) series: htop gets a version above the next branch's "
                             "(sample-build --series), so devices moving on would keep it",
}

# defects that do not need an earlier release to compare with
ANY_RELEASE = {"boot-panic", "debug-tweaks", "log-error", "root-password", "host-keys", "extra-service",
               "no-first-boot-keys", "missing-sources", "image-not-preconfigured", "series-backport-newer"}


def _bump(r: Recipe) -> None:
    r.prauto += 1
    r.rebuild += 1


def on_recipes(recipes: dict[str, Recipe], inject: list[str]) -> None:
    if "pr-backwards" in inject:
        recipes["bash"].pr = "r0"
    if "removed-package" in inject:
        recipes.pop("less", None)
    if "broken-dependency" in inject:
        recipes["htop"].rdepends.append("libdoesnotexist1")
        recipes["htop"].rebuild += 1
    if "breaks-after-upgrade" in inject:
        recipes["bindistro-hello"].breaks_after_upgrade = True
        _bump(recipes["bindistro-hello"])
    if "postinst-fails-on-upgrade" in inject:
        recipes["bindistro-hello"].postinst_fails_upgrade = True
        _bump(recipes["bindistro-hello"])
    if "conffile-not-noreplace" in inject:
        recipes["shadow"].config_noreplace = False
        _bump(recipes["shadow"])       # a new version: its /etc/login.defs changes
    if "file-conflict" in inject:
        _bump(recipes["kmod"])
    if "abi-break" in inject:
        recipes["bindistro-hello"].abi_break = True
        _bump(recipes["bindistro-hello"])
    if "series-backport-newer" in inject:
        from .recipes import jump
        recipes["htop"].pv = jump(recipes["htop"].pv) + ".1"
        recipes["htop"].prauto = recipes["htop"].rebuild = 0
    if "unsolvable-upgrade" in inject:
        recipes["util-linux"].conflicts.append("busybox")
        recipes["util-linux"].rebuild += 1


def on_packages(pkgs, recipes: dict[str, Recipe], prev: dict[str, Recipe], inject: list[str]) -> str | None:
    """Returns the recipe whose package was changed in place, if any."""
    if "file-conflict" in inject:
        from .packages import File
        for p in pkgs:
            if p.name == "kmod":
                p.files.append(File("/usr/bin/dbus", data=b"#!/bin/sh\n# kmod's copy (injected file conflict)\n", mode=0o755))
    if "same-version-new-content" not in inject:
        return None
    same = sorted(pn for pn, r in recipes.items() if r.kind == TUNE and pn in prev and prev[pn].version == r.version
                  and not pn.startswith(("glibc", "busybox")))
    victim = same[0]
    for p in pkgs:
        if p.recipe.pn == victim and p.name == victim:
            f = next(f for f in p.files if f.kind == "file")
            f.data += b"\n# injected: same version, other content\n"
    return victim


def on_local_conf(text: str, inject: list[str]) -> str:
    if "debug-tweaks" in inject:
        text = text.replace('EXTRA_IMAGE_FEATURES ?= ""', 'EXTRA_IMAGE_FEATURES ?= "debug-tweaks"')
    return text


def on_log(text: str, inject: list[str]) -> str:
    if "log-error" in inject:
        text = text.replace("NOTE: Tasks Summary:", "ERROR: bindistro-hello-1.0+git-r0 do_compile: oe_runmake failed\n"
                            "ERROR: Task (/layers/meta-sample/recipes/bindistro-hello/bindistro-hello_git.bb:do_compile) "
                            "failed with exit code '1'\nNOTE: Tasks Summary:")
        text = text.replace("and all succeeded.", "and 1 failed.\nSummary: 1 task failed:")
    return text
