"""``spikeforge budget``: which bandwidth modes (raw, lossless, events, events+LFP) fit a
link, from a board's or a configuration's stream (:func:`spikeforge.host.budget.budget`)."""

import argparse
import json
import sys

from spikeforge.firmware.compression import CodecConfig
from spikeforge.firmware.compression_v2 import CodecV2Config
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import DetectorConfig
from spikeforge.firmware.ethernet import MAX_WIRE_FRAME_BYTES
from spikeforge.firmware.framing import DATA_FRAME_OVERHEAD_BYTES
from spikeforge.host.budget import (
    DEFAULT_COMPRESSION_RATIO,
    DEFAULT_LFP_DECIMATION,
    DEFAULT_SPIKE_RATE_HZ,
    LINKS,
    UART_BITS_PER_BYTE,
    StreamDescription,
    budget,
    format_budget,
)
from spikeforge.host.errors import ExitCode

from .options import add_config_options, config_fields

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "budget", help="which bandwidth modes (raw, lossless, events, events+LFP) fit a link")
    parser.add_argument("--board", help="take the configuration and link rate of this board")
    add_config_options(parser)
    parser.add_argument("--link", choices=LINKS,
                        help="the link: uart or ethernet (Gigabit, UDP) (default: the board's "
                             "or configuration's link)")
    parser.add_argument("--link-bps", dest="link_bps", type=float,
                        help="link rate in bit/s (default: the board's or config's baud; "
                             "1 Gbit/s for ethernet)")
    parser.add_argument("--raw-link", action="store_true",
                        help="the link carries 8 bits per byte (default: UART, "
                             f"{UART_BITS_PER_BYTE})")
    parser.add_argument("--detector", action=argparse.BooleanOptionalAction, default=None,
                        help="the build has the detector (default: from the configuration)")
    parser.add_argument("--spike-rate-hz", dest="spike_rate_hz", type=float,
                        default=DEFAULT_SPIKE_RATE_HZ,
                        help="expected events per second per channel (default %(default)g)")
    parser.add_argument("--snippet-pre", dest="snippet_pre", type=int)
    parser.add_argument("--snippet-post", dest="snippet_post", type=int)
    parser.add_argument("--block-sweeps", dest="block_sweeps", type=int,
                        help="sweeps per coded block of the lossless mode (default: the "
                             "configuration's codec.block_sweeps)")
    parser.add_argument("--lfp-decimation", dest="lfp_decimation", type=int,
                        help="LFP decimation factor (default: the configuration's lfp.factor, "
                             f"else {DEFAULT_LFP_DECIMATION}: 30 kS/s -> 1 kS/s)")
    parser.add_argument("--compression-ratio", dest="compression_ratio", type=float,
                        help="expected lossless ratio (default: the measured benchmark's)")
    parser.add_argument("--recording", nargs="+", metavar="FILE",
                        help="measure the ratio by running the coder over these recordings")
    parser.add_argument("--recording-channels", dest="recording_channels", type=int,
                        help="channels of flat int16 --recording files")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=cmd_budget)


def _datagram_sweeps(channels: int, sweeps_per_frame: int) -> int:
    """The configuration's sweeps per frame, lowered until a raw frame fits one UDP datagram
    (a Gigabit link carries one wire frame per datagram); say so when lowered."""
    sweeps = sweeps_per_frame
    while sweeps > 1 and DATA_FRAME_OVERHEAD_BYTES + 2 * channels * sweeps > MAX_WIRE_FRAME_BYTES:
        sweeps -= 1
    if sweeps != sweeps_per_frame:
        print(f"sweeps_per_frame {sweeps_per_frame} -> {sweeps}: a raw frame must fit one UDP "
              f"datagram ({MAX_WIRE_FRAME_BYTES:,} bytes); give --sweeps-per-frame to choose",
              file=sys.stderr)
    return sweeps


def _codec(data: dict, block_sweeps: int | None) -> CodecConfig | CodecV2Config:
    """The build's lossless coder: ``codec_v2`` when a configuration enables it, else
    ``codec`` (v1); ``--block-sweeps`` overrides its block."""
    block = {"block_sweeps": block_sweeps} if block_sweeps else {}
    codec_v2 = data.get("codec_v2") or {}
    if codec_v2.get("enabled"):
        return CodecV2Config(**{**codec_v2, **block})
    return CodecConfig(**{**data.get("codec", {}), **block})


def cmd_budget(args: argparse.Namespace) -> int:
    base = SystemConfig()
    if args.board:
        from spikeforge.boards.registry import get_board

        base = get_board(args.board).default_config
    # Not validated as a SystemConfig: a budget may ask about a stream the board's clock
    # cannot produce (e.g. 1024 channels over a given link).
    data = config_fields(args, base)
    link_kind = args.link or data.get("link", "uart")
    if link_kind == "ethernet" and getattr(args, "sweeps_per_frame", None) is None:
        data["sweeps_per_frame"] = _datagram_sweeps(data["channels"], data["sweeps_per_frame"])
    # A configuration file's "detector" may name only some fields: the rest are the defaults.
    detector, detector_default = data.get("detector", {}), DetectorConfig()
    stream = StreamDescription(
        channels=data["channels"],
        sample_rate_hz=data["sample_rate_hz"],
        sweeps_per_frame=data["sweeps_per_frame"],
        identity_interval_frames=data["identity_interval_frames"],
        detector_enabled=(args.detector if args.detector is not None
                          else bool(detector.get("enabled", detector_default.enabled))),
        spike_rate_hz=args.spike_rate_hz,
        snippet_pre=(args.snippet_pre if args.snippet_pre is not None
                     else detector.get("snippet_pre", detector_default.snippet_pre)),
        snippet_post=(args.snippet_post if args.snippet_post is not None
                      else detector.get("snippet_post", detector_default.snippet_post)),
        codec=_codec(data, args.block_sweeps))
    link = (args.link_bps if args.link_bps is not None
            else None if link_kind == "ethernet" else float(data["baud"]))
    ratio, source = DEFAULT_COMPRESSION_RATIO, "default, docs/compression-benchmark.md"
    if args.compression_ratio is not None:
        ratio, source = args.compression_ratio, "given with --compression-ratio"
    if args.recording:
        from spikeforge.host.sample_files import RecordingFileError
        from spikeforge.sim.compression_bench import recording_ratio

        print(f"measuring the coder's ratio over {' '.join(args.recording)} ...", flush=True)
        try:
            ratio, source = recording_ratio(args.recording, args.recording_channels,
                                            stream.codec)
            source = f"measured: {source}"     # no assumption (host.budget says so)
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
                    bits_per_byte=8 if args.raw_link else UART_BITS_PER_BYTE, link=link_kind)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_budget(result))
    return ExitCode.OK
