"""Writes recordings in the Open Ephys binary format, readable by neo and SpikeInterface.

Layout (Open Ephys GUI >= 0.6)::

    OUT/Record Node 101/settings.xml
    OUT/Record Node 101/experiment1/recording1/structure.oebin
        continuous/spikeforge-100.acquisition/continuous.dat      int16, interleaved
        continuous/spikeforge-100.acquisition/sample_numbers.npy  int64, one per sweep
        continuous/spikeforge-100.acquisition/timestamps.npy      float64 seconds
        events/spikeforge-100.acquisition/TTL/{states,sample_numbers,timestamps,full_words}.npy
        spikeforge-detections/{sample_numbers,channels,peaks,snippet_pre,waveforms}.npy
    OUT/Record Node 101/experiment1/recording1/spikeforge.json    device, link and loss record
        continuous/spikeforge-100.lfp/{continuous.dat,sample_numbers.npy,timestamps.npy}
                                                          mode events+lfp: the LFP stream

Only the channels enabled by the device's channel mask are written: ``structure.oebin``
lists them (``num_channels`` and one entry each, named ``CH<n+1>`` after the device's
channel number ``n``, so neo and SpikeInterface see the real channel ids), and
``spikeforge.json`` records the mask as ``channels_enabled``.

Samples lost on the way (frames the device dropped, frames corrupted on the link) are
written as zeros so that sample ``k`` of the file is always sweep ``k`` of the device; each
lost stretch is also an event on TTL line 1 (state +1 at its first sample, -1 after its
last) and a row of ``losses`` in ``spikeforge.json``. Nothing is lost silently.

Spikes the device's detector found (EVENTS frames, when the detection path is built) go to
``spikeforge-detections/``, a folder of this recording that Open Ephys readers ignore: per
event the sample number of the peak (same numbering as ``sample_numbers.npy``), the
channel, the peak's conditioned value, the snippet's samples before the peak, and the
snippet (conditioned int16, ``max_snippet_pre + 1 + max_snippet_post`` wide, the peak at
column ``max_snippet_pre``, zero where the device sent shorter snippets).

LFP (bandwidth mode events+lfp): the decimated stream is a second continuous stream,
``spikeforge-100.lfp``, created when the first LFP block arrives and listed second in
``structure.oebin`` with its own ``sample_rate`` (``SystemConfig.lfp_rate_hz``). Its
``sample_numbers.npy`` count decimated sweeps (LFP sample ``d`` is the decimator's output
after source sweep ``(d + 1) * factor - 1``, the CIC's delay not removed) and its
``timestamps.npy`` are ``d / lfp_rate_hz``. Lost LFP frames are zero-filled too and listed
in ``spikeforge.json`` as ``lfp_losses``.

Data is appended as it arrives; :meth:`OpenEphysWriter.flush` makes everything written so
far readable (the ``.npy`` headers are rewritten with the current length), so after a crash
everything up to the last flush is intact.

The writer is a recording sink (:class:`spikeforge.host.sinks.Sink`): the recorder calls
``write_continuous``, ``write_loss``, ``write_events``, ``flush`` and ``close``.
"""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.firmware.config import SystemConfig

from .frames import EventBlock

__all__ = ["OpenEphysWriter", "MICROVOLTS_PER_BIT", "LOSS_TTL_LINE"]

#: Input-referred scale of a sample, as for the RHD2000 family (0.195 µV per LSB).
MICROVOLTS_PER_BIT = 0.195
#: TTL line that marks samples lost on the way (zero-filled).
LOSS_TTL_LINE = 1
_NODE = "Record Node 101"
_STREAM = "spikeforge-100.acquisition"
_LFP_STREAM = "spikeforge-100.lfp"


def _write_all(file: Any, data: bytes) -> None:
    """All of ``data`` into an unbuffered file (a raw write may take only part)."""
    view = memoryview(data)
    while view:
        view = view[file.write(view):]


