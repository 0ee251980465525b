"""``spikeforge config``: validate and show a configuration."""

import argparse
import json

from spikeforge.host.errors import ExitCode

from .options import add_config_options, config_from_args

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("config", help="validate and show a configuration")
    add_config_options(parser)
    parser.set_defaults(run=cmd_config)


def cmd_config(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    print(config.describe())
    print(json.dumps(config.to_dict(), indent=2))
    return ExitCode.OK
