"""The engine's exception family. `UserError` means bad input: exit code 2, nothing changed."""

from storage.errors import StorageError


class InstallerError(Exception):
    """An install step failed (exit code 1 after cleanup)."""


class UserError(InstallerError):
    """Bad input from the person or their files: exit code 2, nothing was changed on disk."""


class Cancelled(InstallerError):
    """The person asked to stop; everything done so far was undone."""


__all__ = ["Cancelled", "InstallerError", "StorageError", "UserError"]
