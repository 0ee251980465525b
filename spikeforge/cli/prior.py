"""``spikeforge learn-prior``: learn the v2 coder's restart prior from recordings of the same
ADC, for ``spikeforge record --restart-prior`` (docs/recording.md, "Restart prior")."""

import argparse
import sys
from pathlib import Path

from spikeforge.host.errors import ExitCode

__all__ = ["register"]

#: The configuration whose ``codec_v2`` a prior is learned for when none is named.
DEFAULT_CONFIG = "full-v2.json"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "learn-prior",
        help="learn the v2 coder's restart prior (its context tables) from recordings of the "
             "same ADC, for `record --restart-prior`",
        description="Codes each recording with the v2 golden model as the device would (its "
                    "value grid learned from the first samples, never restarted) and "
                    "writes the mean of the context tables it ends with: the tables a "
                    "codec_v2 restart_prior=True build restarts from at every sync block "
                    "once `spikeforge record --restart-prior FILE.npy` loaded them. Use "
                    "recordings of the same ADC and probe, never the ones you will record.")
    parser.add_argument("paths", nargs="+", metavar="REC",
                        help="recording files or folders: WAV, flat int16 .dat/.bin/.raw "
                             "(with --channels), or an Open Ephys folder `spikeforge record` "
                             "wrote")
    parser.add_argument("--out", required=True, metavar="FILE.npy",
                        help="where to write the prior (a .npy array, one row per context)")
    parser.add_argument("--board", help="learn for this board's default configuration's "
                                        "codec_v2 (--config on top)")
    parser.add_argument("--config", metavar="FILE.json",
                        help="learn for this configuration's codec_v2 (SystemConfig fields "
                             f"as JSON; default: boards/{DEFAULT_CONFIG}, the v2 build)")
    parser.add_argument("--channels", type=int, help="channels of flat int16 files")
    parser.add_argument("--sample-rate-hz", dest="sample_rate_hz", type=int,
                        help="sample rate of flat int16 files (the value grid is learned "
                             "from each recording's first milliseconds)")
    parser.set_defaults(run=cmd_learn_prior)


def _codec_v2(args: argparse.Namespace):
    """The v2 coder the prior is for: ``--board``'s default configuration with ``--config``
    on top, or ``boards/full-v2.json``; refused when it has no v2 coder."""
    from spikeforge.firmware.config import SystemConfig, read_config_file
    from spikeforge.firmware.errors import ConfigError

    if args.board is None and args.config is None:
        import spikeforge.boards

        named = Path(spikeforge.boards.__file__).parent / DEFAULT_CONFIG
        data = read_config_file(named)
        named = f"boards/{DEFAULT_CONFIG}"
    else:
        data = {}
        if args.board is not None:
            from spikeforge.boards.registry import get_board

            data = get_board(args.board).default_config.to_dict()
        if args.config is not None:
            data.update(read_config_file(args.config))
        named = args.config or f"board {args.board}"
    codec = SystemConfig.from_dict(data).codec_v2
    if not codec.enabled:
        raise ConfigError(f"{named} has no v2 coder (codec_v2.enabled is false): a restart "
                          "prior is for codec_v2 builds; give --config with codec_v2 enabled, "
                          f"e.g. boards/{DEFAULT_CONFIG}")
    return codec, named


def cmd_learn_prior(args: argparse.Namespace) -> int:

    import numpy as np

    from spikeforge.firmware.compression_v2 import restart_tables
    from spikeforge.host.restart_prior import write_prior
    from spikeforge.host.sample_files import RecordingFileError
    from spikeforge.sim.compression_bench import (
        LEARN_SECONDS,
        file_recordings,
        restart_prior_from,
    )

    out = Path(args.out)
    if out.suffix != ".npy":
        raise RecordingFileError(f"--out must name a .npy file, not {str(out)!r} (e.g. "
                                 "prior.npy)")
    if not out.parent.is_dir():
        raise RecordingFileError(f"--out {out}: folder {out.parent} does not exist; create "
                                 "it or write elsewhere")
    codec, named = _codec_v2(args)
    recordings = file_recordings(args.paths, args.channels, args.sample_rate_hz)
    if not recordings:
        raise RecordingFileError(f"no recordings in {' '.join(args.paths)}; name WAV, flat "
                                 "int16 (with --channels) or Open Ephys recordings")
    sweeps = sum(r.samples.shape[0] for r in recordings)
    print(f"learning a restart prior for {named}'s codec_v2 from {len(recordings)} "
          f"recordings ({sweeps} sweeps) ...", file=sys.stderr, flush=True)
    # The prior is learned without restarts; the build's own restart_prior is no matter.
    rows = restart_prior_from(recordings, codec)
    initial, _ = restart_tables(codec)
    if rows is None or np.array_equal(rows, initial):
        raise RecordingFileError(
            f"{' '.join(args.paths)}: too short to learn from (the coder saw no sample after "
            f"the first {LEARN_SECONDS * 1000:g} ms, where it learns the value grid); give "
            "longer recordings")
    prior = write_prior(out, rows)
    print(f"wrote {out}: {rows.shape[0]} context tables (sha256 {prior.sha256[:16]}...)")
    print(f"next: spikeforge record --port PORT --restart-prior {out} --out FOLDER (a build "
          "with codec_v2 restart_prior=True)")
    return ExitCode.OK
