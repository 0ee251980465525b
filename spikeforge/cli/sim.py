"""``spikeforge sim`` (the RTL verification benches) and ``spikeforge sim-board`` (the
virtual board: the Verilated design, its UART on TCP)."""

import argparse
import time
from pathlib import Path

from spikeforge.firmware.config import SystemConfig
from spikeforge.host.errors import ExitCode

from .options import add_config_options, config_from_args

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    sim = commands.add_parser("sim", help="run the RTL verification benches, print a summary")
    sim.add_argument("only", nargs="*", help="run only benches whose name contains these")
    sim.add_argument("--jobs", "-j", type=_jobs, default=1, metavar="N",
                     help="run N cases at once, each in a process of its own (default 1; "
                          "a Verilator build already uses every core, so 2 on 2 cores "
                          "gives 1.25-1.5x)")
    sim.set_defaults(run=cmd_sim)

    board = commands.add_parser(
        "sim-board", help="run the virtual board: the Verilated design, its UART on TCP")
    add_config_options(board)
    board.add_argument("--tcp-port", type=int, default=0, help="default: any free port")
    board.add_argument("--link", choices=("uart", "udp"), default=None,
                       help="udp: the design with the Gigabit Ethernet link, its frames "
                            "served as UDP datagrams on 127.0.0.1 (default: the UART on TCP)")
    board.add_argument("--udp-port", type=int, default=0,
                       help="with --link udp: the control port on 127.0.0.1 (default: any "
                            "free port)")
    board.add_argument("--pcap", type=Path, metavar="FILE",
                       help="with --link udp: write the link's frames to this capture file")
    board.add_argument("--flash", type=Path, metavar="FILE",
                       help="keyed builds (control_key in --config): keep the configuration "
                            "flash's epoch region in this file (created erased), so a "
                            "restarted board is a power-cycled device (docs/wire-format.md, "
                            "Epochs); default: an erased flash each start")
    board.add_argument("--measure", type=int, metavar="CYCLES",
                       help="run this many cycles of the board's clock (CYCLES / clock_hz "
                            "seconds of device time) with a draining client, report the speed")
    board.add_argument("--bit-level", action="store_true",
                       help="simulate the board's clock and its bit-serial UART (default for "
                            "a UART board with the test source: the direct-link board, the "
                            "design on a clock of about channels x rate, its bytes taken at "
                            "the UART's byte rate; same frames and losses, several times "
                            "faster)")
    board.add_argument("--realtime", action="store_true",
                       help="pace the simulation to the real clock (default: the direct-link "
                            "board is paced, the bit-level one runs as fast as it can)")
    board.add_argument("--source", choices=("test", "rhd"), default=None,
                       help="sample source: the test source, or the RHD2000 front-end with "
                            "behavioural chips on its SPI pins (default: test; rhd with --from)")
    board.add_argument("--from", dest="sample_file", metavar="FILE",
                       help="play this recording through the RHD chips: a 16-bit WAV, or a "
                            "flat file of interleaved int16 frames with --channels columns; "
                            "one column per stream channel")
    board.add_argument("--rhd-chips", metavar="RHD2132[,RHD2164...]",
                       help="chips on MISO lines 0..3 (default RHD2132); the channels fill "
                            "their amplifiers chip by chip")
    board.add_argument("--cable-delay", type=int, metavar="CYCLES",
                       help="cable round trip of the chips' MISO in clock cycles (default 2; "
                            "the start-up calibration finds it)")
    board.add_argument("--compare", action="store_true",
                       help="with --measure: also measure the board as it was before its speed "
                            "work and the --pgo build, in turn, and print the ratios")
    board.add_argument("--repeats", type=int, default=3,
                       help="with --compare: measurements of each variant (default 3)")
    board.add_argument("--pgo", action="store_true",
                       help="profile-guided build: about 10%% faster, twice the build time")
    board.add_argument("--repeat", action="store_true",
                       help="replay the file from the start when it ends (default: zeros)")
    board.set_defaults(run=cmd_sim_board)


