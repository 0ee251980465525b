"""Read recordings from files the user points at: WAV or flat int16.

Used by the compression benchmark and the link-budget calculator (``--recording``), so
both accept exactly the same files:

* ``.wav``: 16-bit PCM, mono or multichannel (one WAV channel = one recording channel); the
  sample rate comes from the file.
* ``.dat``, ``.bin``, ``.raw``: flat little-endian int16, interleaved sweep-major (channel
  fastest, as Open Ephys' ``continuous.dat``); the channel count must be given, the sample
  rate may be.
* a folder: every file of those kinds directly inside it, in name order.

Everything comes back as an int16 array of shape (sweeps, channels).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikeforge.firmware.errors import SpikeforgeError

from .errors import ExitCode

__all__ = ["RecordingFileError", "SampleFile", "WAV_SUFFIXES", "FLAT_SUFFIXES",
           "read_sample_file", "read_sample_files"]

WAV_SUFFIXES = (".wav",)
FLAT_SUFFIXES = (".dat", ".bin", ".raw")


class RecordingFileError(SpikeforgeError, ValueError):
    """A file that is not a recording spikeforge can read, or options that do not fit it."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class SampleFile:
    """One recording read from disk."""

    path: Path
    samples: np.ndarray          #: int16, shape (sweeps, channels)
    sample_rate_hz: int | None   #: from the WAV header or the caller; None if unknown

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def channels(self) -> int:
        return self.samples.shape[1]


def _read_wav(path: Path) -> SampleFile:
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except ValueError as exc:
        raise RecordingFileError(
            f"{path} is not a readable WAV file ({exc}); convert it to 16-bit PCM WAV or to "
            "flat int16 (.dat) with --channels") from None
    if data.dtype != np.int16:
        raise RecordingFileError(
            f"{path} holds {data.dtype} samples; the coder takes 16-bit integers: convert it "
            "to 16-bit PCM WAV (e.g. sox IN -b 16 OUT.wav) or to flat int16 (.dat)")
    if data.ndim == 1:
        data = data[:, None]
    return SampleFile(path, np.ascontiguousarray(data), int(rate))


def _read_flat(path: Path, channels: int | None, sample_rate_hz: int | None) -> SampleFile:
    if channels is None:
        raise RecordingFileError(
            f"{path} is flat int16 with no header, so its channel count is unknown; give it "
            "with --channels N (samples interleaved, channel fastest)")
    if channels <= 0:
        raise RecordingFileError(f"--channels must be a positive integer, not {channels}")
    size = path.stat().st_size
    if size % 2:
        raise RecordingFileError(
            f"{path} has {size} bytes, an odd number, so it is not int16 samples; is it "
            "truncated, or not a flat int16 file?")
    if (size // 2) % channels:
        raise RecordingFileError(
            f"{path} holds {size // 2} int16 samples, not a whole number of sweeps of "
            f"{channels} channels; check --channels (it divides exactly by: "
            f"{', '.join(str(d) for d in _divisors(size // 2, 8))} ...)")
    data = np.fromfile(path, dtype="<i2").astype(np.int16).reshape(-1, channels)
    return SampleFile(path, data, sample_rate_hz)


def _divisors(n: int, count: int) -> list[int]:
    return [d for d in range(1, min(n, 1024) + 1) if n % d == 0][:count]


def read_sample_file(path: str | Path, channels: int | None = None,
                     sample_rate_hz: int | None = None) -> SampleFile:
    """Read one recording file (see the module docstring for the formats)."""
    path = Path(path)
    if not path.is_file():
        raise RecordingFileError(f"no such recording file: {path}")
    suffix = path.suffix.lower()
    if suffix in WAV_SUFFIXES:
        return _read_wav(path)
    if suffix in FLAT_SUFFIXES:
        return _read_flat(path, channels, sample_rate_hz)
    raise RecordingFileError(
        f"{path}: unknown recording file type {path.suffix or '(no suffix)'!r}; spikeforge "
        f"reads WAV ({', '.join(WAV_SUFFIXES)}) and flat int16 "
        f"({', '.join(FLAT_SUFFIXES)}, with --channels)")


def read_sample_files(paths: list[str | Path], channels: int | None = None,
                      sample_rate_hz: int | None = None) -> list[SampleFile]:
    """Read every file named, and every readable file inside every folder named."""
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file()
                           and p.suffix.lower() in WAV_SUFFIXES + FLAT_SUFFIXES)
            if not found:
                raise RecordingFileError(
                    f"{path} holds no recording files ({', '.join(WAV_SUFFIXES + FLAT_SUFFIXES)})")
            out += [read_sample_file(p, channels, sample_rate_hz) for p in found]
        else:
            out.append(read_sample_file(path, channels, sample_rate_hz))
    return out
