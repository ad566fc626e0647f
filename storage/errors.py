"""The one exception family of the storage package."""


class StorageError(Exception):
    """A storage operation failed; the message is written for the person at the keyboard."""


class UnsafeTargetError(StorageError):
    """The target disk must not be touched (excluded, in use, not named by the plan)."""