class _NpyAppender:
    """A .npy file that grows along its first axis (rows of ``row_shape``); the header is
    rewritten with the length on flush."""

    _HEADER_BYTES = 128

    def __init__(self, path: Path, dtype: str, row_shape: tuple[int, ...] = ()):
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = row_shape
        self.length = 0
        # Unbuffered: every header and every appended row reaches the OS at once, so a cut
        # (kill -9) never leaves a file without its header or with a partial row.
        # The file appears with its header (written aside, renamed into place).
        aside = path.with_name(path.name + ".tmp")
        with open(aside, "wb") as file:
            file.write(self._header())
        aside.replace(path)
        self._file = open(path, "r+b", buffering=0)  # noqa: SIM115 - closed in close()
        self._file.seek(0, os.SEEK_END)

    def _header(self) -> bytes:
        header = {"descr": self.dtype.str, "fortran_order": False,
                  "shape": (self.length, *self.row_shape)}
        text = repr(header).encode("latin1")
        pad = self._HEADER_BYTES - 10 - len(text) - 1
        size = (self._HEADER_BYTES - 10).to_bytes(2, "little")
        return b"\x93NUMPY\x01\x00" + size + text + b" " * pad + b"\n"

    def _write_header(self) -> None:
        self._file.seek(0)
        _write_all(self._file, self._header())
        self._file.seek(0, os.SEEK_END)

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype)
        _write_all(self._file, values.tobytes())
        self.length += len(values)

    def flush(self) -> None:
        self._write_header()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.flush()
        self._file.close()


