"""One exception hierarchy for everything meshkit raises at people.

Retry logic reads the `TransientError` / `TerminalError` mix-ins; the CLI's single handler prints
`Error: <message>` for any `MeshkitError` and shows a traceback only with `--debug`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a problem is: a file, optionally a line, and a field path inside the document."""

    file: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where} ({self.field})" if self.field else where


class MeshkitError(Exception):
    """Base of every error meant for a person: what happened, where, and what to do."""

    def __init__(self, reason: str, *, location: Location | None = None, hint: str | None = None) -> None:
        self.reason = reason
        self.location = location
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.location}: {self.reason}" if self.location else self.reason
        return f"{text}. {self.hint}" if self.hint else text


class TransientError(MeshkitError):
    """Worth retrying: throttling, timeouts, a service briefly unavailable."""


class TerminalError(MeshkitError):
    """Retrying cannot help: fix the input or the configuration first."""


class ConfigError(TerminalError):
    """A configuration key is missing or has an invalid value."""


class ContractError(TerminalError):
    """A contract or product descriptor cannot be loaded or used."""


class NameError_(TerminalError):  # noqa: N801 - avoids shadowing the builtin NameError
    """A user-supplied name would be unsafe as a path, table or Terraform identifier."""


class ProductNotFoundError(TerminalError):
    """The named data product does not exist in the domains folder."""
