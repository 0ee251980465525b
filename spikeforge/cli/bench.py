"""``spikeforge bench detect | compress | decimator | link | latency``: accuracy, cost and
latency benchmarks."""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.decimation import DecimatorConfig
from spikeforge.host.errors import ExitCode
from spikeforge.sim.accuracy import NEO_THRESHOLD_K, Layout

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="benchmarks (accuracy, cost)")
    benches = bench.add_subparsers(dest="bench", required=True)
    detect = benches.add_parser(
        "detect", help="score the bit-exact detector against ground truth and SpikeInterface")
    detect.add_argument("--out", metavar="FILE.md", help="also write the tables to this file")
    detect.add_argument("--seconds", type=float, default=4.0,
                        help="length of each recording (default 4)")
    detect.add_argument("--neo-k", dest="neo_k", type=float, default=NEO_THRESHOLD_K,
                        help="threshold k of the NEO column (default %(default)g, a multiple "
                             "of 1/16)")
    detect.add_argument("--synth", action="store_true",
                        help="also synthesize the cores with Yosys at 32 and 256 channels")
    detect.add_argument("--json", metavar="FILE.json",
                        help="write machine-readable results (what `spikeforge report` reads)")
    detect.add_argument("--layout", action="append", type=_layout, metavar="CHxUNITS[@HZ]",
                        help="ground-truth probe layout, repeatable (default: 4x5, 16x25@25, "
                             "32x40: channels x units @ firing rate)")
    detect.add_argument("--seed", dest="seeds", action="append", type=int,
                        help="ground-truth seed, repeatable (default 1 and 2)")
    detect.add_argument("--noise-uv", dest="noise_uv", action="append", type=float,
                        help="ground-truth noise level in uV, repeatable (default 5 and 10)")
    detect.add_argument("--rate", dest="rates", action="append", type=int,
                        help="sample rate in S/s, repeatable (default 20000 and 30000)")
    detect.set_defaults(run=cmd_bench_detect)

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
                          help="sweeps per coded block, of the coder and coder-v2 (default: "
                               "each one's configuration's)")
    compress.add_argument("--sync-blocks", dest="sync_blocks", type=int, default=0,
                          help="coder-v2 restarts every this many of its blocks, as a build "
                               "with codec_v2.sync_blocks (boards/full-v2.json: 512 of 16 "
                               "sweeps; default 0: once, at the start)")
    compress.add_argument("--calibrate-from", dest="calibrate_from", action="append",
                          metavar="PATH", help="recordings of the same ADC (never those "
                          "benchmarked) to learn coder-v2's code weights from")
    compress.add_argument("--restart-prior", dest="restart_prior", action="store_true",
                          help="coder-v2 (re)starts its context tables from those learned "
                               "on the --calibrate-from recordings instead of the flat "
                               "initial ones (a build with codec_v2 restart_prior and the "
                               "prior loaded: spikeforge learn-prior, record --restart-prior)")
    compress.add_argument("--no-code-weights", dest="code_weights", action="store_false",
                          help="with --calibrate-from, code without code weights (the "
                               "gateware has none; with --restart-prior: as built in "
                               "boards/full-v2.json)")
    compress.add_argument("--json", metavar="FILE.json", help="write machine-readable results")
    compress.set_defaults(run=cmd_bench_compress)

    decimator = benches.add_parser(
        "decimator", help="the LFP decimator's response, state and (--synth) iCE40 cost")
    decimator.add_argument("--factor", type=int, default=DecimatorConfig().factor)
    decimator.add_argument("--order", type=int, default=DecimatorConfig().order)
    decimator.add_argument("--sample-rate-hz", dest="sample_rate_hz", type=int,
                           default=SystemConfig().sample_rate_hz)
    decimator.add_argument("--synth", action="store_true",
                           help="also synthesize it with Yosys at 32 and 256 channels")
    decimator.set_defaults(run=cmd_bench_decimator)

    link = benches.add_parser(
        "link", help="the highest raw rate the UDP receiver and recorder hold on loopback "
                     "with zero datagrams lost")
    from spikeforge.sim import link_bench

    link_bench.add_arguments(link)
    link.set_defaults(run=link_bench.run)

    latency = benches.add_parser(
        "latency", help="spike at the virtual board's ADC input to its event decoded on the "
                        "host: device, link and host parts")
    from spikeforge.sim import latency_bench

    latency_bench.add_arguments(latency)
    latency.set_defaults(run=latency_bench.run)


