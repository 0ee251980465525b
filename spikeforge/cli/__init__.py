"""The one command-line entry point, ``spikeforge``; the only package that ties all layers.

One module per command family, as Glasgow's applets: each has ``register(commands)``, which
adds its sub-commands and their options to the ``spikeforge`` parser and sets each one's
handler (``run``). Handlers import what they need when they run, so ``spikeforge --help``
and a recording from a board do not load the HDL toolchain. Exit codes:
:class:`spikeforge.host.errors.ExitCode`.
"""

import argparse
import logging
import sys

from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.host.errors import ExitCode, exit_code_of

from . import bench, boards, budget, config, decrypt, key, prior, record, report, sim, stream

__all__ = ["main", "build_parser"]

#: The command families, in the order ``spikeforge --help`` lists them.
FAMILIES = (sim, boards, record, prior, stream, bench, budget, config, report, key, decrypt)


def build_parser() -> argparse.ArgumentParser:
    """The ``spikeforge`` parser with every family's commands."""
    parser = argparse.ArgumentParser(
        prog="spikeforge",
        description="Open acquisition and processing chips for brain-computer interfaces.")
    commands = parser.add_subparsers(dest="command", required=True)
    for family in FAMILIES:
        family.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.run(args)
    except SpikeforgeError as exc:
        print(f"spikeforge: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    except KeyboardInterrupt:
        print("spikeforge: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
