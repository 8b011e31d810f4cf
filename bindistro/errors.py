"""The one model of "something is wrong" and the one error type that carries it to the user.

A `Finding` is what a gate, a check of input, or fsck reports: a severity, the rule that found it (a
stable code, `<area>.<check>`), its subject, one line of message and structured details. Its id comes
from (gate, rule, subject, scope), never from the wording, so a waiver outlives a reworded message.
`Problem` is the same type for input that is wrong: its subject is the file.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"          # blocks: the command fails, the candidate is refused
    WARNING = "warning"      # reported, does not block
    INFO = "info"            # what was checked and found fine, for the record


@dataclass
class Finding:
    severity: Severity
    gate: str                # who checked: a gate's name, or "input" / "fsck"
    rule: str                # stable code of the check, e.g. "buildhistory.version-backwards"
    subject: str             # package, file, image, machine ... ("-" for the candidate as a whole)
    message: str             # one line, for people; free to change
    details: dict = field(default_factory=dict)
    scope: str = ""          # data telling two findings of one rule and subject apart (format/machine/release)

    def __post_init__(self):
        self.severity = Severity(self.severity)

    @property
    def id(self) -> str:
        # stable across runs and rewordings, so a waiver keeps applying when verify runs again
        return hashlib.sha1(f"{self.gate}\0{self.rule}\0{self.subject}\0{self.scope}".encode()).hexdigest()[:12]

    @property
    def legacy_id(self) -> str:
        """The id bindistro gave before findings had rules (from the message): waivers made then."""
        return legacy_id(self.gate, self.subject, self.message)

    @property
    def path(self) -> str:
        return self.subject

    def to_dict(self) -> dict:
        return {"id": self.id, "severity": str(self.severity), "gate": self.gate, "rule": self.rule,
                "subject": self.subject, "message": self.message, "details": self.details}

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


def legacy_id(gate: str, subject: str, message: str) -> str:
    return hashlib.sha1(f"{gate}\0{subject}\0{message}".encode()).hexdigest()[:12]


class Problem(Finding):
    """Input that is wrong: `path: message`, rule `input.invalid` unless a closer one is known."""

    def __init__(self, path: str, message: str, severity: Severity | str = Severity.ERROR,
                 rule: str = "input.invalid", details: dict | None = None):
        super().__init__(severity, "input", rule, str(path), message, details or {})


class BindistroError(Exception):
    """A clear, expected failure; the CLI prints it as one line and exits 1. Every error the product
    raises on purpose derives from it."""
    exit_code = 1


class BadInput(BindistroError):
    """Input rejected; carries every problem found so the user sees them all at once."""

    def __init__(self, problems: list[Finding]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SpecError(BindistroError):
    def __init__(self, path: str, key: str, message: str):
        self.path, self.key = path, key
        super().__init__(f"{path}: {key}: {message}")
