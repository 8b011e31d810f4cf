"""Errors that reach the user as one line each."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: the file it is about and what is wrong."""
    path: str
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class BindistroError(Exception):
    """A clear, expected failure; the CLI prints it as one line and exits 1."""
    exit_code = 1


class BadInput(BindistroError):
    """Input rejected; carries every problem found so the user sees them all at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SpecError(BindistroError):
    def __init__(self, path: str, key: str, message: str):
        self.path, self.key = path, key
        super().__init__(f"{path}: {key}: {message}")
