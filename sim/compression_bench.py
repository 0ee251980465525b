"""Compression ratio benchmark: the gateware coder against general-purpose and audio codecs.

``spikeforge bench compress`` runs :func:`run_benchmark`. For every recording it reports the
ratio raw 16-bit bytes / compressed bytes of

* the gateware coder, through its golden model
  (:func:`spikeforge.sim.models.compressor.encode`, bit exact with the RTL), decoded again
  with the host decoder (:func:`spikeforge.host.compression.decode`), which must give the
  input back exactly; once without a codebook and once with a codebook learned from the
  recording itself (:func:`spikeforge.firmware.compression.learn_codebook`);
* zlib level 9, lzma (preset 9 | EXTREME, xz container), zstd level 19 (``zstandard``) on
  the raw little-endian int16 bytes, interleaved sweep-major as the device sends them;
* FLAC through libsndfile (``soundfile``, ``compression_level=1.0``, which libsndfile maps
  to FLAC's strongest preset, level 8); FLAC frames hold at most 8 channels, so wider
  recordings are coded in groups of 8 channels;

and the host encode/decode speed of each (mega-samples per second on this machine, single
thread, in the same run). Every codec's output is decoded and compared with the input, so
a ratio is only reported for a codec that reproduced the recording exactly.

Recordings: files and folders the user names (WAV or flat int16, see
:mod:`spikeforge.host.sample_files`), SpikeInterface ground-truth recordings at realistic
noise (:func:`spikeforge.sim.accuracy.ground_truth_recording`), and the test-signal
source's output (:func:`spikeforge.sim.models.source.source_signal`).
"""

import io
import lzma
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.firmware.config import SystemConfig, TestSourceConfig
from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.host.sample_files import SampleFile, read_sample_files

from .accuracy import BenchmarkUnavailable
from .models.source import source_signal

__all__ = ["BenchmarkUnavailable", "Recording", "CodecResult", "RecordingResult",
           "Codec", "reference_codecs", "coder_codecs", "file_recordings", "stack_recordings",
           "synthetic_recordings", "measure", "run_benchmark", "summarise", "format_report",
           "to_json", "FLAC_MAX_CHANNELS", "CODER", "CODER_CODEBOOK", "worst_case_ratio",
           "recording_ratio", "RoundTripError", "warm_up", "CODER_V2", "coder_v2_codec",
           "LEARN_SECONDS", "Calibration", "calibration_from", "openephys_recordings"]

#: FLAC's channel limit (per stream); wider recordings are coded in groups.
FLAC_MAX_CHANNELS = 8
#: Sample rate written into FLAC headers when a recording does not know its own (the rate
#: only labels the stream; it does not change the coding).
_FLAC_FALLBACK_RATE_HZ = 30_000
#: Names of the gateware coder's two columns.
CODER = "coder"
CODER_CODEBOOK = "coder+codebook"


@dataclass(frozen=True)
class Recording:
    """One recording to compress: int16 samples of shape (sweeps, channels)."""

    name: str
    kind: str                    #: the recording class the summary groups by
    samples: np.ndarray
    sample_rate_hz: int | None = None

    @property
    def raw_bytes(self) -> int:
        return int(self.samples.size) * 2


@dataclass(frozen=True)
class Codec:
    """A lossless codec under test: ``encode(samples) -> state``, ``size(state) -> bytes``,
    ``decode(state, samples) -> samples`` (the input is passed for the shape only)."""

    name: str
    encode: Callable[[np.ndarray, "Recording"], Any]
    size: Callable[[Any], int]
    decode: Callable[[Any, np.ndarray], np.ndarray]
    note: str = ""
    extra: Callable[[Any], dict[str, Any]] | None = None


@dataclass(frozen=True)
class CodecResult:
    codec: str
    compressed_bytes: int
    encode_s: float
    decode_s: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordingResult:
    name: str
    kind: str
    channels: int
    sweeps: int
    sample_rate_hz: int | None
    raw_bytes: int
    codecs: dict[str, CodecResult]

    def ratio(self, codec: str) -> float:
        return self.raw_bytes / self.codecs[codec].compressed_bytes


class RoundTripError(SpikeforgeError):
    """A codec did not give the recording back exactly (a bug, not a benchmark result)."""


# -- reference codecs -------------------------------------------------------------------------

