"""Images preconfigured for the feeds: what `restore` (and `build` before the first release) puts
into a build directory so that every image bitbake makes next points at its machine's feeds, with
signature checking on and the distro's feed keys where its package manager reads them.

OE alone writes feed lines from PACKAGE_FEED_URIS / _BASE_PATHS / _ARCHS (ipk: base-feeds.conf,
rpm: oe-remote-repo*.repo, deb: `deb [trusted=yes]` lines in sources.list) but no opkg signature
option and no apt key. So a class of our own (found through BBPATH, which holds TOPDIR) copies
the files `bindistro device-config` would write for the machine over them, at rootfs time.
"""
from __future__ import annotations

from pathlib import Path

from ..device import ARCH_FILES, feed_files

CLASS_NAME = "bindistro-feeds"
FILES_DIR = "conf/bindistro/feeds"      # <machine>/<package type>/<path in the image>
CLASS = """\
# Written by bindistro (restore / build): every image carries its machine's feed configuration and
# the distro's feed keys, as `bindistro device-config` writes them, instead of the unchecked feed
# lines OE writes from PACKAGE_FEED_URIS. Re-written by every restore; do not edit.
ROOTFS_POSTPROCESS_COMMAND += "bindistro_feed_files;"

bindistro_feed_files () {
	src="${BINDISTRO_FEED_FILES}/${MACHINE}/${IMAGE_PKGTYPE}"
	if [ ! -d "$src" ]; then
		bbfatal "bindistro: no feed configuration for ${MACHINE} (${IMAGE_PKGTYPE}) under ${BINDISTRO_FEED_FILES}; run bindistro restore"
	fi
	rm -f ${IMAGE_ROOTFS}${sysconfdir}/yum.repos.d/oe-remote-repo*.repo
	if [ -f ${IMAGE_ROOTFS}${sysconfdir}/apt/sources.list ]; then
		sed -i -e '/^deb \\[trusted=yes\\] /d' ${IMAGE_ROOTFS}${sysconfdir}/apt/sources.list
	fi
	cp -R --no-preserve=ownership "$src"/. ${IMAGE_ROOTFS}/
}
"""


def write(build: Path, product: str, url: str, machines: dict[str, dict[str, list[str]]], keys: dict[str, bytes],
          ipk_signature: str, feed_root: str = "feeds") -> list[str]:
    """Write the class and each machine's files for each format; returns the conf lines that turn
    them on. `machines`: machine -> format -> its feeds' architecture names, most generic first."""
    import shutil
    root = build / FILES_DIR
    shutil.rmtree(root, ignore_errors=True)       # a machine or key dropped since must not linger
    if not machines:
        # a release manifest from before bindistro recorded each machine's feeds: the class would
        # stop every image build, so the images keep what OE writes from PACKAGE_FEED_* alone
        (build / "classes" / f"{CLASS_NAME}.bbclass").unlink(missing_ok=True)
        return ["# this release names no machine's feeds: images get OE's own feed configuration", ""]
    for machine, per_fmt in sorted(machines.items()):
        for fmt, archs in per_fmt.items():
            files = feed_files(product, url, fmt, archs, keys, ipk_signature, feeds=feed_root)
            # the image has its own (opkg-arch-config's arch.conf, OE's RpmPM files): all of PACKAGE_ARCHS
            for own in ARCH_FILES:
                files.pop(own, None)
            for rel, data in files.items():
                p = root / machine / fmt / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)
    (build / "classes").mkdir(exist_ok=True)
    (build / "classes" / f"{CLASS_NAME}.bbclass").write_text(CLASS)
    return ["# every image gets its machine's feed configuration, signature checking and the feed keys",
            f"# ({FILES_DIR}/<machine>/<package type>/, copied in by classes/{CLASS_NAME}.bbclass)",
            f'INHERIT += "{CLASS_NAME}"', f'BINDISTRO_FEED_FILES = "${{TOPDIR}}/{FILES_DIR}"', ""]