class OpenEphysWriter:
    """Appends sweeps of one device to an Open Ephys binary recording.

    Parameters
    ----------
    out:
        Folder to create (must not exist or be empty).
    config:
        The device's configuration (channels, sample rate), as the device reported it.
    metadata:
        Extra JSON-serialisable facts kept in ``spikeforge.json`` (device identity, port).
    channels:
        The device channels recorded, ascending: the channel mask in force
        (``config.enabled_channels`` if not given). Blocks must carry exactly these.
    """

    def __init__(self, out: Path, config: SystemConfig, metadata: dict[str, Any] | None = None,
                 channels: "tuple[int, ...] | list[int] | None" = None):
        self.config = config
        self.channels = (config.enabled_channels if channels is None
                         else tuple(sorted(set(channels))))
        self.root = Path(out)
        if self.root.exists() and any(self.root.iterdir()):
            raise FileExistsError(
                f"{self.root} already holds files; choose a new folder for the recording")
        self.recording = self.root / _NODE / "experiment1" / "recording1"
        events = self.recording / "events" / _STREAM / "TTL"
        events.mkdir(parents=True)
        (self.root / _NODE / "settings.xml").write_text(_settings_xml(config))

        self._ttl = {name: _NpyAppender(events / f"{name}.npy", dtype) for name, dtype in
                     (("states", "<i2"), ("sample_numbers", "<i8"), ("timestamps", "<f8"),
                      ("full_words", "<u8"))}
        self._main = _ContinuousStream(self.recording / "continuous" / _STREAM,
                                       config.sample_rate_hz, len(self.channels), "",
                                       on_loss=self._mark_loss,
                                       on_created=self._write_structure)
        self.metadata: dict[str, Any] = {
            "device": config.to_dict(), "channels_enabled": list(self.channels),
            "losses": self._main.losses, "ended": "still recording", **(metadata or {})}
        detector = config.detector
        self._peak_column = detector.max_snippet_pre
        self._snippet_width = detector.max_snippet_pre + 1 + detector.max_snippet_post
        self._detections: dict[str, _NpyAppender] = {}
        self.spikes_written = 0
        self.lfp: _ContinuousStream | None = None   # mode events+lfp: created by write_lfp
        self._write_structure()
        self._write_metadata()     # readable from the first instant: a cut finds it

    # -- LFP stream (mode events+lfp) --
    def write_lfp(self, first_sample: int, samples: np.ndarray) -> None:
        """Append decimated sweeps (LFP frames) to the ``spikeforge-100.lfp`` stream,
        ``first_sample`` counting decimated sweeps; a gap is zero-filled and listed in
        ``lfp_losses``. The stream is created (and listed in ``structure.oebin``) on first
        use."""
        if self.lfp is None:
            if self.config.lfp is None:
                raise ValueError("the device's configuration has no LFP decimator")
            self.lfp = _ContinuousStream(self.recording / "continuous" / _LFP_STREAM,
                                         self.config.lfp_rate_hz, len(self.channels), "LFP ",
                                         on_created=self._write_structure)
            self.metadata["lfp_losses"] = self.lfp.losses
        self.lfp.write(first_sample, samples)

    def _write_structure(self) -> None:
        """``structure.oebin`` listing the continuous streams that hold samples (a stream
        is listed once its first sweeps are on disk: readers cannot open an empty one),
        replaced atomically."""
        structure = _structure(self.config, self.channels)
        if not self._main.created:
            structure["continuous"] = []
        if self.lfp is not None and self.lfp.created:
            structure["continuous"].append(_lfp_structure(self.config, self.channels))
        _replace_text(self.recording / "structure.oebin", json.dumps(structure, indent=2))

    def write_events(self, block: EventBlock) -> None:
        """Append the detector events of one EVENTS frame (``spikeforge-detections/``)."""
        if not block.events:
            return
        if not self._detections:
            folder = self.recording / "spikeforge-detections"
            folder.mkdir()
            self._detections = {
                name: _NpyAppender(folder / f"{name}.npy", dtype, shape) for name, dtype, shape
                in (("sample_numbers", "<i8", ()), ("channels", "<i2", ()),
                    ("peaks", "<i2", ()), ("snippet_pre", "<i2", ()),
                    ("waveforms", "<i2", (self._snippet_width,)))}
        waveforms = np.zeros((len(block.events), self._snippet_width), dtype="<i2")
        for row, event in enumerate(block.events):
            start = self._peak_column - event.pre
            waveforms[row, start:start + len(event.snippet)] = event.snippet
        columns = {"sample_numbers": [e.sample for e in block.events],
                   "channels": [e.channel for e in block.events],
                   "peaks": [e.peak for e in block.events],
                   "snippet_pre": [e.pre for e in block.events]}
        for name, values in columns.items():
            self._detections[name].append(np.asarray(values))
        self._detections["waveforms"].append(waveforms)
        self.spikes_written += len(block.events)

    # -- the acquisition stream --
    @property
    def first_sample(self) -> int | None:
        """Device sweep of the recording's first sample (None before the first block)."""
        return self._main.first_sample

    @property
    def next_sample(self) -> int | None:
        """Device sweep the next block should start at."""
        return self._main.next_sample

    @property
    def samples_lost(self) -> int:
        return self._main.samples_lost

    @property
    def sweeps_written(self) -> int:
        return self._main.sweeps_written

    @property
    def bytes_written(self) -> int:
        return self._main.bytes_written

    def write(self, first_sample: int, samples: np.ndarray) -> None:
        """Append ``samples`` (sweeps x recorded channels, int16) starting at device sweep
        ``first_sample``; a gap since the last block is zero-filled and marked as a loss."""
        self._main.write(first_sample, samples)

    def skip_to(self, sample: int) -> None:
        """Everything before device sweep ``sample`` that has not arrived is lost: mark it."""
        self._main.skip_to(sample)

    def _mark_loss(self, start: int, stop: int) -> None:
        """A lost stretch of the acquisition stream as two TTL events (+1 at its first
        sample, -1 after its last)."""
        for sample, state in ((start, LOSS_TTL_LINE), (stop, -LOSS_TTL_LINE)):
            self._ttl["states"].append(np.array([state]))
            self._ttl["sample_numbers"].append(np.array([sample]))
            self._ttl["timestamps"].append(np.array([sample / self.config.sample_rate_hz]))
            self._ttl["full_words"].append(np.array([1 if state > 0 else 0]))

    # -- as a recording sink (spikeforge.host.sinks.Sink) --
    def write_continuous(self, stream: str, first_sample: int, samples: np.ndarray) -> None:
        """A block of stream ``"data"`` (:meth:`write`) or ``"lfp"`` (:meth:`write_lfp`)."""
        if stream == "lfp":
            self.write_lfp(first_sample, samples)
        else:
            self._stream(stream).write(first_sample, samples)

    def write_loss(self, stream: str, first_sample: int, sweeps: int) -> None:
        """Sweeps that never arrived: zero-filled, listed and (full-rate stream) marked on
        the loss TTL line. They must follow the last block of the stream."""
        target = self._stream(stream)
        if target.next_sample != first_sample:
            raise ValueError(
                f"a loss of the {stream} stream must start where it stands (sweep "
                f"{target.next_sample}), not at sweep {first_sample}")
        target.skip_to(first_sample + sweeps)

    def _stream(self, stream: str) -> "_ContinuousStream":
        if stream == "data":
            return self._main
        if stream == "lfp" and self.lfp is not None:
            return self.lfp
        raise ValueError(f"stream must be 'data' or 'lfp' (after its first block), not "
                         f"{stream!r}")

    def update_metadata(self, **values: Any) -> None:
        self.metadata.update(values)

    def _count_metadata(self) -> None:
        """What the writer counted, into spikeforge.json."""
        self.metadata.update(samples_lost=self.samples_lost, sweeps=self.sweeps_written,
                             spikes=self.spikes_written)
        if self.lfp is not None:
            self.metadata.update(lfp_sweeps=self.lfp.sweeps_written,
                                 lfp_samples_lost=self.lfp.samples_lost)

    def flush(self, facts: dict[str, Any] | None = None) -> None:
        """Make everything written so far readable, on disk; ``facts`` (the recording's
        state, e.g. ``ended``, ``link``) and the writer's counts go into ``spikeforge.json``
        first."""
        self.metadata.update(facts or {})
        self._count_metadata()
        self._main.flush()
        for appender in (*self._ttl.values(), *self._detections.values()):
            appender.flush()
        if self.lfp is not None:
            self.lfp.flush()
        self._write_metadata()

    def _write_metadata(self) -> None:
        _replace_text(self.recording / "spikeforge.json",
                      json.dumps(self.metadata, indent=2, default=str))

    def close(self, facts: dict[str, Any] | None = None) -> None:
        """Flush with ``facts`` (e.g. ``ended``) and close."""
        self.flush(facts)
        self._main.close()
        for appender in (*self._ttl.values(), *self._detections.values()):
            appender.close()
        if self.lfp is not None:
            self.lfp.close()