def _raw(samples: np.ndarray) -> bytes:
    return np.ascontiguousarray(samples, dtype="<i2").tobytes()


def _from_raw(data: bytes, like: np.ndarray) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.int16).reshape(like.shape)


def _bytes_codec(name: str, compress: Callable[[bytes], bytes],
                 decompress: Callable[[bytes], bytes], note: str) -> Codec:
    return Codec(name, lambda s, _r: compress(_raw(s)), len,
                 lambda data, like: _from_raw(decompress(data), like), note)


def _flac_encode(samples: np.ndarray, recording: Recording) -> list[bytes]:
    import soundfile

    rate = recording.sample_rate_hz or _FLAC_FALLBACK_RATE_HZ
    out = []
    for first in range(0, samples.shape[1], FLAC_MAX_CHANNELS):
        buffer = io.BytesIO()
        soundfile.write(buffer, samples[:, first:first + FLAC_MAX_CHANNELS], rate,
                        format="FLAC", subtype="PCM_16", compression_level=1.0)
        out.append(buffer.getvalue())
    return out


def _flac_decode(streams: list[bytes], like: np.ndarray) -> np.ndarray:
    import soundfile

    parts = [soundfile.read(io.BytesIO(s), dtype="int16", always_2d=True)[0] for s in streams]
    return np.concatenate(parts, axis=1).reshape(like.shape)


def reference_codecs() -> list[Codec]:
    """zlib -9, lzma -9e, zstd -19, FLAC -8; raises if zstandard or soundfile is missing."""
    try:
        import soundfile  # noqa: F401
        import zstandard
    except ImportError as exc:
        raise BenchmarkUnavailable(
            f"the compression benchmark needs zstandard and soundfile ({exc}); install them "
            "with pip install 'spikeforge[bench]'") from None
    zstd_c = zstandard.ZstdCompressor(level=19)
    zstd_d = zstandard.ZstdDecompressor()
    return [
        _bytes_codec("zlib-9", lambda b: zlib.compress(b, 9), zlib.decompress, "zlib level 9"),
        _bytes_codec("lzma-9e", lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME),
                     lzma.decompress, "xz, preset 9 | EXTREME"),
        _bytes_codec("zstd-19", zstd_c.compress, zstd_d.decompress, "zstandard level 19"),
        Codec("flac-8", _flac_encode, lambda streams: sum(map(len, streams)), _flac_decode,
              "libsndfile FLAC, compression_level=1.0 (FLAC level 8), <= 8 channels/stream"),
    ]


# -- the gateware coder -----------------------------------------------------------------------

def coder_codecs(codec_config: Any = None,
                 calibration: "Calibration | None" = None,
                 v2_config: Any = None) -> list[Codec]:
    """The gateware coder (golden model + host decoder), without and with a codebook
    learned from each recording (when :func:`learn_codebook` finds no value grid, the
    second column codes without one, and says so), and the v2 coder (``v2_config``,
    default ``CodecV2Config(enabled=True)``)."""
    from spikeforge.firmware.compression import CodecConfig, learn_codebook
    from spikeforge.host.compression import decode
    from spikeforge.sim.models.compressor import encode

    base = codec_config if codec_config is not None else CodecConfig(enabled=True)
    plain = replace(base, codebook=False)

    def make(use_codebook: bool) -> Codec:
        def enc(samples: np.ndarray, _r: Recording) -> tuple[list[bytes], Any, Any]:
            book = learn_codebook(samples) if use_codebook else None
            config = plain if book is None else replace(base, codebook=True)
            return encode(samples, config, codebook=book), config, book

        def dec(state: tuple[list[bytes], Any, Any], like: np.ndarray) -> np.ndarray:
            blocks, config, book = state
            return np.asarray(decode(blocks, like.shape[1], config, codebook=book,
                                     sweeps=like.shape[0]))

        def extra(state: tuple[list[bytes], Any, Any]) -> dict[str, Any]:
            book = state[2]
            return {"blocks": len(state[0]),
                    "codebook_values": 0 if book is None else len(book.values)}

        return Codec(CODER_CODEBOOK if use_codebook else CODER, enc,
                     lambda state: sum(map(len, state[0])), dec,
                     f"block {base.block_sweeps} sweeps, predictor {base.predictor}"
                     + (", codebook learned from each recording itself (loaded into the "
                        "device once, not counted in the ratio)" if use_codebook else ""),
                     extra)

    return [make(False), make(True), coder_v2_codec(v2_config, calibration=calibration)]


