"""What gates return: the project's one Finding type (errors.py), re-exported for gate authors."""
from __future__ import annotations

from ..errors import Finding, Severity, legacy_id

SEVERITIES = tuple(s.value for s in Severity)

__all__ = ["Finding", "Severity", "SEVERITIES", "legacy_id"]
