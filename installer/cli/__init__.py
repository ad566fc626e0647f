"""The `obelisk` command line: parsing, subcommands and the event printer; the only printer."""
