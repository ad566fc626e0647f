"""obelisk below its screens: answer files, the plan, image fetch, composefs deployment, boot,
the installed system, the install engine and the `obelisk` CLI.

Never imports Textual. Only `installer.cli` prints or asks; the rest reports through events and
exceptions (the engine yields events, it never prints).
"""

__version__ = "0.1.0"
