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
    import sys

    from spikeforge.host.recorder import control_path_warning, link_problem

    config = config_from_args(args)
    print(config.describe())
    print(json.dumps(config.to_dict(), indent=2))
    # Said up front, not only as a load inside the description.
    for problem in (link_problem(config), control_path_warning(config)):
        if problem is not None:
            print(f"spikeforge: warning: {problem}", file=sys.stderr)
    return ExitCode.OK