#: The v2 coder's column.
CODER_V2 = "coder-v2"
#: Seconds at the start of each recording sent raw while the value grid is learned from them
#: (the live stream's first samples; their bytes count as raw in the ratio). A full-scale
#: grid is recognised from a few dozen samples; 5 ms is 98 sweeps at 19.5 kS/s.
LEARN_SECONDS = 0.005


@dataclass(frozen=True)
class Calibration:
    """A device's code-weight table (:func:`~spikeforge.firmware.compression_v2.
    learn_code_weights`), learned from other recordings of the same ADC, never from the one
    being coded; it applies to recordings whose learned grid is ``grid``. ``weights`` None:
    code without them (``--no-code-weights``: as the gateware, which has none)."""

    grid: Any
    weights: np.ndarray | None
    source: str
    #: With ``--restart-prior``: the context tables every (re)start of coder-v2 begins
    #: from (:func:`restart_prior_from`; a build with ``codec_v2.restart_prior`` and the
    #: prior loaded).
    prior: np.ndarray | None = None


def calibration_from(recordings: list[Recording], source: str) -> Calibration | None:
    """The code weights of the recordings' ADC (their common value grid, learned from each
    one's first samples as the device would), or None when they show no common grid."""
    from spikeforge.firmware.compression_v2 import learn_code_weights, learn_grid

    grids = [learn_grid(r.samples[:_learn_sweeps(r, LEARN_SECONDS)]) for r in recordings]
    known = [g for g in grids if g is not None]
    if not known:
        return None
    grid = max(set(known), key=known.count)
    weights = learn_code_weights([r.samples for r in recordings], grid)
    return Calibration(grid, weights, source)


def restart_prior_from(recordings: list[Recording], config: Any) -> np.ndarray | None:
    """Context tables to restart coder-v2 from (:func:`~spikeforge.firmware.compression_v2.
    restart_tables`): the mean of the tables at the end of coding each of ``recordings``
    (their grids learned as the device would, no code weights, never restarted), or None
    when there are none. A mean of rising rows that share their ends rises between the same
    ends, so the result is a valid prior."""
    from spikeforge.firmware.compression_v2 import restart_tables
    from spikeforge.sim.models.compressor_v2 import encode_v2_stream

    ends = []
    for r in recordings:
        learn, grid = _device_grid(r, r.samples, LEARN_SECONDS, config.grid_bits)
        cfg = replace(config, sync_blocks=0, grid=grid is not None, code_weights=False,
                      restart_prior=False)
        tables, _ = restart_tables(cfg)
        encode_v2_stream(r.samples[learn:], cfg, grid, end_tables=tables)
        ends.append(tables)
    return np.rint(np.mean(ends, axis=0)).astype(np.int64) if ends else None


def _device_grid(recording: Recording, samples: np.ndarray, learn_seconds: float,
                 grid_bits: int) -> tuple[int, Any]:
    """What the device learns before coding: the sweeps of ``learn_seconds`` and the value
    grid on them (None when they show none, or one wider than the build's ``grid_bits``)."""
    from spikeforge.firmware.compression_v2 import learn_grid

    learn = _learn_sweeps(recording, learn_seconds)
    grid = learn_grid(samples[:learn]) if learn else None
    return learn, (None if grid is not None and grid.bits > grid_bits else grid)


def _learn_sweeps(recording: Recording, learn_seconds: float) -> int:
    rate = recording.sample_rate_hz or _FLAC_FALLBACK_RATE_HZ
    return min(recording.samples.shape[0], int(round(learn_seconds * rate)))


