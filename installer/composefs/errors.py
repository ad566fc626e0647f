"""Errors of the composefs core, written for the person at the keyboard."""

from __future__ import annotations

from installer.errors import InstallerError, UserError


class DeployError(InstallerError):
    """Deploying an image into the composefs repository failed."""


class TargetError(DeployError, UserError):
    """The deploy target is unusable (not a directory, a foreign repository): nothing changed."""


class LayerError(DeployError):
    """A layer blob is corrupt, does not match its digests, or holds a hostile entry."""


def short(digest: str) -> str:
    """`sha256:0123456789ab` — enough of a digest to find the layer, short enough to read."""
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else digest[:19]
