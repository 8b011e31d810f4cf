"""The root filesystem archives among a candidate's images, for the gates that read them."""
from __future__ import annotations

from .. import model
from ..model import ROOTFS

IMAGE_LIMIT = 1 << 40   # a rootfs is only streamed through, never held: bound it loosely


def rootfs_artifacts(arts) -> dict[str, object]:
    """machine -> its rootfs archive (the newest name when an image dir has several)."""
    out = {}
    for a in arts:
        if a.kind == model.IMAGE and ROOTFS.search(a.name or ""):
            m = a.meta.get("machine") or a.arch
            if m not in out or a.name > out[m].name:
                out[m] = a
    return out