def coder_v2_codec(config: Any = None, learn_seconds: float = LEARN_SECONDS,
                   calibration: Calibration | None = None) -> Codec:
    """The v2 coder (golden model + host decoder): the value grid is learned from the first
    ``learn_seconds`` of the recording (:func:`~spikeforge.firmware.compression_v2.
    learn_grid`), which are counted as raw 16-bit samples; the rest is coded over it (or
    without a grid when those samples show none), with the ``calibration``'s code weights
    when its grid is the one learned."""
    from spikeforge.firmware.compression_v2 import CodecV2Config
    from spikeforge.host.compression import decode_v2
    from spikeforge.sim.models.compressor_v2 import encode_v2

    base = config if config is not None else CodecV2Config(enabled=True)

    def enc(samples: np.ndarray, recording: Recording) -> dict[str, Any]:
        learn, grid = _device_grid(recording, samples, learn_seconds, base.grid_bits)
        weights = (calibration.weights if calibration is not None and grid is not None
                   and calibration.grid == grid else None)
        prior = calibration.prior if calibration is not None else None
        cfg = replace(base, grid=grid is not None, code_weights=weights is not None)
        return {"learn": learn, "raw_bytes": 2 * samples[:learn].size, "grid": grid,
                "weights": weights, "config": cfg, "prior": prior,
                "blocks": encode_v2(samples[learn:], cfg, grid, weights, prior=prior)}

    def size(state: dict[str, Any]) -> int:
        return state["raw_bytes"] + sum(map(len, state["blocks"]))

    def dec(state: dict[str, Any], like: np.ndarray) -> np.ndarray:
        learn = state["learn"]
        rest = decode_v2(state["blocks"], like.shape[1], state["config"], state["grid"],
                         state["weights"], sweeps=like.shape[0] - learn, prior=state["prior"])
        return np.concatenate([like[:learn], rest])  # the learning samples went raw

    def extra(state: dict[str, Any]) -> dict[str, Any]:
        grid = state["grid"]
        return {"learn_sweeps": state["learn"],
                "grid": None if grid is None else grid.to_dict(),
                "code_weights": state["weights"] is not None}

    weights_note = ("" if calibration is None else
                    (f", code weights from {calibration.source}"
                     if calibration.weights is not None else ", no code weights")
                    + ("" if calibration.prior is None else
                       f", (re)starts from tables learned from {calibration.source}"))
    return Codec(CODER_V2, enc, size, dec,
                 f"v2 (LMS {base.taps} taps{' + level tap' if base.level_tap else ''} + range "
                 f"coder, {base.contexts} shared context tables), block {base.block_sweeps} "
                 "sweeps, "
                 + (f"restarted every {base.sync_blocks} blocks, " if base.sync_blocks else "")
                 + f"value grid learned from the first {learn_seconds:g} s (sent raw, counted)"
                 + weights_note, extra)


def worst_case_ratio(channels: int = 1, codec_config: Any = None) -> float:
    """Raw bits / coded bits of the coder's worst case (incompressible input), below 1."""
    from spikeforge.firmware.compression import CodecConfig, worst_case_bits

    config = codec_config if codec_config is not None else CodecConfig(enabled=True)
    raw_bits = 16 * channels * config.block_sweeps
    return raw_bits / worst_case_bits(channels, config.block_sweeps, config)


def recording_ratio(paths: Iterable[str | Path], channels: int | None = None,
                    codec_config: Any = None) -> tuple[float, str]:
    """The coder's ratio over the user's recordings (sum of raw / sum of coded bytes), the
    better of without and with a learned codebook, and a sentence saying how it was got."""
    paths = list(paths)
    recordings = file_recordings(paths, channels)
    rows = run_benchmark(recordings, coder_codecs(codec_config), progress=lambda _: None)
    _, overall = summarise(rows)
    best = max((CODER, CODER_CODEBOOK), key=overall.ratio)
    how = "with a codebook learned from it" if best == CODER_CODEBOOK else "no codebook"
    return overall.ratio(best), (f"coder model over {len(recordings)} recording(s) in "
                                 f"{', '.join(map(str, paths))}, {how}")


# -- recordings -------------------------------------------------------------------------------

def file_recordings(paths: Iterable[str | Path], channels: int | None = None,
                    sample_rate_hz: int | None = None) -> list[Recording]:
    """The recordings in the files and folders named; the class is the folder name. A
    folder holding ``structure.oebin`` files (an Open Ephys binary recording, as
    ``spikeforge record`` writes it), or such a file itself, gives its continuous streams
    (:func:`openephys_recordings`)."""
    out = []
    for path in map(Path, paths):
        kind = f"files: {path.name}" if path.is_dir() else f"file: {path.name}"
        if path.name == "structure.oebin" or (path.is_dir() and _oebins(path)):
            out += openephys_recordings(path)
            continue
        for f in read_sample_files([path], channels, sample_rate_hz):
            out.append(_from_file(f, kind))
    return out


