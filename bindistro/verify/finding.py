"""The one result type every gate returns."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    severity: str          # error | warning | info
    gate: str
    subject: str           # package, file, image ...
    message: str           # one line
    details: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        # stable across runs, so a waiver keeps applying when verify runs again
        return hashlib.sha1(f"{self.gate}\0{self.subject}\0{self.message}".encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return {"id": self.id, "severity": self.severity, "gate": self.gate, "subject": self.subject,
                "message": self.message, "details": self.details}
