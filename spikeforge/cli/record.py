"""``spikeforge record``, ``status``, ``decode`` and ``export``: talking to a device (a board,
or the virtual board at a ``sim://`` URL) and converting what it sent."""

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spikeforge.firmware.config import SystemConfig
from spikeforge.host.errors import ExitCode

__all__ = ["register", "record_baud", "device_url"]


def register(commands: argparse._SubParsersAction) -> None:
    decode = commands.add_parser("decode", help="decode a captured byte stream from a device")
    decode.add_argument("file")
    decode.set_defaults(run=cmd_decode)

    rec = commands.add_parser("record", help="record a device to an Open Ephys binary folder")
    rec.add_argument("--port", required=True,
                     help="serial port or pyserial URL (/dev/ttyUSB1, socket://host:port), "
                          "or sim://?channels=8 for the virtual board")
    rec.add_argument("--baud", type=int, help="line rate of a real serial port (default: "
                     "the --board's default, else the default configuration's); with a "
                     "sim:// URL, the virtual board's")
    rec.add_argument("--allow-loss", action="store_true",
                     help="record even if the link cannot carry the stream asked for (by "
                          "default refused before the stream starts, naming the load): "
                          "frames are dropped, every loss zero-filled and listed")
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
    rec.add_argument("--learn-seconds", type=float, metavar="S",
                     help="--mode lossless from a v2 build with a value grid (codec_v2 "
                          "grid=True): record raw for the first S seconds of device time "
                          "(default 1.0), learn the ADC's value grid from them, load it and "
                          "switch to lossless at a sync block; the raw start stays in the "
                          "recording, and spikeforge.json keeps the grid. Without a grid in "
                          "those samples the recording stays raw (docs/recording.md)")
    rec.add_argument("--no-code-weights", dest="code_weights", action="store_false",
                     help="--mode lossless from a v2 build with code weights (codec_v2 "
                          "code_weights=True): do not learn and load them after the grid "
                          "(WEIGHTS_ON = 0, the coder codes as without them): lossless starts "
                          "sooner, by one command per two grid codes, and codes a little "
                          "less tightly (docs/recording.md, \"Code weights\")")
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
    rec.add_argument("--restart-prior", dest="restart_prior", metavar="FILE.npy",
                     help="load this restart prior into the v2 coder before recording "
                          "(builds with codec_v2 restart_prior=True): every sync block "
                          "restarts its context tables from it instead of the flat initial "
                          "ones. Learn it with `spikeforge learn-prior` from recordings of "
                          "the same ADC; spikeforge.json keeps its file and digest. Records "
                          "in lossless mode")
    add_privacy_options(rec, encrypt=True)    # --key NAME, --encrypt-to RECIPIENT.pub
    from .stream import add_lsl_options

    add_lsl_options(rec)     # record --lsl: record and stream live at once
    rec.set_defaults(run=cmd_record)

    status = commands.add_parser(
        "status", help="read a device's identity, chips found and counters over its control "
                       "path; optionally start or stop its stream")
    status.add_argument("--port", required=True,
                        help="serial port or pyserial URL, or sim://... for a virtual board")
    status.add_argument("--baud", type=int, help="line rate of a real serial port")
    status.add_argument("--board", help="the board; sets the default --baud")
    status.add_argument("--start", action="store_true", help="start streaming (STREAM_ENABLE=1)")
    status.add_argument("--stop", action="store_true", help="stop streaming (STREAM_ENABLE=0)")
    add_privacy_options(status)
    status.set_defaults(run=cmd_status)

    export = commands.add_parser("export", help="convert a recording to another format")
    export.add_argument("recording", help="folder written by spikeforge record")
    export.add_argument("--nwb", required=True, metavar="OUT.nwb", help="write NWB (pynwb)")
    export.add_argument("--subject-id", metavar="ID",
                        help="the NWB Subject's id: a pseudonym, as the lab keeps them "
                             "(default: subject-01; no host or user name is ever written)")
    export.add_argument("--subject-age", metavar="ISO8601", default="P0D/",
                        help="the subject's age, e.g. P90D, or a range P90D/P120D (default "
                             "%(default)s: unknown)")
    export.add_argument("--subject-sex", choices=("M", "F", "O", "U"), default="U",
                        help="default %(default)s (unknown)")
    export.add_argument("--subject-species", metavar="NAME",
                        help="Latin binomial, e.g. 'Mus musculus' (default: none)")
    export.set_defaults(run=cmd_export)