def _oebins(folder: Path) -> list[Path]:
    return sorted(folder.rglob("structure.oebin"))


def openephys_recordings(path: str | Path) -> list[Recording]:
    """Every continuous stream of the Open Ephys binary recordings in ``path`` (a
    ``structure.oebin`` or a folder searched for them): ``continuous/<folder_name>/
    continuous.dat``, int16 interleaved, ``num_channels`` and ``sample_rate`` from the
    ``structure.oebin``. Raises :class:`RecordingFileError` (exit code 2) naming what is
    wrong."""
    import json

    from spikeforge.host.sample_files import RecordingFileError

    path = Path(path)
    oebins = [path] if path.is_file() else _oebins(path)
    if not oebins:
        raise RecordingFileError(f"{path}: no structure.oebin (not an Open Ephys binary "
                                 "recording)")
    out = []
    for oebin in oebins:
        try:
            streams = json.loads(oebin.read_text())["continuous"]
            entries = [(str(s["folder_name"]).strip("/"), int(s["num_channels"]),
                        float(s["sample_rate"])) for s in streams]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RecordingFileError(
                f"{oebin}: not a readable Open Ephys structure.oebin ({exc!r}); it needs a "
                "'continuous' list with folder_name, num_channels and sample_rate") from None
        for folder, channels, rate in entries:
            dat = oebin.parent / "continuous" / folder / "continuous.dat"
            if not dat.is_file():
                raise RecordingFileError(f"{oebin} lists stream {folder!r} but {dat} is "
                                         "missing")
            data = np.fromfile(dat, dtype="<i2")
            if channels < 1 or data.size % channels:
                raise RecordingFileError(
                    f"{dat}: {data.size} int16 values are not whole sweeps of {channels} "
                    "channels (num_channels in structure.oebin); the file is cut or damaged")
            name = str(dat.parent.relative_to(path if path.is_dir() else oebin.parent))
            out.append(Recording(name, f"open ephys: {path.name}",
                                 data.reshape(-1, channels).astype(np.int16),
                                 int(round(rate))))
    return out


def _from_file(f: SampleFile, kind: str) -> Recording:
    return Recording(f.name, kind, f.samples, f.sample_rate_hz)


def stack_recordings(recordings: list[Recording]) -> Recording | None:
    """The single-channel recordings of one class side by side as one multi-channel
    recording (cut to the shortest), as a multi-electrode device would send them; None if
    there are fewer than two or their sample rates differ."""
    mono = [r for r in recordings if r.samples.shape[1] == 1]
    if len(mono) < 2 or len({r.sample_rate_hz for r in mono}) != 1:
        return None
    sweeps = min(r.samples.shape[0] for r in mono)
    samples = np.concatenate([r.samples[:sweeps] for r in mono], axis=1)
    return Recording(f"{len(mono)} files as channels", f"{mono[0].kind} (stacked)", samples,
                     mono[0].sample_rate_hz)


def synthetic_recordings(*, seconds: float = 2.0, channels: int = 4,
                         seeds: tuple[int, ...] = (1, 2),
                         noise_uv: tuple[float, ...] = (5.0, 10.0), rate_hz: int = 30_000,
                         spikeinterface: bool = True) -> list[Recording]:
    """SpikeInterface ground-truth recordings (every seed x noise level) and the test
    source at two noise levels."""
    out = []
    if spikeinterface:
        from .accuracy import UV_PER_LSB, ground_truth_recording

        for noise in noise_uv:
            for seed in seeds:
                samples, _ = ground_truth_recording(seed=seed, noise_uv=noise, rate_hz=rate_hz,
                                                    seconds=seconds, channels=channels)
                out.append(Recording(f"SI gt seed={seed} noise={noise:g}uV",
                                     f"SpikeInterface gt ({UV_PER_LSB} uV/bit)", samples,
                                     rate_hz))
    for noise_shift in (0, 2):
        # A clock just fast enough for the channel count (the signal does not depend on it).
        clock_hz = rate_hz * max(10, channels + 4)
        config = SystemConfig(channels=channels, sample_rate_hz=rate_hz, clock_hz=clock_hz,
                              baud=clock_hz, sweeps_per_frame=1,
                              link_buffer_samples=1 << (2 * channels - 1).bit_length(),
                              test_source=TestSourceConfig(noise_shift=noise_shift))
        signal = source_signal(config, int(seconds * rate_hz))
        out.append(Recording(f"test source noise_shift={noise_shift}", "test source",
                             signal.samples, rate_hz))
    return out


