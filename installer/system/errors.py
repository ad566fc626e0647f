"""The installed-system engine's exception: configuring a deployment failed."""

from installer.errors import InstallerError


class ConfigureError(InstallerError):
    """The installed system could not be configured."""