def sim_board(port: str, baud: int | None = None):
    """The configuration and input of the virtual board a ``sim://`` URL names; ``baud``
    (``--baud``) replaces its line rate."""
    from spikeforge.sim.virtual_board import board_from_sim_url

    config, feed = board_from_sim_url(port)
    if baud is not None:
        config = config.replace(baud=baud)
    return config, feed


@contextmanager
def device_url(port: str, baud: int | None = None) -> Iterator[str]:
    """The URL to open for ``--port``: the port itself, or, for a ``sim://`` URL, the TCP URL
    of a virtual board started for the command (with the input the URL names, at ``baud``
    if given) and stopped after it. The CLI is the one place that ties the host to the
    simulation layer."""
    from spikeforge.sim.virtual_board import (
        VirtualBoard,
        is_sim_url,
        sim_url_capture,
        sim_url_flash,
    )

    if not is_sim_url(port):
        yield port
        return
    config, feed = sim_board(port, baud)
    board = VirtualBoard.start(config, feed=feed, pcap=sim_url_capture(port),
                               flash=sim_url_flash(port))
    print(f"virtual board: {board.config.describe()} at {board.url}", file=sys.stderr)
    try:
        yield board.url
    finally:
        print(f"virtual board: {board.stop()}", file=sys.stderr)


def record_baud(args: argparse.Namespace) -> int:
    """``--baud``; else the default of ``--board`` (boards differ: 4 Mbaud on the
    iCEBreaker, 3 Mbaud on the ULX3S); else the default configuration's."""
    if args.baud is not None:
        return args.baud
    if getattr(args, "board", None):
        from spikeforge.boards import get_board

        return get_board(args.board).default_config.baud
    return SystemConfig().baud


def cmd_decode(args: argparse.Namespace) -> int:
    from spikeforge.host import DataBlock, EventBlock, Identity, StreamDecoder

    decoder = StreamDecoder()
    items = decoder.feed(_read_capture(Path(args.file))) + decoder.flush()
    identity = next((i for i in items if isinstance(i, Identity)), None)
    if identity is not None:
        print(f"device: {identity.config.describe()}")
    # Full-rate (DATA, COMPRESSED) and LFP sweeps run at different rates: counted apart.
    for stream, name in (("data", "full-rate"), ("lfp", "LFP")):
        blocks = [i for i in items if isinstance(i, DataBlock) and i.stream == stream]
        if blocks or stream == "data":
            sweeps = sum(b.samples.shape[0] for b in blocks)
            print(f"{len(blocks)} {'LFP' if stream == 'lfp' else 'data'} frames, "
                  f"{sweeps} {name} sweeps")
    event_frames = [i for i in items if isinstance(i, EventBlock)]
    if event_frames:
        spikes = sum(len(i.events) for i in event_frames)
        print(f"{len(event_frames)} event frames, {spikes} spikes")
    print(f"link: {decoder.stats}")
    return ExitCode.OK


