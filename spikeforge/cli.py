"""The one command-line entry point, ``spikeforge``; the only module that ties all layers."""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError

__all__ = ["main"]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _config_from_args(args: argparse.Namespace,
                      base: SystemConfig | None = None) -> SystemConfig:
    """The configuration the options name: ``base``'s fields (e.g. a board's default), the
    fields of ``--config`` on top, then the single-field options."""
    data = base.to_dict() if base is not None else {}
    if args.config:
        data.update(json.loads(Path(args.config).read_text()))
    for name in ("channels", "sample_rate_hz", "baud", "clock_hz", "sweeps_per_frame",
                 "link_buffer_samples"):
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    return SystemConfig.from_dict(data)


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE.json",
                        help="configuration file (SystemConfig fields as JSON)")
    parser.add_argument("--channels", type=int)
    parser.add_argument("--sample-rate-hz", dest="sample_rate_hz", type=int)
    parser.add_argument("--baud", type=int)
    parser.add_argument("--clock-hz", dest="clock_hz", type=int)
    parser.add_argument("--sweeps-per-frame", dest="sweeps_per_frame", type=int)
    parser.add_argument("--link-buffer-samples", dest="link_buffer_samples", type=int)


def _cmd_sim(args: argparse.Namespace) -> int:
    from spikeforge.sim.runner import BenchFailed
    from spikeforge.sim.suite import CASES, run_case

    cases = [c for c in CASES if not args.only or any(k in c.case_id for k in args.only)]
    if not cases:
        print(f"no bench matches {args.only}; benches: {sorted({c.bench for c in CASES})}")
        return EXIT_USAGE
    rows = []
    started = time.perf_counter()
    for case in cases:
        print(f"running {case.case_id} ...", flush=True)
        try:
            result = run_case(case)
            rows.append((case.bench, case.label, result.items, result.cycles, result.wall_s,
                         "PASS" if result.passed else f"FAIL (log: {result.log})"))
        except BenchFailed as exc:
            rows.append((case.bench, case.label, 0, 0, 0.0, f"FAIL ({exc})"))
    print()
    header = ("bench", "configuration", "items compared", "cycles", "wall s", "result")
    widths = [max(len(str(r[i])) if i != 4 else 6 for r in [header, *rows]) for i in range(5)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  " + header[5])
    for bench, label, items, cycles, wall, verdict in rows:
        print(f"{bench.ljust(widths[0])}  {label.ljust(widths[1])}  {items:>{widths[2]},}  "
              f"{cycles:>{widths[3]},}  {wall:>{widths[4]}.1f}  {verdict}")
    failed = sum(1 for r in rows if r[5] != "PASS")
    print(f"\n{len(rows) - failed} passed, {failed} failed "
          f"in {time.perf_counter() - started:.0f} s")
    return EXIT_FAILURE if failed else 0


def _board_config(args: argparse.Namespace) -> SystemConfig:
    """The options' configuration, starting from the board's default (clock, link rate)."""
    from spikeforge.boards import get_board

    return _config_from_args(args, base=get_board(args.board).default_config)


def _cmd_flash(args: argparse.Namespace) -> int:
    from spikeforge.boards.flash import flash

    config = _board_config(args)
    result = flash(args.board, config, **({"ftdi_serial": args.ftdi_serial}
                                          if args.ftdi_serial else {}))
    print(f"programmed {args.board} with {result.bitstream}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from spikeforge.boards.build import build

    config = _board_config(args)
    result = build(args.board, config)
    print(result.summary())
    return 0


def _cmd_boards(args: argparse.Namespace) -> int:
    from spikeforge.boards import BOARDS
    from spikeforge.boards.figures import REFERENCE_RATE_HZ, load_figures, max_channels

    rows = load_figures()["rows"]
    print(f"{'board':<12} {'FPGA':<20} {'clock':>7}  {'link':<28} largest that fits "
          f"({REFERENCE_RATE_HZ // 1000} kS/s, recorded by `spikeforge figures`)")
    for board in BOARDS.values():
        best = max_channels(rows, board.name)
        failure = next((r for r in rows if r.board == board.name and r.channels >
                        (best.channels if best else 0) and r.status != "not built"), None)
        if best is not None and failure is not None:
            largest = (f"{best.channels} channels ({failure.channels}: {failure.status}, "
                       f"{failure.binding})")
        elif best is not None:
            largest = (f"{best.channels} channels (the most tried; closest limit: "
                       f"{best.binding})")
        elif any(r.board == board.name for r in rows):
            largest = "none of the reference configurations"
        else:
            largest = f"not measured; run spikeforge figures --board {board.name}"
        link = f"{board.usb_chip}, {board.default_config.baud / 1e6:g} Mbaud"
        print(f"{board.name:<12} {board.fpga:<20} {board.clock_hz / 1e6:>4g} MHz  "
              f"{link:<28} {largest}")
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
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

    def progress(row):
        print(f"{row.board} {row.channels:>5} ch: {row.status}"
              + (f" ({row.message})" if row.message and not row.ok else ""), flush=True)

    rows = run_figures(boards, channels, build_dir=Path(args.build_dir), overrides=overrides,
                       keep_going=args.keep_going, progress=progress)
    families = dict.fromkeys(get_board(name).family for name in boards)
    toolchain = "; ".join(select_toolchain(family).describe() for family in families)
    if args.no_record:
        print(render_table(rows))
        return 0
    record = save_figures(rows, command=command, toolchain=toolchain)
    print(f"recorded in {FIGURES_FILE}")
    if args.docs and Path(args.docs).is_file():
        update_docs(Path(args.docs), record["rows"], _docs_command(record))
        print(f"table written to {args.docs}")
    elif args.docs:
        print(f"{args.docs} does not exist (run from the repository root); table not written")
    print(render_table(rows))
    return 0


def _docs_command(record: dict) -> str:
    commands = sorted(set(record.get("commands", {}).values()))
    return "`, then `".join(commands)


def _cmd_decode(args: argparse.Namespace) -> int:
    from spikeforge.host import DataBlock, Identity, StreamDecoder

    decoder = StreamDecoder()
    items = decoder.feed(Path(args.file).read_bytes()) + decoder.flush()
    blocks = [i for i in items if isinstance(i, DataBlock)]
    identity = next((i for i in items if isinstance(i, Identity)), None)
    if identity is not None:
        print(f"device: {identity.config.describe()}")
    sweeps = sum(b.samples.shape[0] for b in blocks)
    print(f"{len(blocks)} data frames, {sweeps} sweeps")
    print(f"link: {decoder.stats}")
    return 0


def _record_baud(args: argparse.Namespace) -> int:
    """``--baud``; else the default of ``--board`` (boards differ: 12 Mbaud on the
    iCEBreaker, 3 Mbaud on the ULX3S); else the default configuration's."""
    if args.baud is not None:
        return args.baud
    if getattr(args, "board", None):
        from spikeforge.boards import get_board

        return get_board(args.board).default_config.baud
    return SystemConfig().baud


def _cmd_record(args: argparse.Namespace) -> int:
    from spikeforge.host.device import Device
    from spikeforge.host.recorder import record

    def show(status) -> None:
        end = "\n" if status.ended else "\r"
        print(status.line(), end=end, file=sys.stderr, flush=True)

    board = None
    url = args.port
    if url.startswith("sim://"):
        # The CLI is the one place that ties the host to the simulation layer.
        from spikeforge.sim.virtual_board import VirtualBoard, config_from_sim_url

        board = VirtualBoard.start(config_from_sim_url(url))
        url = board.url
        print(f"virtual board: {board.config.describe()} at {url}", file=sys.stderr)
    try:
        with Device.open(url, baud=_record_baud(args)) as device:
            final = record(device, Path(args.out), duration_s=args.duration, on_status=show)
    finally:
        if board is not None:
            print(f"virtual board: {board.stop()}", file=sys.stderr)
    print(f"recording ended ({final.ended}): {args.out}")
    if final.samples_lost:
        print(f"{final.samples_lost} sweeps were lost on the way; they are zero-filled and "
              f"listed in spikeforge.json", file=sys.stderr)
    return 0


def _cmd_sim_board(args: argparse.Namespace) -> int:
    from spikeforge.sim.virtual_board import VirtualBoard

    config = _config_from_args(args)
    if args.measure:
        stats = VirtualBoard.measure(config, args.measure)
        print(f"{config.describe()}: {stats['cycles']:.0f} cycles in {stats['wall_s']:.2f} s = "
              f"{stats['cycles_per_s'] / 1e6:.2f} M cycles/s = {stats['realtime_ratio']:.3f} x "
              f"real time ({stats['bytes_received']:.0f} bytes, "
              f"{stats['framing_errors']:.0f} framing errors)")
        return 0
    board = VirtualBoard.start(config, port=args.tcp_port, realtime=args.realtime)
    print(f"virtual board {config.describe()} serving its UART at {board.url}", flush=True)
    print(f"record from it: spikeforge record --port {board.url} --out DIR", flush=True)
    try:
        board.process.wait()
    except KeyboardInterrupt:
        pass
    print(board.stop())
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from spikeforge.host.nwb import export_nwb

    print(f"wrote {export_nwb(Path(args.recording), Path(args.nwb))}")
    return 0


def _cmd_bench_detect(args: argparse.Namespace) -> int:
    from spikeforge.sim.accuracy import (
        MATCH_WINDOW_MS,
        THRESHOLD_K,
        WARMUP_S,
        format_table,
        run_benchmark,
    )

    started = time.perf_counter()
    print(f"detection benchmark: k={THRESHOLD_K:g}, negative peaks, match window "
          f"+/-{MATCH_WINDOW_MS:g} ms, first {WARMUP_S:g} s of each recording not scored",
          flush=True)
    rows = run_benchmark(seconds=args.seconds, neo_k=args.neo_k,
                         progress=lambda line: print(line, flush=True))
    sections = [
        f"Match window +/-{MATCH_WINDOW_MS:g} ms; threshold k = {THRESHOLD_K:g} (negative); "
        f"first {WARMUP_S:g} s not scored. Latency: sweeps from the true peak to the sweep "
        "in which the event can leave the core (emitted, and its snippet complete: the sweep "
        "after peak + post starts; its first word leaves 3 cycles later at the earliest). "
        f"NEO: the same detector on the nonlinear energy operator, k = {args.neo_k:g} "
        "(units of median|psi| / 0.6745).",
        "",
        format_table(rows),
    ]
    if args.synth:
        from spikeforge.firmware.config import SystemConfig
        from spikeforge.hdl.conditioner import Conditioner
        from spikeforge.hdl.detector import Detector
        from spikeforge.sim.cost import state_bits_per_channel, synthesize_ice40

        print(format_table(rows), flush=True)
        config = SystemConfig()
        bits = state_bits_per_channel(config)
        sections += ["", f"State bits per channel ({config.describe()}):", "",
                     "| memory | bits/channel |", "| --- | --- |"]
        sections += [f"| {name} | {value} |" for name, value in bits.items()]
        sections += ["", "Yosys synth_ice40 -dsp (as the iCEBreaker build), 30 kS/s, 12 MHz:",
                     "", "| core | channels | SB_LUT4 | flip-flops | SB_CARRY | SB_RAM40_4K "
                     "| SB_MAC16 |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, core in (("Conditioner", Conditioner), ("Detector", Detector)):
            for channels in (32, 256):
                print(f"  synthesizing {name} at {channels} channels ...", flush=True)
                sized = config.replace(channels=channels, sweeps_per_frame=1)
                result = synthesize_ice40(core(sized), design=name, channels=channels)
                cells = result.cells
                ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
                sections.append(
                    f"| {name} | {channels} | {cells.get('SB_LUT4', 0)} | {ffs} "
                    f"| {cells.get('SB_CARRY', 0)} | {cells.get('SB_RAM40_4K', 0)} "
                    f"| {cells.get('SB_MAC16', 0)} |")
    text = "\n".join(sections)
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"\nwritten to {args.out}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    print(config.describe())
    print(json.dumps(config.to_dict(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spikeforge",
        description="Open acquisition and processing chips for brain-computer interfaces.")
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("sim", help="run the RTL verification benches, print a summary")
    sim.add_argument("only", nargs="*", help="run only benches whose name contains these")
    sim.set_defaults(run=_cmd_sim)

    for name, handler, text in (("build", _cmd_build, "build the bitstream for a board"),
                                ("flash", _cmd_flash, "build (cached) and program a board")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--board", required=True)
        _add_config_options(sub)
        if name == "flash":
            sub.add_argument("--ftdi-serial", help="program the board with this FTDI serial")
        sub.set_defaults(run=handler)

    boards = commands.add_parser(
        "boards", help="list the supported boards: FPGA, clock, link, largest configuration")
    boards.set_defaults(run=_cmd_boards)

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
    figures.set_defaults(run=_cmd_figures)

    decode = commands.add_parser("decode", help="decode a captured byte stream from a device")
    decode.add_argument("file")
    decode.set_defaults(run=_cmd_decode)

    rec = commands.add_parser("record", help="record a device to an Open Ephys binary folder")
    rec.add_argument("--port", required=True,
                     help="serial port or pyserial URL (/dev/ttyUSB1, socket://host:port), "
                          "or sim://?channels=8 for the virtual board")
    rec.add_argument("--baud", type=int, help="line rate of a real serial port (default: "
                     "the --board's default, else the default configuration's)")
    rec.add_argument("--board", help="the board recorded from; sets the default --baud")
    rec.add_argument("--duration", type=float, help="seconds of device time (default: until "
                     "Ctrl-C)")
    rec.add_argument("--out", required=True, help="folder to create")
    rec.set_defaults(run=_cmd_record)

    board = commands.add_parser(
        "sim-board", help="run the virtual board: the Verilated design, its UART on TCP")
    _add_config_options(board)
    board.add_argument("--tcp-port", type=int, default=0, help="default: any free port")
    board.add_argument("--measure", type=int, metavar="CYCLES",
                       help="run this many cycles with a draining client, report the speed")
    board.add_argument("--realtime", action="store_true",
                       help="pace the simulation to the real clock (default: as fast as it runs)")
    board.set_defaults(run=_cmd_sim_board)

    export = commands.add_parser("export", help="convert a recording to another format")
    export.add_argument("recording", help="folder written by spikeforge record")
    export.add_argument("--nwb", required=True, metavar="OUT.nwb", help="write NWB (pynwb)")
    export.set_defaults(run=_cmd_export)
    bench = commands.add_parser("bench", help="benchmarks (accuracy, cost)")
    benches = bench.add_subparsers(dest="bench", required=True)
    detect = benches.add_parser(
        "detect", help="score the bit-exact detector against ground truth and SpikeInterface")
    detect.add_argument("--out", metavar="FILE.md", help="also write the tables to this file")
    detect.add_argument("--seconds", type=float, default=4.0,
                        help="length of each recording (default 4)")
    detect.add_argument("--neo-k", dest="neo_k", type=float, default=15.0,
                        help="threshold k of the NEO column (default 15, a multiple of 1/16)")
    detect.add_argument("--synth", action="store_true",
                        help="also synthesize the cores with Yosys at 32 and 256 channels")
    detect.set_defaults(run=_cmd_bench_detect)

    check = commands.add_parser("config", help="validate and show a configuration")
    _add_config_options(check)
    check.set_defaults(run=_cmd_check_config)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.run(args)
    except SpikeforgeError as exc:
        print(f"spikeforge: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_FAILURE)
    except KeyboardInterrupt:
        print("spikeforge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