def _replace_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a cut leaves the old version or the new one)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def _structure(config: SystemConfig, enabled: tuple[int, ...]) -> dict[str, Any]:
    channels = [
        {"channel_name": f"CH{index + 1}", "description": f"spikeforge channel {index}",
         "identifier": "genericdata.continuous", "history": "spikeforge",
         "bit_volts": MICROVOLTS_PER_BIT, "units": "uV"}
        for index in enabled
    ]
    return {
        "GUI version": "0.6.7",
        "continuous": [{
            "folder_name": f"{_STREAM}/", "sample_rate": float(config.sample_rate_hz),
            "source_processor_name": "spikeforge", "source_processor_id": 100,
            "stream_name": "acquisition", "recorded_processor": "spikeforge",
            "recorded_processor_id": 100, "num_channels": len(enabled),
            "channels": channels,
        }],
        "events": [{
            "folder_name": f"{_STREAM}/TTL/", "channel_name": "spikeforge data loss",
            "description": f"TTL line {LOSS_TTL_LINE}: samples lost on the way (zero-filled)",
            "identifier": "spikeforge.loss", "sample_rate": float(config.sample_rate_hz),
            "type": "int16", "num_channels": 1, "source_processor": "spikeforge",
            "stream_name": "acquisition",
        }],
        "spikes": [],
    }


def _settings_xml(config: SystemConfig) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<SETTINGS>\n'
        '  <INFO><VERSION>0.6.7</VERSION><MACHINE>spikeforge</MACHINE></INFO>\n'
        f'  <!-- {config.describe()} -->\n</SETTINGS>\n'
    )


