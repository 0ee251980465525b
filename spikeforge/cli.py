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


def _config_fields(args: argparse.Namespace,
                   base: SystemConfig | None = None) -> dict:
    """The configuration fields the options name, not yet validated: ``base``'s fields (e.g.
    a board's default), the fields of ``--config`` on top, then the single-field options."""
    data = base.to_dict() if base is not None else {}
    if args.config:
        data.update(json.loads(Path(args.config).read_text()))
    for name in ("channels", "sample_rate_hz", "baud", "clock_hz", "sweeps_per_frame",
                 "link_buffer_samples"):
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    return data


def _config_from_args(args: argparse.Namespace,
                      base: SystemConfig | None = None) -> SystemConfig:
    """The configuration the options name (:func:`_config_fields`), validated."""
    return SystemConfig.from_dict(_config_fields(args, base))


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
    from spikeforge.boards.figures import REFERENCE_RATE_HZ, largest_that_fits, load_figures

    rows = load_figures()["rows"]
    print(f"{'board':<12} {'FPGA':<20} {'clock':>7}  {'link':<28} largest that fits "
          f"({REFERENCE_RATE_HZ // 1000} kS/s, recorded by `spikeforge figures`)")
    for board in BOARDS.values():
        link = f"{board.usb_chip}, {board.default_config.baud / 1e6:g} Mbaud"
        print(f"{board.name:<12} {board.fpga:<20} {board.clock_hz / 1e6:>4g} MHz  "
              f"{link:<28} {largest_that_fits(rows, board.name)}")
        # Configurations with more cores (`spikeforge figures --config boards/*.json`).
        for variant in dict.fromkeys(r.variant for r in rows
                                     if r.board == board.name and r.variant):
            print(f"{'':<12} {'':<20} {'':>7}  {'+ ' + variant:<28} "
                  f"{largest_that_fits(rows, board.name, variant)}")
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
    """``--baud``; else the default of ``--board`` (boards differ: 4 Mbaud on the
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
        from spikeforge.sim.virtual_board import VirtualBoard, board_from_sim_url

        sim_config, feed = board_from_sim_url(url)
        board = VirtualBoard.start(sim_config, feed=feed)
        url = board.url
        print(f"virtual board: {board.config.describe()} at {url}", file=sys.stderr)
    codebook = _record_codebook(args)
    try:
        with Device.open(url, baud=_record_baud(args)) as device:
            if codebook is not None:
                print(f"loading the codebook: {len(codebook.values)} values, base "
                      f"{codebook.base}, multiplier {codebook.multiplier}, shift "
                      f"{codebook.shift}", file=sys.stderr)
            final = record(device, Path(args.out), duration_s=args.duration, on_status=show,
                           mode=args.mode or ("lossless" if codebook is not None else None),
                           channels=_channels_enabled(args), codebook=codebook)
    finally:
        if board is not None:
            print(f"virtual board: {board.stop()}", file=sys.stderr)
    print(f"recording ended ({final.ended}): {args.out}")
    if final.samples_lost:
        print(f"{final.samples_lost} sweeps were lost on the way; they are zero-filled and "
              f"listed in spikeforge.json", file=sys.stderr)
    return 0


def _record_codebook(args: argparse.Namespace):
    """``record --codebook-from FILE``: the codebook to load (None without the option)."""
    if getattr(args, "codebook_from", None) is None:
        return None
    from spikeforge.host.compression import codebook_from_file

    return codebook_from_file(args.codebook_from, args.codebook_channels)


def _print_channel_mask(device) -> None:
    """``status``: the channels DATA frames carry, read from the device."""
    from spikeforge.firmware.config import format_channels
    from spikeforge.host.device import RegisterRefused

    try:
        print(f"channels enabled: {format_channels(device.read_channel_mask())}")
    except RegisterRefused:
        print("channels enabled: all (the bitstream has no channel mask registers)")


def _channels_enabled(args: argparse.Namespace) -> "tuple[int, ...] | None":
    """``record --channels-enabled 0,2,5-7`` (channel mask; None: leave the device's)."""
    from spikeforge.firmware.config import parse_channels

    text = getattr(args, "channels_enabled", None)
    return None if text is None else parse_channels(text)


def _cmd_status(args: argparse.Namespace) -> int:
    """Identity, chips found and counters of a device, read over its control path."""
    from spikeforge.host.device import Device

    board = None
    url = args.port
    if url.startswith("sim://"):
        from spikeforge.sim.virtual_board import VirtualBoard, config_from_sim_url

        board = VirtualBoard.start(config_from_sim_url(url))
        url = board.url
    try:
        with Device.open(url, baud=_record_baud(args)) as device:
            config = device.identify()
            print(f"device: {config.describe()} on {url}")
            if args.stop:
                device.stop()
                print("streaming stopped")
            if args.start:
                device.start()
                print("streaming started")
            if config.source == "rhd":
                chips = device.chips_found or []
                print("chips found: " + (", ".join(
                    f"line {c.line}: {c.kind} ({c.amplifiers} amplifiers, MISO delay "
                    f"{c.miso_delay})" for c in chips) or "none"))
            _print_channel_mask(device)
            for line in device.status().lines():
                print(line)
    finally:
        if board is not None:
            board.stop()
    return 0


def _cmd_sim_board(args: argparse.Namespace) -> int:
    from spikeforge.sim.virtual_board import VirtualBoard

    config = _config_from_args(args)
    config, feed = _sim_board_input(args, config)
    if args.measure and args.compare:
        return _compare_speed(args, config, feed)
    if args.measure:
        stats = VirtualBoard.measure(config, args.measure, feed=feed, profile_guided=args.pgo)
        print(f"{config.describe()}: {stats['cycles']:.0f} cycles in {stats['wall_s']:.2f} s = "
              f"{stats['cycles_per_s'] / 1e6:.2f} M cycles/s = {stats['realtime_ratio']:.3f} x "
              f"real time; {stats['cycles_per_cpu_s'] / 1e6:.2f} M cycles per CPU second "
              f"({stats['bytes_received']:.0f} bytes, "
              f"{stats['framing_errors']:.0f} framing errors)")
        return 0
    board = VirtualBoard.start(config, port=args.tcp_port, realtime=args.realtime, feed=feed,
                               profile_guided=args.pgo)
    print(f"virtual board {config.describe()} serving its UART at {board.url}", flush=True)
    print(f"record from it: spikeforge record --port {board.url} --out DIR", flush=True)
    try:
        board.process.wait()
    except KeyboardInterrupt:
        pass
    print(board.stop())
    return 0


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
    return 0


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
        # The detector with its snippet ring in the iCE40UP's SPRAM (as a UP5K build does it
        # from 256 channels on): block RAM is left to the per-channel state.
        sections += ["", "Detector, snippet ring in SPRAM (`ring_storage='spram'`):", "",
                     "| channels | ring (words) | SB_LUT4 | SB_RAM40_4K | SB_SPRAM256KA "
                     "| SB_MAC16 |", "| --- | --- | --- | --- | --- | --- |"]
        for channels in (256,):
            print(f"  synthesizing Detector (ring in SPRAM) at {channels} channels ...",
                  flush=True)
            sized = config.replace(channels=channels, sweeps_per_frame=1)
            detector = Detector(sized, ring_storage="spram")
            cells = synthesize_ice40(detector, design="Detector", channels=channels).cells
            sections.append(
                f"| {channels} | {detector.ring_depth_for('spram') * channels} "
                f"| {cells.get('SB_LUT4', 0)} | {cells.get('SB_RAM40_4K', 0)} "
                f"| {cells.get('SB_SPRAM256KA', 0)} | {cells.get('SB_MAC16', 0)} |")
    text = "\n".join(sections)
    print()
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"\nwritten to {args.out}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


def _cmd_bench_compress(args: argparse.Namespace) -> int:
    from spikeforge.sim import compression_bench as cb

    started = time.perf_counter()
    recordings = cb.file_recordings(args.paths, args.channels, args.sample_rate_hz)
    if args.stack:
        for kind in list(dict.fromkeys(r.kind for r in recordings)):
            stacked = cb.stack_recordings([r for r in recordings if r.kind == kind])
            if stacked is not None:
                recordings.append(stacked)
    if not args.no_synthetic:
        recordings += cb.synthetic_recordings(seconds=args.seconds, channels=args.synth_channels,
                                              spikeinterface=not args.no_spikeinterface)
    if not recordings:
        print("nothing to compress: name recording files or folders, or drop --no-synthetic")
        return EXIT_USAGE
    codec_config = None
    if args.block_sweeps is not None:
        from spikeforge.firmware.compression import CodecConfig

        codec_config = CodecConfig(enabled=True, block_sweeps=args.block_sweeps)
    codecs = cb.coder_codecs(codec_config) + cb.reference_codecs()
    print(f"compression benchmark: {len(recordings)} recordings, codecs "
          f"{', '.join(c.name for c in codecs)}", flush=True)
    for codec in codecs:
        if codec.note:
            print(f"  {codec.name}: {codec.note}")
    rows = cb.run_benchmark(recordings, codecs, progress=lambda line: print(line, flush=True))
    target_classes = [c.lower() for c in args.target_class or ["n1"]]
    n1_kinds = [r.kind for r in recordings if any(c in r.kind.lower() for c in target_classes)]
    text = cb.format_report(rows, n1_kinds=n1_kinds, n1_target=args.target)
    print()
    print(text)
    if args.json:
        settings = {"command": " ".join(["spikeforge", *sys.argv[1:]]),
                    "paths": [str(p) for p in args.paths], "seconds": args.seconds,
                    "synthetic": not args.no_synthetic, "stack": args.stack,
                    "block_sweeps": args.block_sweeps,
                    "codecs": {c.name: c.note for c in codecs}}
        Path(args.json).write_text(json.dumps(cb.to_json(rows, settings), indent=2) + "\n")
        print(f"\nwritten to {args.json}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


def _cmd_bench_decimator(args: argparse.Namespace) -> int:
    from spikeforge.firmware.decimation import DecimatorConfig

    decimation = DecimatorConfig(factor=args.factor, order=args.order)
    rate = args.sample_rate_hz
    out_rate = decimation.output_rate_hz(rate)
    print(f"CIC decimator R={decimation.factor} N={decimation.order} at {rate:,} S/s -> "
          f"{out_rate:g} S/s; state {decimation.state_bits_per_channel} bits/channel "
          f"({2 * decimation.order} x {decimation.state_bits}), gain "
          f"{decimation.gain_num}/2^{decimation.gain_shift}")
    print("| frequency Hz | response | dB |")
    print("| --- | --- | --- |")
    import math

    for f in sorted({10, 100, 300, out_rate / 4, out_rate / 2, out_rate * 0.75, out_rate,
                     out_rate * 1.25, out_rate * 1.5}):
        r = decimation.response(f, rate)
        db = f"{20 * math.log10(r):.1f}" if r > 1e-9 else "null"
        print(f"| {f:g} | {r:.4f} | {db} |")
    if args.synth:
        from spikeforge.hdl.decimator import Decimator
        from spikeforge.sim.cost import synthesize_ice40

        print("\nYosys synth_ice40 (no DSP inference):\n")
        print("| channels | SB_LUT4 | flip-flops | SB_CARRY | SB_RAM40_4K |")
        print("| --- | --- | --- | --- | --- |")
        for channels in (32, 256):
            config = SystemConfig(channels=channels, sweeps_per_frame=1)
            cells = synthesize_ice40(Decimator(config, decimation), design="Decimator",
                                     channels=channels).cells
            ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
            print(f"| {channels} | {cells.get('SB_LUT4', 0)} | {ffs} | "
                  f"{cells.get('SB_CARRY', 0)} | {cells.get('SB_RAM40_4K', 0)} |", flush=True)
    return 0


def _cmd_budget(args: argparse.Namespace) -> int:
    from spikeforge.firmware.compression import CodecConfig
    from spikeforge.host.budget import (
        DEFAULT_COMPRESSION_RATIO,
        StreamDescription,
        budget,
        format_budget,
    )

    base = SystemConfig()
    if args.board:
        from spikeforge.boards.registry import get_board

        base = get_board(args.board).default_config
    # Not validated as a SystemConfig: a budget may ask about a stream the board's clock
    # cannot produce (e.g. 1024 channels over a given link).
    data = _config_fields(args, base)
    detector = data.get("detector", {})
    stream = StreamDescription(
        channels=data["channels"],
        sample_rate_hz=data["sample_rate_hz"],
        sweeps_per_frame=data["sweeps_per_frame"],
        identity_interval_frames=data["identity_interval_frames"],
        detector_enabled=(args.detector if args.detector is not None
                          else bool(detector.get("enabled", False))),
        spike_rate_hz=args.spike_rate_hz,
        snippet_pre=(args.snippet_pre if args.snippet_pre is not None
                     else detector.get("snippet_pre", 8)),
        snippet_post=(args.snippet_post if args.snippet_post is not None
                      else detector.get("snippet_post", 16)),
        codec=CodecConfig(**{**data.get("codec", {}),
                             **({"block_sweeps": args.block_sweeps} if args.block_sweeps
                                else {})}))
    link = args.link_bps if args.link_bps is not None else float(data["baud"])
    ratio, source = DEFAULT_COMPRESSION_RATIO, "default, docs/compression-benchmark.md"
    if args.compression_ratio is not None:
        ratio, source = args.compression_ratio, "given"
    if args.recording:
        from spikeforge.sim.compression_bench import recording_ratio

        print(f"measuring the coder's ratio over {' '.join(args.recording)} ...", flush=True)
        from spikeforge.host.sample_files import RecordingFileError

        try:
            ratio, source = recording_ratio(args.recording, args.recording_channels,
                                            stream.codec)
        except RecordingFileError as exc:
            raise RecordingFileError(
                str(exc).replace("--channels", "--recording-channels")) from None
    # LFP: the configuration's decimator factor unless --lfp-decimation says otherwise
    # (None: budget()'s default)
    lfp = data.get("lfp")
    lfp_decimation = (args.lfp_decimation if args.lfp_decimation is not None
                      else int(lfp["factor"]) if isinstance(lfp, dict) else None)
    result = budget(stream, link, compression_ratio=ratio, compression_ratio_source=source,
                    lfp_decimation=lfp_decimation,
                    bits_per_byte=8 if args.raw_link else 10)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_budget(result))
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
    rec.add_argument("--mode", choices=("raw", "lossless", "events+lfp"),
                     help="bandwidth mode to record in (set over the control path; the "
                          "device refuses a mode its build lacks, e.g. lossless without "
                          "a coder). events+lfp records the LFP as a second continuous "
                          "stream and the events (docs/recording.md). Default: as the "
                          "device is")
    rec.add_argument("--channels-enabled", metavar="LIST",
                     help="record only these device channels, e.g. 0,2,5-7: set as the "
                          "device's channel mask before the stream starts (needs the control "
                          "path; default: the mask the device has, after reset every channel)")
    rec.add_argument("--codebook-from", metavar="FILE",
                     help="load the coder's codebook before recording (builds with codec "
                          "codebook=True): learned from FILE, a recording from the same ADC "
                          "(WAV, or flat int16 with --codebook-channels), or a codebook "
                          ".json (Codebook.to_dict); records in lossless mode unless --mode "
                          "says otherwise")
    rec.add_argument("--codebook-channels", type=int, metavar="N",
                     help="channels of a flat int16 --codebook-from recording")
    rec.set_defaults(run=_cmd_record)

    status = commands.add_parser(
        "status", help="read a device's identity, chips found and counters over its control "
                       "path; optionally start or stop its stream")
    status.add_argument("--port", required=True,
                        help="serial port or pyserial URL, or sim://... for a virtual board")
    status.add_argument("--baud", type=int, help="line rate of a real serial port")
    status.add_argument("--board", help="the board; sets the default --baud")
    status.add_argument("--start", action="store_true", help="start streaming (STREAM_ENABLE=1)")
    status.add_argument("--stop", action="store_true", help="stop streaming (STREAM_ENABLE=0)")
    status.set_defaults(run=_cmd_status)

    board = commands.add_parser(
        "sim-board", help="run the virtual board: the Verilated design, its UART on TCP")
    _add_config_options(board)
    board.add_argument("--tcp-port", type=int, default=0, help="default: any free port")
    board.add_argument("--measure", type=int, metavar="CYCLES",
                       help="run this many cycles with a draining client, report the speed")
    board.add_argument("--realtime", action="store_true",
                       help="pace the simulation to the real clock (default: as fast as it runs)")
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

    compress = benches.add_parser(
        "compress", help="compression ratio and speed of the gateware coder vs zlib, lzma, "
                         "zstd and FLAC")
    compress.add_argument("paths", nargs="*", help="recording files or folders (WAV, or flat "
                          "int16 .dat/.bin/.raw with --channels)")
    compress.add_argument("--channels", type=int, help="channels of flat int16 files")
    compress.add_argument("--sample-rate-hz", dest="sample_rate_hz", type=int,
                          help="sample rate of flat int16 files (labels only)")
    compress.add_argument("--stack", action="store_true",
                          help="also code the single-channel files of each folder side by "
                               "side as one multi-channel recording")
    compress.add_argument("--no-synthetic", action="store_true",
                          help="skip the SpikeInterface and test-source recordings")
    compress.add_argument("--no-spikeinterface", action="store_true",
                          help="skip the SpikeInterface recordings (keep the test source)")
    compress.add_argument("--seconds", type=float, default=2.0,
                          help="length of each synthetic recording (default 2)")
    compress.add_argument("--synth-channels", type=int, default=4,
                          help="channels of each synthetic recording (default 4)")
    compress.add_argument("--target", type=float, default=3.4,
                          help="ratio the coder must reach on --target-class (default 3.4)")
    compress.add_argument("--target-class", action="append", default=None,
                          help="recording classes (substring) the target applies to "
                               "(default: any class naming n1)")
    compress.add_argument("--block-sweeps", dest="block_sweeps", type=int,
                          help="sweeps per coded block (default: CodecConfig's)")
    compress.add_argument("--json", metavar="FILE.json", help="write machine-readable results")
    compress.set_defaults(run=_cmd_bench_compress)

    decimator = benches.add_parser(
        "decimator", help="the LFP decimator's response, state and (--synth) iCE40 cost")
    decimator.add_argument("--factor", type=int, default=30)
    decimator.add_argument("--order", type=int, default=3)
    decimator.add_argument("--sample-rate-hz", dest="sample_rate_hz", type=int,
                           default=30_000)
    decimator.add_argument("--synth", action="store_true",
                           help="also synthesize it with Yosys at 32 and 256 channels")
    decimator.set_defaults(run=_cmd_bench_decimator)

    budget = commands.add_parser(
        "budget", help="which bandwidth modes (raw, lossless, events, events+LFP) fit a link")
    budget.add_argument("--board", help="take the configuration and link rate of this board")
    _add_config_options(budget)
    budget.add_argument("--link-bps", dest="link_bps", type=float,
                        help="link rate in bit/s (default: the board's or config's baud)")
    budget.add_argument("--raw-link", action="store_true",
                        help="the link carries 8 bits per byte (default: UART, 10)")
    budget.add_argument("--detector", action=argparse.BooleanOptionalAction, default=None,
                        help="the build has the detector (default: from the configuration)")
    budget.add_argument("--spike-rate-hz", dest="spike_rate_hz", type=float, default=20.0,
                        help="expected events per second per channel (default 20)")
    budget.add_argument("--snippet-pre", dest="snippet_pre", type=int)
    budget.add_argument("--snippet-post", dest="snippet_post", type=int)
    budget.add_argument("--block-sweeps", dest="block_sweeps", type=int,
                        help="sweeps per coded block of the lossless mode (default: the "
                             "configuration's codec.block_sweeps)")
    budget.add_argument("--lfp-decimation", dest="lfp_decimation", type=int,
                        help="LFP decimation factor (default: the configuration's lfp.factor, "
                             "else 30: 30 kS/s -> 1 kS/s)")
    budget.add_argument("--compression-ratio", dest="compression_ratio", type=float,
                        help="expected lossless ratio (default: the measured benchmark's)")
    budget.add_argument("--recording", nargs="+", metavar="FILE",
                        help="measure the ratio by running the coder over these recordings")
    budget.add_argument("--recording-channels", dest="recording_channels", type=int,
                        help="channels of flat int16 --recording files")
    budget.add_argument("--json", action="store_true", help="print JSON instead of a table")
    budget.set_defaults(run=_cmd_budget)

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