def _read_capture(path: Path) -> bytes:
    """``decode FILE``: the captured bytes; a file that cannot be read is a usage error."""
    from spikeforge.host.sample_files import RecordingFileError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RecordingFileError(f"{path} does not exist; give a file of bytes captured from "
                                 "a device's link") from None
    except OSError as exc:
        raise RecordingFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def cmd_record(args: argparse.Namespace) -> int:
    from spikeforge.host.device import Device
    from spikeforge.host.recorder import check_output_folder

    from .stream import run_recorder

    check_output_folder(Path(args.out))     # before any board starts
    encrypt_recipient(args)                 # a bad --encrypt-to key file too
    mode = args.mode or ("lossless" if args.codebook_from is not None
                         or args.restart_prior is not None else None)
    prior = _record_prior(args)             # a bad --restart-prior file too
    _check_sim_link(args, mode)             # before the virtual board starts

    def show(status) -> None:
        end = "\n" if status.ended else "\r"
        print(status.line(), end=end, file=sys.stderr, flush=True)

    codebook = _record_codebook(args)
    sim_baud = args.baud if _is_sim(args.port) else None
    with device_url(args.port, sim_baud) as url, \
            Device.open(url, baud=record_baud(args), key=device_key(args)) as device:
        if codebook is not None:
            print(f"loading the codebook: {len(codebook.values)} values, base "
                  f"{codebook.base}, multiplier {codebook.multiplier}, shift "
                  f"{codebook.shift}", file=sys.stderr)
        if prior is not None:
            print(f"loading the restart prior {prior.source}: {len(prior.rows)} context "
                  "tables, one command per entry, before the stream starts", file=sys.stderr)
        _say_learning(device, mode, args)
        final = run_recorder(device, Path(args.out), args, duration_s=args.duration,
                             on_status=show,
                             mode=mode, channels=_channels_enabled(args), codebook=codebook,
                             overload="warn" if args.allow_loss else "refuse",
                             encrypt_to=encrypt_recipient(args), prior=prior,
                             code_weights=args.code_weights, **_learning(args))
    print(f"recording ended ({final.ended}): {args.out}")
    if final.samples_lost:
        print(f"{final.samples_lost} sweeps were lost on the way; they are zero-filled and "
              f"listed in spikeforge.json", file=sys.stderr)
    return ExitCode.OK


def _is_sim(port: str) -> bool:
    from spikeforge.sim.virtual_board import is_sim_url

    return is_sim_url(port)


def _check_sim_link(args: argparse.Namespace, mode: str | None) -> None:
    """``record`` from a ``sim://`` URL: the board's configuration is known before it
    starts, so a link that cannot carry the stream is refused (or, with --allow-loss,
    warned about) before anything runs, and the load is said."""
    from spikeforge.host.recorder import (
        LinkOverloaded,
        control_path_warning,
        link_problem,
        stream_load,
    )

    if not _is_sim(args.port):
        return
    config, _ = sim_board(args.port, args.baud)
    channels = _channels_enabled(args)
    problem = link_problem(config, mode, channels)
    if problem is not None and not args.allow_loss:
        raise LinkOverloaded(problem)
    if problem is not None:
        print(f"spikeforge: warning: {problem}", file=sys.stderr)
    else:
        load, what = stream_load(config, mode, channels)
        print(f"link load: {load:.1%} ({what})" if load < 0.1 else
              f"link load: {load:.0%} ({what})", file=sys.stderr)
    warning = control_path_warning(config)
    if warning is not None:
        print(f"spikeforge: warning: {warning}", file=sys.stderr)


def _record_codebook(args: argparse.Namespace):
    """``record --codebook-from FILE``: the codebook to load (None without the option)."""
    if getattr(args, "codebook_from", None) is None:
        return None
    from spikeforge.host.compression import codebook_from_file

    return codebook_from_file(args.codebook_from, args.codebook_channels)


def _record_prior(args: argparse.Namespace):
    """``record --restart-prior FILE.npy``: the prior to load (None without the option)."""
    path = getattr(args, "restart_prior", None)
    if path is None:
        return None
    from spikeforge.host.restart_prior import read_prior

    return read_prior(path)