class _ContinuousStream:
    """One continuous stream of a recording (the acquisition stream, or the LFP stream of
    mode events+lfp): ``continuous.dat`` (int16, interleaved), sample numbers and timestamps
    at ``rate_hz``. Blocks must arrive in order; a gap is zero-filled, listed in ``losses``,
    counted in ``samples_lost`` and reported to ``on_loss(first, stop)``.

    The folder and its files are created with the first sweeps, which reach the OS before
    ``on_created()`` is called (to list the stream): a stream that is listed is never empty.
    Writes are unbuffered, whole blocks, so a cut leaves whole rows."""

    #: Rows of zeros written at a time for a gap (a long gap is not one huge array).
    _FILL_ROWS = 1 << 16

    def __init__(self, folder: Path, rate_hz: float, channels: int, what: str,
                 on_loss: Callable[[int, int], None] | None = None,
                 on_created: Callable[[], None] | None = None):
        self.folder = folder
        self.rate_hz = rate_hz
        self.channels = channels
        self._what = what   # "" or "LFP ": names the stream in errors
        self._on_loss = on_loss
        self._on_created = on_created
        self._data: Any = None          # the files, from the first sweeps on
        self._sample_numbers: _NpyAppender | None = None
        self._timestamps: _NpyAppender | None = None
        self.first_sample: int | None = None
        self.next_sample: int | None = None
        self.samples_lost = 0
        self.losses: list[dict[str, int]] = []

    @property
    def created(self) -> bool:
        """The stream's files exist and hold its first sweeps."""
        return self._data is not None

    @property
    def sweeps_written(self) -> int:
        return self._sample_numbers.length if self._sample_numbers is not None else 0

    @property
    def bytes_written(self) -> int:
        return self.sweeps_written * self.channels * 2

    def write(self, first_sample: int, samples: np.ndarray) -> None:
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(
                f"{self._what}samples must have shape (sweeps, {self.channels}) for the "
                f"{self.channels} recorded channels, not {samples.shape}")
        if self.next_sample is None:
            self.first_sample = self.next_sample = first_sample
        if first_sample < self.next_sample:
            raise ValueError(
                f"{self._what}block starts at sweep {first_sample}, before the end of the "
                f"last one ({self.next_sample}); blocks must arrive in order")
        self.skip_to(first_sample)
        self._append(first_sample, samples.astype("<i2", copy=False))

    def skip_to(self, sample: int) -> None:
        """Everything before ``sample`` that has not arrived is lost: zero-fill and list it."""
        if self.next_sample is None or sample <= self.next_sample:
            return
        start = self.next_sample
        self.losses.append({"first_sample": start, "samples": sample - start})
        self.samples_lost += sample - start
        if self._on_loss is not None:
            self._on_loss(start, sample)
        for chunk_start in range(start, sample, self._FILL_ROWS):
            rows = min(self._FILL_ROWS, sample - chunk_start)
            self._append(chunk_start, np.zeros((rows, self.channels), dtype="<i2"))

    def _append(self, first_sample: int, samples: np.ndarray) -> None:
        numbers = np.arange(first_sample, first_sample + len(samples), dtype=np.int64)
        first = self._data is None
        if first:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._data = open(self.folder / "continuous.dat", "wb",  # noqa: SIM115
                              buffering=0)                            # closed in close()
            self._sample_numbers = _NpyAppender(self.folder / "sample_numbers.npy", "<i8")
            self._timestamps = _NpyAppender(self.folder / "timestamps.npy", "<f8")
        _write_all(self._data, np.ascontiguousarray(samples).tobytes())
        self._sample_numbers.append(numbers)
        self._timestamps.append(numbers / self.rate_hz)
        self.next_sample = first_sample + len(samples)
        if first:
            # The first sample number is in the headers at once (readers take the start
            # time from it), and only then is the stream listed.
            self._sample_numbers.flush()
            self._timestamps.flush()
            if self._on_created is not None:
                self._on_created()

    def flush(self) -> None:
        if self._data is None:
            return
        os.fsync(self._data.fileno())
        self._sample_numbers.flush()
        self._timestamps.flush()

    def close(self) -> None:
        if self._data is None:
            return
        self.flush()
        self._data.close()
        self._sample_numbers.close()
        self._timestamps.close()


def _lfp_structure(config: SystemConfig, enabled: tuple[int, ...]) -> dict[str, Any]:
    """The LFP stream's entry in structure.oebin: same channels, the decimated rate."""
    entry = dict(_structure(config, enabled)["continuous"][0])
    entry.update({"folder_name": f"{_LFP_STREAM}/", "stream_name": "lfp",
                  "sample_rate": float(config.lfp_rate_hz)})
    return entry