def _jobs(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes a whole number of 1 or more, not {text!r}")
    return jobs


_Row = tuple[str, str, int, int, float, str]


def _run_one(index: int) -> _Row:
    """Case ``index`` of the suite, as a summary row (also in a worker process: cases hold
    the factories of their designs, which do not cross processes; their indices do)."""
    from spikeforge.sim.runner import BenchFailed
    from spikeforge.sim.suite import CASES, run_case

    case = CASES[index]
    try:
        result = run_case(case)
    except BenchFailed as exc:
        return (case.bench, case.label, 0, 0, 0.0, f"FAIL ({exc})")
    except (Exception, SystemExit) as exc:   # a build that failed: a row, not a traceback
        return (case.bench, case.label, 0, 0, 0.0, f"FAIL ({type(exc).__name__}: {exc})")
    return (case.bench, case.label, result.items, result.cycles, result.wall_s,
            "PASS" if result.passed else f"FAIL (log: {result.log})")


def _run_cases(indices: list[int], jobs: int) -> list[_Row]:
    """The rows of ``indices``, in the suite's order, ``jobs`` cases at a time."""
    from spikeforge.sim.suite import CASES

    if jobs == 1:
        rows = []
        for index in indices:
            print(f"running {CASES[index].case_id} ...", flush=True)
            rows.append(_run_one(index))
        return rows
    import concurrent.futures
    import multiprocessing

    # spawn: a worker starts clean (no inherited threads or simulator state)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = {pool.submit(_run_one, index): index for index in indices}
        done: dict[int, _Row] = {}
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            done[index] = future.result()
            print(f"[{len(done)}/{len(indices)}] {CASES[index].case_id}: "
                  f"{done[index][5].split(' ')[0]}", flush=True)
    return [done[index] for index in indices]


def cmd_sim(args: argparse.Namespace) -> int:
    from spikeforge.sim.suite import CASES

    indices = [i for i, c in enumerate(CASES)
               if not args.only or any(k in c.case_id for k in args.only)]
    if not indices:
        print(f"no bench matches {args.only}; benches: {sorted({c.bench for c in CASES})}")
        return ExitCode.USAGE
    started = time.perf_counter()
    rows = _run_cases(indices, args.jobs)
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
    return ExitCode.FAILURE if failed else ExitCode.OK


def cmd_sim_board(args: argparse.Namespace) -> int:
    from spikeforge.sim.virtual_board import VirtualBoard

    config = config_from_args(args)
    if args.link == "udp":
        from spikeforge.sim.virtual_board import UDP_IDENTITY_INTERVAL_FRAMES

        config = config.replace(link="ethernet")
        if not args.config:     # a configuration file keeps its interval
            config = config.replace(identity_interval_frames=UDP_IDENTITY_INTERVAL_FRAMES)
    config, feed = _sim_board_input(args, config)
    if args.measure and args.compare:
        return _compare_speed(args, config, feed)
    if args.measure:
        stats = VirtualBoard.measure(config, args.measure, feed=feed, profile_guided=args.pgo,
                                     bit_level=args.bit_level)
        direct = stats["clock_hz"] != config.clock_hz
        model = (f"direct-link board: the design at {stats['clock_hz'] / 1e6:g} MHz, its bytes "
                 f"at the {config.baud:,}-baud UART's rate" if direct
                 else f"bit-level board: {config.clock_hz / 1e6:g} MHz, bit-serial UART")
        device_s = stats["cycles"] / stats["clock_hz"]
        print(f"{config.describe()}; {model}")
        print(f"{stats['cycles']:.0f} cycles ({device_s:.3f} s of device time) in "
              f"{stats['wall_s']:.2f} s = {stats['cycles_per_s'] / 1e6:.2f} M cycles/s; "
              f"{stats['cycles_per_cpu_s'] / 1e6:.2f} M cycles per CPU second "
              f"({stats['bytes_received']:.0f} bytes, "
              f"{stats['framing_errors']:.0f} framing errors)")
        print(f"{stats['realtime_ratio']:.2f}x real time (wall clock; "
              f"{stats['realtime_ratio_cpu']:.2f}x per CPU second of the simulation)")
        return ExitCode.OK
    udp = config.link == "ethernet"
    board = VirtualBoard.start(config, port=args.udp_port if udp else args.tcp_port,
                               realtime=args.realtime or None, feed=feed,
                               profile_guided=args.pgo,
                               pcap=args.pcap, bit_level=args.bit_level, flash=args.flash)
    print(f"virtual board {config.describe()} serving its "
          f"{'Ethernet link as UDP' if udp else 'UART'} at {board.url}", flush=True)
    print(f"record from it: spikeforge record --port {board.url} --out DIR", flush=True)
    try:
        board.process.wait()
    except KeyboardInterrupt:
        pass
    print(board.stop())
    return ExitCode.OK


def _compare_speed(args: argparse.Namespace, config: SystemConfig, feed) -> int:
    """``sim-board --measure N --compare``: the board before its speed work (bare design with
    a reset input, two evals per cycle), as built now, and profile-guided, measured in turn
    ``--repeats`` times; the best of each (the least disturbed by other load)."""
    from spikeforge.sim.virtual_board import VirtualBoard

    variants = {"before (reset input, 2 evals/cycle)": {"baseline": True},
                "now": {}, "now + --pgo": {"profile_guided": True}}
    for options in variants.values():      # build everything first
        VirtualBoard.measure(config, 1000, feed=feed, **options)
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeats):
        for name, options in variants.items():
            stats = VirtualBoard.measure(config, args.measure, feed=feed, **options)
            if name not in best or stats["cycles_per_cpu_s"] > best[name]["cycles_per_cpu_s"]:
                best[name] = stats
    base = best[next(iter(variants))]
    print(f"{config.describe()}, {args.measure} cycles, best of {args.repeats}:")
    for name, stats in best.items():
        print(f"  {name:<36} {stats['cycles_per_cpu_s'] / 1e6:5.2f} M cycles/CPU-s "
              f"({stats['cycles_per_cpu_s'] / config.clock_hz:.3f} x real time)  "
              f"{stats['cycles_per_s'] / 1e6:5.2f} M cycles/wall-s  "
              f"x{stats['cycles_per_cpu_s'] / base['cycles_per_cpu_s']:.2f}")
    return ExitCode.OK


def _sim_board_input(args: argparse.Namespace, config: SystemConfig):
    """``--source rhd`` / ``--from FILE``: the RHD configuration and the chips' sample feed
    (None: the test source, or with ``--source rhd`` the test signal through the chips)."""
    from spikeforge.firmware.errors import ConfigError
    from spikeforge.sim.virtual_board import feed_from_file, rhd_config_for

    chips = tuple(args.rhd_chips.split(",")) if args.rhd_chips else None
    if args.source == "test" and (args.sample_file or chips):
        raise ConfigError("--from and --rhd-chips need --source rhd (the test source makes "
                          "its own signal)")
    if args.sample_file:
        return feed_from_file(config, Path(args.sample_file), args.channels,
                              repeat=args.repeat, cable_delay=args.cable_delay, chips=chips)
    if args.source == "rhd" and config.source != "rhd":
        config = rhd_config_for(config, config.channels, chips or ("RHD2132",))
    if config.source == "rhd" and args.cable_delay is not None:
        from dataclasses import replace

        from spikeforge.sim.virtual_board import source_signal_feed

        return config, replace(source_signal_feed(config),
                               cable_delays=(args.cable_delay,) * config.rhd.lines)
    return config, None
