"""The `bindistro cve` commands moved to bindistro/cli/cve.py (the command line is one package). This
name stays so scripts that import it keep working; it loads the commands only when asked, so the
PSIRT package does not depend on the command line."""
from __future__ import annotations

import importlib


def __getattr__(name: str):
    return getattr(importlib.import_module("bindistro.cli.cve"), name)
