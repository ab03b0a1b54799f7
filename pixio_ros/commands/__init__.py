"""Subcommands of `pixio-ros`; see `pixio_ros.cli.COMMANDS`."""
