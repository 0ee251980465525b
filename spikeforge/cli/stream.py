"""``spikeforge stream``: a device's stream live over Lab Streaming Layer, without recording
to disk; and the LSL options ``record --lsl`` shares (record and stream at once).

Both run the recorder's loop (:class:`~spikeforge.host.recorder.Recorder`): ``stream`` with
the LSL sink as its only consumer (``out=None``), ``record --lsl`` with the Open Ephys writer
and the LSL sink. The outlets, their formats and timestamps: :mod:`spikeforge.host.lsl` and
docs/recording.md.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from spikeforge.host.errors import ExitCode

__all__ = ["register", "add_lsl_options", "run_recorder"]

#: Seconds the outlets stay after the stream ends, so the last samples reach the consumers.
LSL_LINGER_S = 0.5


def register(commands: argparse._SubParsersAction) -> None:
    stream = commands.add_parser(
        "stream", help="stream a device live over Lab Streaming Layer (LSL), without "
                       "recording to disk")
    stream.add_argument("--port", required=True,
                        help="serial port or pyserial URL, or sim://... for a virtual board")
    stream.add_argument("--baud", type=int, help="line rate of a real serial port")
    stream.add_argument("--board", help="the board streamed from; sets the default --baud")
    stream.add_argument("--duration", type=float, help="seconds of device time (default: "
                        "until Ctrl-C)")
    stream.add_argument("--mode", choices=("raw", "lossless", "events+lfp"),
                        help="bandwidth mode to stream in (set over the control path); "
                             "events+lfp streams the LFP and the spike events. Default: as "
                             "the device is")
    stream.add_argument("--channels-enabled", metavar="LIST",
                        help="stream only these device channels, e.g. 0,2,5-7 (the device's "
                             "channel mask; needs the control path)")
    from .record import add_privacy_options

    add_privacy_options(stream)       # --key NAME: signed writes, a sealed stream opened
    add_lsl_options(stream, required=True)
    stream.set_defaults(run=cmd_stream)


def add_lsl_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--lsl`` and ``--lsl-name``."""
    parser.add_argument("--lsl", action="store_true", required=required,
                        help="push the samples, the spike events and the LFP to LSL outlets "
                             "as they arrive, stamped by the device's sample counter "
                             "(docs/recording.md, Live streaming)")
    parser.add_argument("--lsl-name", default="spikeforge", metavar="NAME",
                        help="name of the LSL outlets (NAME, NAME-lfp, NAME-spikes, "
                             "NAME-markers; default: spikeforge)")


def run_recorder(device: Any, out: Path | None, args: argparse.Namespace,
                 **recorder_options: Any):
    """Run the recorder on ``device`` into ``out`` (None: no folder), with the LSL outlets
    if ``args.lsl``: prepare, open the outlets (consumers may connect from then on), run.
    Returns the final :class:`~spikeforge.host.recorder.RecordingStatus`."""
    from spikeforge.host.recorder import Recorder

    sink = None
    if getattr(args, "lsl", False):
        from spikeforge.host.lsl import LslSink

        sink = LslSink(args.lsl_name)
    recorder = Recorder(device, out, sinks=[sink] if sink is not None else [],
                        **recorder_options)
    recorder.prepare()
    if sink is not None:
        sink.open_for(recorder, args.port)
        print(f"LSL outlets: {', '.join(_outlet_names(sink))} (source_id {sink.source_id})",
              file=sys.stderr)
    try:
        return recorder.run()
    finally:
        if sink is not None:
            sink.release(LSL_LINGER_S)


def _outlet_names(sink: Any) -> list[str]:
    return [sink.name if stream == "data" else f"{sink.name}-{stream}"
            for stream in sink.outlets]


def cmd_stream(args: argparse.Namespace) -> int:
    from spikeforge.host.device import Device

    from .record import _channels_enabled, device_key, device_url, record_baud

    def show(status) -> None:
        end = "\n" if status.ended else "\r"
        print(status.line().replace("recorded", "streamed"), end=end, file=sys.stderr,
              flush=True)

    with device_url(args.port) as url, \
            Device.open(url, baud=record_baud(args), key=device_key(args)) as device:
        final = run_recorder(device, None, args, duration_s=args.duration, on_status=show,
                             mode=args.mode, channels=_channels_enabled(args))
    print(f"stream ended ({final.ended})")
    if final.samples_lost:
        print(f"{final.samples_lost} sweeps were lost on the way; nothing was pushed for them "
              "(the timestamps jump) and each loss is on the markers outlet", file=sys.stderr)
    return ExitCode.OK
