"""The obelisk engine: plans, image fetch, composefs deployment, bootloader and the CLI.

Never imports Textual; never prints except in `installer.cli.main`.
"""

__version__ = "0.1.0"