def _say_learning(device, mode: str | None, args: argparse.Namespace) -> None:
    """Tell the user that a lossless recording from a v2 grid build starts raw."""
    from spikeforge.host.recorder import LEARN_SECONDS, learns_grid

    config = device.config or device.identify()
    if mode != "lossless" or not learns_grid(config, mode):
        return
    seconds = getattr(args, "learn_seconds", None) or LEARN_SECONDS
    weights = (" and its code weights" if config.codec_v2.code_weights
               and getattr(args, "code_weights", True) else "")
    print(f"v2 coder with a value grid: recording raw for the first {seconds:g} s to learn "
          f"the grid{weights}, then loading {'them' if weights else 'it'} and switching to "
          "lossless", file=sys.stderr)


def _learning(args: argparse.Namespace) -> dict:
    """``--learn-seconds``: the recorder's ``learn_seconds`` (nothing without the option)."""
    seconds = getattr(args, "learn_seconds", None)
    if seconds is None:
        return {}
    if not seconds > 0:
        from spikeforge.host.recorder import RecordingModeError

        raise RecordingModeError(f"--learn-seconds must be above 0, not {seconds:g}")
    return {"learn_seconds": seconds}


def _channels_enabled(args: argparse.Namespace) -> "tuple[int, ...] | None":
    """``record --channels-enabled 0,2,5-7`` (channel mask; None: leave the device's)."""
    from spikeforge.firmware.config import parse_channels

    text = getattr(args, "channels_enabled", None)
    return None if text is None else parse_channels(text)


def cmd_status(args: argparse.Namespace) -> int:
    """Identity, chips found and counters of a device, read over its control path."""
    from spikeforge.host.device import Device

    with device_url(args.port) as url, \
            Device.open(url, baud=record_baud(args), key=device_key(args)) as device:
        config = device.identify()
        device.open_stream_cipher()     # a cipher build without --key: say so
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
    return ExitCode.OK


def _print_channel_mask(device) -> None:
    """``status``: the channels DATA frames carry, read from the device."""
    from spikeforge.firmware.config import format_channels
    from spikeforge.host.errors import RegisterRefused

    try:
        print(f"channels enabled: {format_channels(device.read_channel_mask())}")
    except RegisterRefused:
        print("channels enabled: all (the bitstream has no channel mask registers)")


def cmd_export(args: argparse.Namespace) -> int:
    from spikeforge.host.nwb import DEFAULT_SUBJECT_ID, export_nwb

    written = export_nwb(Path(args.recording), Path(args.nwb),
                         subject_id=args.subject_id or DEFAULT_SUBJECT_ID,
                         subject_age=args.subject_age, subject_sex=args.subject_sex,
                         subject_species=args.subject_species)
    print(f"wrote {written}")
    return ExitCode.OK


# -- privacy (docs/recording.md, "Keys, encrypted streams and encrypted recordings") --
def add_privacy_options(parser: argparse.ArgumentParser, *, encrypt: bool = False) -> None:
    """``--key NAME`` (the device's control key: signed writes, and the encrypted stream
    of stream_cipher builds decrypted transparently); with ``encrypt``, ``--encrypt-to``."""
    parser.add_argument("--key", metavar="NAME",
                        help="the device's control key (`spikeforge key`): writes are "
                             "signed with it, and a stream_cipher build's encrypted stream "
                             "is decrypted with it")
    if encrypt:
        parser.add_argument("--encrypt-to", metavar="RECIPIENT.pub",
                            help="write the recording encrypted to this X25519 public key "
                                 "(`spikeforge key new-recipient NAME`): nothing readable "
                                 "on disk; `spikeforge decrypt` restores the folder")


def device_key(args: argparse.Namespace):
    """``--key NAME``: the device's key from the user's key folder (None without it)."""
    name = getattr(args, "key", None)
    if name is None:
        return None
    from spikeforge.host.keys import load_key

    return load_key(name)


def encrypt_recipient(args: argparse.Namespace):
    """``--encrypt-to FILE``: the recipient public key (None without it)."""
    path = getattr(args, "encrypt_to", None)
    if path is None:
        return None
    from spikeforge.host.encrypted_recording import load_recipient

    return load_recipient(Path(path))