# -- measuring --------------------------------------------------------------------------------

def measure(recording: Recording, codecs: list[Codec]) -> RecordingResult:
    """Compress, decompress and time ``recording`` with every codec; the round trip must be
    exact."""
    samples = np.ascontiguousarray(recording.samples, dtype=np.int16)
    results = {}
    for codec in codecs:
        started = time.perf_counter()
        state = codec.encode(samples, recording)
        encoded = time.perf_counter()
        back = codec.decode(state, samples)
        decoded = time.perf_counter()
        if back.shape != samples.shape or not np.array_equal(back, samples):
            bad = (np.argwhere(back != samples)[0] if back.shape == samples.shape else None)
            raise RoundTripError(
                f"{codec.name} did not reproduce {recording.name} exactly "
                f"(shape {back.shape} vs {samples.shape}"
                + (f", first difference at sweep {bad[0]}, channel {bad[1]}"
                   if bad is not None else "") + "); this is a bug in the codec or its "
                "decoder, please report it with the recording")
        results[codec.name] = CodecResult(codec.name, codec.size(state), encoded - started,
                                          decoded - encoded,
                                          codec.extra(state) if codec.extra else {})
    return RecordingResult(recording.name, recording.kind, samples.shape[1], samples.shape[0],
                           recording.sample_rate_hz, recording.raw_bytes, results)


def warm_up(codecs: list[Codec], recording: Recording) -> None:
    """Run every codec once on a short piece, so that one-time costs (numba compiling the
    coder's kernels, library set-up) do not count as coding speed."""
    piece = Recording("warm-up", "warm-up", recording.samples[:256], recording.sample_rate_hz)
    measure(piece, codecs)


def run_benchmark(recordings: list[Recording], codecs: list[Codec],
                  progress: Callable[[str], None] = print) -> list[RecordingResult]:
    """Measure every recording with every codec (after a warm-up)."""
    if recordings:
        warm_up(codecs, recordings[0])
    rows = []
    for recording in recordings:
        rows.append(measure(recording, codecs))
        best = max(rows[-1].codecs, key=rows[-1].ratio)
        progress(f"  {recording.kind} / {recording.name}: best {best} "
                 f"{rows[-1].ratio(best):.3f}x")
    return rows


# -- reporting --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    """Ratios over a group of recordings: sum of raw bytes / sum of compressed bytes."""

    kind: str
    recordings: int
    raw_bytes: int
    compressed_bytes: dict[str, int]
    samples: int
    encode_s: dict[str, float]
    decode_s: dict[str, float]

    def ratio(self, codec: str) -> float:
        return self.raw_bytes / self.compressed_bytes[codec]

    def encode_msps(self, codec: str) -> float:
        return self.samples / self.encode_s[codec] / 1e6 if self.encode_s[codec] else 0.0

    def decode_msps(self, codec: str) -> float:
        return self.samples / self.decode_s[codec] / 1e6 if self.decode_s[codec] else 0.0


