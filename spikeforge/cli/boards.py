"""``spikeforge build``, ``flash``, ``boards`` and ``figures``: bitstreams for the supported
boards, programming them, and their resource and timing figures."""

import argparse
import json
from pathlib import Path

from spikeforge.firmware.config import SystemConfig
from spikeforge.host.errors import ExitCode

from .options import add_config_options, config_from_args

__all__ = ["register", "board_config"]


def register(commands: argparse._SubParsersAction) -> None:
    for name, handler, text in (("build", cmd_build, "build the bitstream for a board"),
                                ("flash", cmd_flash, "build (cached) and program a board")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--board", required=True)
        add_config_options(sub)
        if name == "flash":
            sub.add_argument("--ftdi-serial", help="program the board with this FTDI serial")
        sub.set_defaults(run=handler)

    boards = commands.add_parser(
        "boards", help="list the supported boards: FPGA, clock, link, largest configuration")
    boards.set_defaults(run=cmd_boards)

    figures = commands.add_parser(
        "figures", help="build the reference configurations on each board; record the "
                        "resource and timing figures (boards/figures.json, docs/boards.md)")
    figures.add_argument("--board", action="append",
                         help="only this board (repeatable); default: every board")
    figures.add_argument("--channels", type=int, action="append",
                         help="only this channel count (repeatable); default: 16 ... 1024")
    figures.add_argument("--config", metavar="FILE.json",
                         help="SystemConfig fields laid over each board's default (e.g. "
                              "enabling a core)")
    figures.add_argument("--build-dir", default="build")
    figures.add_argument("--keep-going", action="store_true",
                         help="also build the counts above a board's first failure")
    figures.add_argument("--docs", default="docs/boards.md",
                         help="Markdown file whose figures section is rewritten ('' : none)")
    figures.add_argument("--no-record", action="store_true",
                         help="print the table only; do not write the record or the docs")
    figures.add_argument("--no-shares", action="store_true",
                         help="skip each core's share (one Yosys run per build)")
    figures.add_argument("--shares-only", action="store_true",
                         help="build nothing: fill each core's share into the recorded rows "
                              "of --board/--channels/--config that lack it (Yosys only)")
    figures.add_argument("--redo-shares", action="store_true",
                         help="with --shares-only: also rows that already have shares")
    figures.set_defaults(run=cmd_figures)


def board_config(args: argparse.Namespace) -> SystemConfig:
    """The options' configuration, starting from the board's default (clock, link rate)."""
    from spikeforge.boards import get_board

    return config_from_args(args, base=get_board(args.board).default_config)


def cmd_flash(args: argparse.Namespace) -> int:
    from spikeforge.boards.flash import flash

    config = board_config(args)
    result = flash(args.board, config, **({"ftdi_serial": args.ftdi_serial}
                                          if args.ftdi_serial else {}))
    print(f"programmed {args.board} with {result.bitstream}")
    return ExitCode.OK


def cmd_build(args: argparse.Namespace) -> int:
    from spikeforge.boards.build import build

    config = board_config(args)
    result = build(args.board, config)
    print(result.summary())
    return ExitCode.OK


def cmd_boards(args: argparse.Namespace) -> int:
    from spikeforge.boards import BOARDS
    from spikeforge.boards.figures import REFERENCE_RATE_HZ, largest_that_fits, load_figures

    rows = load_figures()["rows"]
    print(f"{'board':<12} {'FPGA':<20} {'clock':>7}  {'link':<28} largest that fits "
          f"({REFERENCE_RATE_HZ // 1000} kS/s, recorded by `spikeforge figures`)")
    for board in BOARDS.values():
        link = board.link_description
        print(f"{board.name:<12} {board.fpga:<20} {board.clock_hz / 1e6:>4g} MHz  "
              f"{link:<28} {largest_that_fits(rows, board.name)}")
        # Configurations with more cores (`spikeforge figures --config boards/*.json`).
        for variant in dict.fromkeys(r.variant for r in rows
                                     if r.board == board.name and r.variant):
            print(f"{'':<12} {'':<20} {'':>7}  {'+ ' + variant:<28} "
                  f"{largest_that_fits(rows, board.name, variant)}")
    return ExitCode.OK


def cmd_figures(args: argparse.Namespace) -> int:
    from spikeforge.boards import board_names, get_board
    from spikeforge.boards.figures import (
        FIGURES_FILE,
        REFERENCE_CHANNELS,
        render_table,
        run_figures,
        save_figures,
        update_docs,
    )
    from spikeforge.boards.toolchain import select_toolchain

    boards = args.board or board_names()
    channels = args.channels or list(REFERENCE_CHANNELS)
    overrides = json.loads(Path(args.config).read_text()) if args.config else None
    command = "spikeforge figures" + "".join(f" --board {b}" for b in args.board or []) \
        + "".join(f" --channels {c}" for c in args.channels or []) \
        + (f" --config {args.config}" if args.config else "")

    if args.shares_only:
        return _backfill_shares(args, command + " --shares-only", overrides)

    def progress(row):
        print(f"{row.board} {row.channels:>5} ch: {row.status}"
              + (f" ({row.message})" if row.message and not row.ok else ""), flush=True)

    rows = run_figures(boards, channels, build_dir=Path(args.build_dir), overrides=overrides,
                       keep_going=args.keep_going, shares=not args.no_shares,
                       progress=progress)
    families = dict.fromkeys(get_board(name).family for name in boards)
    toolchain = "; ".join(select_toolchain(family).describe() for family in families)
    if args.no_record:
        print(render_table(rows))
        return ExitCode.OK
    record = save_figures(rows, command=command, toolchain=toolchain)
    print(f"recorded in {FIGURES_FILE}")
    if args.docs and Path(args.docs).is_file():
        update_docs(Path(args.docs), record["rows"], _docs_command(record))
        print(f"table written to {args.docs}")
    elif args.docs:
        print(f"{args.docs} does not exist (run from the repository root); table not written")
    print(render_table(rows))
    return ExitCode.OK


def _backfill_shares(args: argparse.Namespace, command: str, overrides: dict | None) -> int:
    """``--shares-only``: the recorded rows' core shares, Yosys only (no place and route)."""
    from spikeforge.boards import board_names
    from spikeforge.boards.core_shares import backfill
    from spikeforge.boards.figures import FIGURES_FILE, reference_config, variant_of

    filled = 0
    for board in args.board or board_names():
        # The variant --config makes of the board's rows ("", "detection", "codec", "full").
        variant = variant_of(reference_config(board, 1, overrides))
        filled += backfill(FIGURES_FILE, boards=[board], channels=args.channels,
                           variant=variant, command=command, build_dir=Path(args.build_dir),
                           redo=args.redo_shares,
                           progress=lambda line: print(line, flush=True))
    print(f"core shares of {filled} rows recorded in {FIGURES_FILE}")
    return ExitCode.OK


def _docs_command(record: dict) -> str:
    commands = sorted(set(record.get("commands", {}).values()))
    return "`, then `".join(commands)
