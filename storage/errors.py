"""The one exception family of the storage package, and the mark that says "bad input"."""


class BadInput(Exception):
    """Marks an error as the person's mistake, not a failure: exit code 2, nothing changed.

    The cleanup stack unwinds quietly after it, and the command prints one line. Storage cannot
    import the installer's `UserError`, so both families carry this mark instead.
    """


class StorageError(Exception):
    """A storage operation failed; the message is written for the person at the keyboard."""


class UnsafeTargetError(StorageError, BadInput):
    """The target disk must not be touched (excluded, in use, not named by the plan)."""


class DeviceInUseError(UnsafeTargetError):
    """The disk or file is already attached or mounted: the message names the holders and the
    commands that release them."""
