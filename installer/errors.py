"""The engine's exception family. `UserError` means bad input: exit code 2, nothing changed."""

from storage.errors import BadInput, StorageError


class InstallerError(Exception):
    """An install step failed (exit code 1 after cleanup)."""


class UserError(InstallerError, BadInput):
    """Bad input from the person or their files: exit code 2, nothing was changed on disk."""


__all__ = ["BadInput", "InstallerError", "StorageError", "UserError"]
