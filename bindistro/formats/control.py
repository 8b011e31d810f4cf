"""Debian-style control data, shared by ipk and deb."""
from __future__ import annotations

import re

from debian import deb822

from .base import PackageError


def parse_control(data: bytes, what: str = "control") -> dict:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PackageError([f"{what} is not UTF-8 (byte {e.start})"]) from None
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip("\n")) if p.strip()]
    if len(paragraphs) > 1:     # dpkg and opkg read one; a second would be a package nobody built
        raise PackageError([f"{what} holds {len(paragraphs)} paragraphs, not one"])
    return dict(deb822.Deb822(text))


def missing_fields(fields: dict, required: tuple[str, ...]) -> list[str]:
    lower = {k.lower(): v for k, v in fields.items()}
    return [f"control lacks field {f}" for f in required if not str(lower.get(f.lower(), "")).strip()]


def read_paragraphs(data: bytes) -> list[dict]:
    import io
    return [dict(p) for p in deb822.Deb822.iter_paragraphs(io.StringIO(data.decode("utf-8")), use_apt_pkg=False)
            if p]
