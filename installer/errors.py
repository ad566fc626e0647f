"""The engine's exception family. `UserError` means bad input: exit code 2, nothing changed."""

from storage.errors import BadInput, StorageError


class InstallerError(Exception):
    """An install step failed (exit code 1 after cleanup)."""


class UserError(InstallerError, BadInput):
    """Bad input from the person or their files: exit code 2, nothing was changed on disk."""


class Cancelled(InstallerError):
    """The person asked to stop; everything done so far was undone."""


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its class name if it has none), for one-line reports."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["BadInput", "Cancelled", "InstallerError", "StorageError", "UserError", "first_line"]
