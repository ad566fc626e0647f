"""One module per `obelisk` subcommand, each with `run(args) -> int`."""