def cmd_bench_detect(args: argparse.Namespace) -> int:
    from spikeforge.sim.accuracy import (
        DEFAULT_LAYOUTS,
        MATCH_WINDOW_MS,
        THRESHOLD_K,
        UNIT_RADIUS_UM,
        WARMUP_S,
        format_recall_by_snr,
        format_table,
        format_unit_table,
        git_commit,
        run_benchmark,
        to_json,
    )

    started = time.perf_counter()
    print(f"detection benchmark: k={THRESHOLD_K:g}, negative peaks, match window "
          f"+/-{MATCH_WINDOW_MS:g} ms, first {WARMUP_S:g} s of each recording not scored",
          flush=True)
    grid = dict(seconds=args.seconds, neo_k=args.neo_k,
                layouts=tuple(args.layout or DEFAULT_LAYOUTS),
                seeds=tuple(args.seeds or (1, 2)), noise_uv=tuple(args.noise_uv or (5.0, 10.0)),
                rates=tuple(args.rates or (20_000, 30_000)))
    rows = run_benchmark(**grid, progress=lambda line: print(line, flush=True))
    sections = [
        f"Unit score (docs/detection.md, \"Scoring\"): per unit on its own channels (peak "
        f"channel and those within {UNIT_RADIUS_UM:g} um), one hit per spike within "
        f"+/-{MATCH_WINDOW_MS:g} ms; every other event is false ((dup): a second event for "
        "a spike already found).",
        "",
        format_unit_table(rows),
        "",
        "Recall against unit SNR (trough on the peak channel / noise sigma), all recordings:",
        "",
        format_recall_by_snr(rows),
        "",
        "Any-channel score (the earlier one, for comparison):",
        "",
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
    if args.json:
        settings = {"command": " ".join(["spikeforge", *sys.argv[1:]]), "commit": git_commit(),
                    **{k: [str(v) for v in grid["layouts"]] if k == "layouts" else v
                       for k, v in grid.items()}}
        Path(args.json).write_text(json.dumps(to_json(rows, settings), indent=2) + "\n")
        print(f"written to {args.json}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return ExitCode.OK


def _layout(text: str) -> Layout:
    try:
        return Layout.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_bench_compress(args: argparse.Namespace) -> int:
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
        return ExitCode.USAGE
    codec_config = None
    if args.block_sweeps is not None:
        from spikeforge.firmware.compression import CodecConfig

        codec_config = CodecConfig(enabled=True, block_sweeps=args.block_sweeps)
    from spikeforge.firmware.compression_v2 import CodecV2Config

    v2_config = CodecV2Config(enabled=True, sync_blocks=args.sync_blocks,
                              **({} if args.block_sweeps is None
                                 else {"block_sweeps": args.block_sweeps}))
    if args.restart_prior and not args.calibrate_from:
        print("--restart-prior learns the tables from the --calibrate-from recordings: name "
              "some (never the ones benchmarked)", file=sys.stderr)
        return ExitCode.USAGE
    calibration = None
    if args.calibrate_from:
        calibration_recordings = cb.file_recordings(args.calibrate_from, args.channels,
                                                    args.sample_rate_hz)
        calibration = cb.calibration_from(calibration_recordings,
                                          ", ".join(args.calibrate_from))
        if calibration is not None and args.restart_prior:
            calibration = replace(calibration, prior=cb.restart_prior_from(
                calibration_recordings, v2_config))
        if calibration is not None and not args.code_weights:
            calibration = replace(calibration, weights=None)
    codecs = cb.coder_codecs(codec_config, calibration, v2_config) + cb.reference_codecs()
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
                    "block_sweeps": args.block_sweeps, "sync_blocks": args.sync_blocks,
                    "restart_prior": args.restart_prior, "code_weights": args.code_weights,
                    "codecs": {c.name: c.note for c in codecs}}
        Path(args.json).write_text(json.dumps(cb.to_json(rows, settings), indent=2) + "\n")
        print(f"\nwritten to {args.json}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return ExitCode.OK


def cmd_bench_decimator(args: argparse.Namespace) -> int:
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
    return ExitCode.OK
