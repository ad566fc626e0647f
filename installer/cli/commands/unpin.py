"""`obelisk unpin ID`: see `pin`."""

from installer.cli.commands.pin import run

__all__ = ["run"]