def _summary(kind: str, rows: list[RecordingResult]) -> Summary:
    codecs = list(rows[0].codecs)
    return Summary(
        kind, len(rows), sum(r.raw_bytes for r in rows),
        {c: sum(r.codecs[c].compressed_bytes for r in rows) for c in codecs},
        sum(r.raw_bytes // 2 for r in rows),
        {c: sum(r.codecs[c].encode_s for r in rows) for c in codecs},
        {c: sum(r.codecs[c].decode_s for r in rows) for c in codecs})


def summarise(rows: list[RecordingResult]) -> tuple[list[Summary], Summary]:
    """Per recording class (in order of appearance), and overall."""
    kinds = list(dict.fromkeys(r.kind for r in rows))
    per_kind = [_summary(k, [r for r in rows if r.kind == k]) for k in kinds]
    # A stacked recording is its class's files side by side: counting it too would count
    # that data twice.
    return per_kind, _summary("overall", [r for r in rows if not r.kind.endswith("(stacked)")])


def _coder_columns(codecs: list[str]) -> list[str]:
    return [c for c in (CODER, CODER_CODEBOOK, CODER_V2) if c in codecs]


def verdicts(summary: Summary, n1_target: float | None = None) -> str:
    """Whether the best gateware column beats FLAC and zstd -19 (and reaches a target)."""
    codecs = list(summary.compressed_bytes)
    coders = _coder_columns(codecs)
    if not coders:
        return ""
    coder = max(summary.ratio(c) for c in coders)
    parts = []
    for rival in ("flac-8", "zstd-19"):
        if rival in codecs:
            parts.append(f"{'beats' if coder > summary.ratio(rival) else 'LOSES TO'} {rival}")
    if n1_target is not None:
        parts.append(f"{'reaches' if coder >= n1_target else 'MISSES'} {n1_target:g}x")
    return ", ".join(parts)


def format_report(rows: list[RecordingResult], *, n1_kinds: Iterable[str] = (),
                  n1_target: float = 3.4) -> str:
    """Markdown: per-recording ratios, per-class and overall ratios with verdicts, speeds."""
    codecs = list(rows[0].codecs)
    per_kind, overall = summarise(rows)
    head = "| " + " | ".join(codecs) + " |"
    rule = " --- |" * len(codecs)
    books = CODER_CODEBOOK in codecs
    lines = ["Ratio = raw 16-bit bytes / compressed bytes (higher is better; best in bold).",
             "", f"| class | recording | ch | samples {head}" + (" codebook |" if books else ""),
             f"| --- | --- | --- | --- |{rule}" + (" --- |" if books else "")]
    for r in rows:
        best = max(r.codecs, key=r.ratio)
        cells = " | ".join(f"**{r.ratio(c):.3f}**" if c == best else f"{r.ratio(c):.3f}"
                           for c in codecs)
        if books:
            values = r.codecs[CODER_CODEBOOK].extra.get("codebook_values", 0)
            cells += f" | {values} values" if values else " | none found"
        lines.append(f"| {r.kind} | {r.name} | {r.channels} | {r.raw_bytes // 2:,} | {cells} |")
    n1 = set(n1_kinds)
    lines += ["", "Per class and overall (sum of raw bytes / sum of compressed bytes):", "",
              f"| class | recordings {head} gateware coder |",
              f"| --- | --- |{rule} --- |"]
    for s in [*per_kind, overall]:
        cells = " | ".join(f"{s.ratio(c):.3f}" for c in codecs)
        target = n1_target if s.kind in n1 else None
        lines.append(f"| {s.kind} | {s.recordings} | {cells} | {verdicts(s, target)} |")
    lines += ["", "Host speed, all recordings, one thread (mega-samples per second):", "",
              "| codec | encode MS/s | decode MS/s |", "| --- | --- | --- |"]
    for c in codecs:
        lines.append(f"| {c} | {overall.encode_msps(c):.2f} | {overall.decode_msps(c):.2f} |")
    return "\n".join(lines)


def to_json(rows: list[RecordingResult], settings: dict[str, Any]) -> dict[str, Any]:
    per_kind, overall = summarise(rows)

    def summary(s: Summary) -> dict[str, Any]:
        return {"class": s.kind, "recordings": s.recordings, "raw_bytes": s.raw_bytes,
                "compressed_bytes": s.compressed_bytes,
                "ratio": {c: s.ratio(c) for c in s.compressed_bytes},
                "encode_msps": {c: s.encode_msps(c) for c in s.compressed_bytes},
                "decode_msps": {c: s.decode_msps(c) for c in s.compressed_bytes}}

    return {
        "settings": settings,
        "recordings": [
            {"name": r.name, "class": r.kind, "channels": r.channels, "sweeps": r.sweeps,
             "sample_rate_hz": r.sample_rate_hz, "raw_bytes": r.raw_bytes,
             "compressed_bytes": {c: v.compressed_bytes for c, v in r.codecs.items()},
             "ratio": {c: r.ratio(c) for c in r.codecs},
             "encode_s": {c: v.encode_s for c, v in r.codecs.items()},
             "decode_s": {c: v.decode_s for c, v in r.codecs.items()},
             "extra": {c: v.extra for c, v in r.codecs.items() if v.extra}}
            for r in rows],
        "classes": [summary(s) for s in per_kind],
        "overall": summary(overall),
    }
