"""``spikeforge report``: an HTML page with plots from the benchmarks' JSON (docs/report.md)."""

import argparse
from pathlib import Path

from spikeforge.host.errors import ExitCode

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    from spikeforge.sim.report import DEFAULT_COMPRESS_JSON, DEFAULT_DETECT_JSON

    parser = commands.add_parser(
        "report", help="an HTML evaluation report (detection, compression, boards, link "
                       "budget) from the benchmarks' JSON")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for index.html and the PNGs")
    parser.add_argument("--detect", type=Path, default=DEFAULT_DETECT_JSON,
                        help="JSON of `spikeforge bench detect --json` (default %(default)s)")
    parser.add_argument("--compress", type=Path, default=DEFAULT_COMPRESS_JSON,
                        help="JSON of `spikeforge bench compress --json` (default %(default)s)")
    parser.add_argument("--figures", type=Path,
                        help="board figures (default: the recorded boards/figures.json)")
    parser.set_defaults(run=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from spikeforge.sim.report import write_report

    print(f"report into {args.out}:", flush=True)
    page, sections = write_report(Path(args.out), detect=args.detect, compress=args.compress,
                                  figures=args.figures,
                                  progress=lambda line: print(line, flush=True))
    for section in sections:
        if section.missing:
            print(f"  missing: {section.title}: "
                  + section.missing.replace("<code>", "`").replace("</code>", "`"))
    print(f"written {page}")
    return ExitCode.OK
