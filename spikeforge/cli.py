"""The one command-line entry point, ``spikeforge``; the only module that ties all layers."""

import argparse
import json
import sys
import time
from pathlib import Path

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError

__all__ = ["main"]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _config_from_args(args: argparse.Namespace) -> SystemConfig:
    data = json.loads(Path(args.config).read_text()) if args.config else {}
    for name in ("channels", "sample_rate_hz", "baud"):
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


def _cmd_flash(args: argparse.Namespace) -> int:
    from spikeforge.boards.flash import flash

    config = _config_from_args(args)
    result = flash(args.board, config, **({"ftdi_serial": args.ftdi_serial}
                                          if args.ftdi_serial else {}))
    print(f"programmed {args.board} with {result.bitstream}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from spikeforge.boards.build import build

    config = _config_from_args(args)
    result = build(args.board, config)
    print(result.summary() if hasattr(result, "summary") else result)
    return 0


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
    rows = run_benchmark(seconds=args.seconds, progress=lambda line: print(line, flush=True))
    sections = [
        f"Match window +/-{MATCH_WINDOW_MS:g} ms; threshold k = {THRESHOLD_K:g} (negative); "
        f"first {WARMUP_S:g} s not scored. Latency: sweeps from the true peak to the sweep "
        "in which the event can leave the core (emitted, and its snippet complete: the sweep "
        "after peak + post starts; its first word leaves 3 cycles later at the earliest).",
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
        sections += ["", "Yosys synth_ice40 (no DSP inference), 30 kS/s, 12 MHz:", "",
                     "| core | channels | SB_LUT4 | flip-flops | SB_CARRY | SB_RAM40_4K |",
                     "| --- | --- | --- | --- | --- | --- |"]
        for name, core in (("Conditioner", Conditioner), ("Detector", Detector)):
            for channels in (32, 256):
                print(f"  synthesizing {name} at {channels} channels ...", flush=True)
                sized = config.replace(channels=channels, sweeps_per_frame=1)
                result = synthesize_ice40(core(sized), design=name, channels=channels)
                cells = result.cells
                ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
                sections.append(
                    f"| {name} | {channels} | {cells.get('SB_LUT4', 0)} | {ffs} "
                    f"| {cells.get('SB_CARRY', 0)} | {cells.get('SB_RAM40_4K', 0)} |")
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

    decode = commands.add_parser("decode", help="decode a captured byte stream from a device")
    decode.add_argument("file")
    decode.set_defaults(run=_cmd_decode)

    bench = commands.add_parser("bench", help="benchmarks (accuracy, cost)")
    benches = bench.add_subparsers(dest="bench", required=True)
    detect = benches.add_parser(
        "detect", help="score the bit-exact detector against ground truth and SpikeInterface")
    detect.add_argument("--out", metavar="FILE.md", help="also write the tables to this file")
    detect.add_argument("--seconds", type=float, default=4.0,
                        help="length of each recording (default 4)")
    detect.add_argument("--synth", action="store_true",
                        help="also synthesize the cores with Yosys at 32 and 256 channels")
    detect.set_defaults(run=_cmd_bench_detect)

    check = commands.add_parser("config", help="validate and show a configuration")
    _add_config_options(check)
    check.set_defaults(run=_cmd_check_config)

    args = parser.parse_args(argv)
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
