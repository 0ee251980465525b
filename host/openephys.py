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

Data is appended as it arrives, through a writer thread
(:class:`~spikeforge.host.background_writer.BackgroundWriter`): the caller only copies a block
into memory (or keeps a reference to a read-only one) and hands whole buffers over, megabytes
at a time; the thread makes the positioned writes and the syncs, so the recorder's loop never
waits on the disk. :meth:`OpenEphysWriter.flush` hands everything written so far to the
thread, followed by the ``.npy`` headers rewritten with the current length, an ``fdatasync``
of each file and ``spikeforge.json``; the thread gets there within its queue's delay, and
after a crash everything up to the last flush it completed is intact (whole rows, headers
never longer than the rows behind them). :meth:`OpenEphysWriter.sync` waits for it.

The thread's queue is bounded (``max_queue_bytes``, default
:data:`~spikeforge.host.background_writer.MAX_QUEUE_BYTES`). A block that does not fit is
not written: its sweeps are a loss like a link loss (a hole in ``continuous.dat``, which reads
as zeros, listed in ``losses``, marked on the loss TTL line) and counted apart in
``spikeforge.json`` under ``writer`` (``sweeps_refused``, ``refused_bytes``). Sweeps
lost on the link are holes too: they cost the disk nothing.

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

from .background_writer import CHUNK_BYTES, MAX_QUEUE_BYTES, BackgroundWriter
from .frames import EventBlock

__all__ = ["OpenEphysWriter", "MICROVOLTS_PER_BIT", "LOSS_TTL_LINE"]

#: Input-referred scale of a sample, as for the RHD2000 family (0.195 µV per LSB).
MICROVOLTS_PER_BIT = 0.195
#: TTL line that marks samples lost on the way (zero-filled).
LOSS_TTL_LINE = 1
_NODE = "Record Node 101"
_STREAM = "spikeforge-100.acquisition"
_LFP_STREAM = "spikeforge-100.lfp"


_fdatasync = getattr(os, "fdatasync", os.fsync)
#: Buffers per positioned vector write (below every system's IOV_MAX).
_IOV_BUFFERS = 512


def _pwrite_all(fd: int, buffers: "list[Any]", offset: int) -> None:
    """All of ``buffers`` (bytes-like, in order) into ``fd`` from ``offset``."""
    if len(buffers) > _IOV_BUFFERS:
        buffers = [b"".join(buffers)]
    total = sum(memoryview(b).nbytes for b in buffers)
    done = os.pwritev(fd, buffers, offset) if hasattr(os, "pwritev") else 0
    if done < total:        # a short write (or no pwritev): the rest, one buffer
        rest = memoryview(b"".join(buffers))[done:]
        while rest:
            if hasattr(os, "pwrite"):
                written = os.pwrite(fd, rest, offset + done)
            else:       # (Windows) only the writer thread writes this file: seek, write
                os.lseek(fd, offset + done, os.SEEK_SET)
                written = os.write(fd, rest)
            rest, done = rest[written:], done + written


def _over_bytes(array: np.ndarray) -> bool:
    """Whether ``array``'s memory is an immutable ``bytes`` object (no one can change it)."""
    base: Any = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, bytes)


class _StagedFile:
    """A file appended through the writer thread: bytes are staged here and handed over as
    one positioned write once :data:`CHUNK_BYTES` are waiting (or at a flush); a skipped
    stretch is never written (a hole, read as zeros). ``end``: the file's length once
    everything staged is written."""

    def __init__(self, path: Path, writer: BackgroundWriter, end: int = 0) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        self.writer = writer
        self.end = end
        self._buffers: list[Any] = []
        self._staged = 0
        self._reserved = 0

    def stage(self, data: Any, reserved: int) -> None:
        """Append ``data`` (bytes-like, not changed afterwards) for which ``reserved`` bytes
        were reserved with the writer."""
        size = memoryview(data).nbytes
        self._buffers.append(data)
        self._staged += size
        self._reserved += reserved
        self.end += size
        if self._staged >= CHUNK_BYTES:
            self.hand_over()

    def skip(self, size: int) -> None:
        """Leave ``size`` bytes unwritten (a hole)."""
        self.hand_over()
        self.end += size

    def hand_over(self) -> None:
        if not self._buffers:
            return
        fd, buffers, offset = self.fd, self._buffers, self.end - self._staged
        self.writer.submit(lambda: _pwrite_all(fd, buffers, offset), self._reserved)
        self._buffers, self._staged, self._reserved = [], 0, 0

    def sync(self, header: bytes | None = None) -> None:
        """Hand over what is staged, then (in the thread) ``header`` at offset 0, the
        file's full length (a trailing hole) and an fdatasync."""
        self.hand_over()
        fd, end = self.fd, self.end

        def job() -> None:
            if header is not None:
                _pwrite_all(fd, [header], 0)
            if os.fstat(fd).st_size < end:
                os.ftruncate(fd, end)
            _fdatasync(fd)

        self.writer.submit(job)

    def close(self) -> None:
        """After the writer has drained (again: nothing)."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class _NpyAppender:
    """A .npy file that grows along its first axis (rows of ``row_shape``), written by the
    writer thread; the header is rewritten with the length on flush (after the rows it
    counts, so a cut never finds a header longer than the rows behind it). The file appears
    with its header (written aside, renamed into place)."""

    _HEADER_BYTES = 128

    def __init__(self, path: Path, dtype: str, writer: BackgroundWriter,
                 row_shape: tuple[int, ...] = ()):
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = row_shape
        self.length = 0
        aside = path.with_name(path.name + ".tmp")
        with open(aside, "wb") as file:
            file.write(self._header())
        aside.replace(path)
        self._file = _StagedFile(path, writer, end=self._HEADER_BYTES)

    def _header(self) -> bytes:
        header = {"descr": self.dtype.str, "fortran_order": False,
                  "shape": (self.length, *self.row_shape)}
        text = repr(header).encode("latin1")
        pad = self._HEADER_BYTES - 10 - len(text) - 1
        size = (self._HEADER_BYTES - 10).to_bytes(2, "little")
        return b"\x93NUMPY\x01\x00" + size + text + b" " * pad + b"\n"

    def append(self, values: np.ndarray) -> None:
        data = np.ascontiguousarray(values, dtype=self.dtype).tobytes()
        self._file.writer.reserve(len(data), always=True)    # bookkeeping: never refused
        self._file.stage(data, len(data))
        self.length += len(values)

    def flush(self) -> None:
        self._file.sync(self._header())

    def close(self) -> None:
        """After the writer has drained (a flush first)."""
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
    max_queue_bytes:
        Bound of the writer thread's queue (module docstring): samples that do not fit are
        a counted loss, never a wait.
    """

    def __init__(self, out: Path, config: SystemConfig, metadata: dict[str, Any] | None = None,
                 channels: "tuple[int, ...] | list[int] | None" = None,
                 max_queue_bytes: int = MAX_QUEUE_BYTES):
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

        self.background = BackgroundWriter(max_queue_bytes, name=self.root.name)
        self._ttl = {name: _NpyAppender(events / f"{name}.npy", dtype, self.background)
                     for name, dtype in
                     (("states", "<i2"), ("sample_numbers", "<i8"), ("timestamps", "<f8"),
                      ("full_words", "<u8"))}
        self._main = _ContinuousStream(self.recording / "continuous" / _STREAM,
                                       config.sample_rate_hz, len(self.channels), "",
                                       self.background, on_loss=self._mark_loss,
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
                                         self.background, on_created=self._write_structure)
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
                name: _NpyAppender(folder / f"{name}.npy", dtype, self.background, shape)
                for name, dtype, shape
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
        self.metadata["writer"] = self.writer_record()

    @property
    def sweeps_refused(self) -> int:
        """Sweeps (of both streams) the writer thread's full queue refused: in the losses."""
        return self._main.sweeps_refused + (self.lfp.sweeps_refused if self.lfp else 0)

    def writer_record(self) -> dict[str, int]:
        """The writer thread's loss counters (``spikeforge.json``, ``writer``): its bound,
        the sweeps and bytes its full queue refused. (Its queue peak, which depends on the
        disk's timing, is in :attr:`background` ``.stats``: a recording's files depend only
        on what it was given.)"""
        stats = self.background.stats
        return {"max_queue_bytes": stats.max_queue_bytes, "sweeps_refused": self.sweeps_refused,
                "refused_bytes": stats.refused_bytes}

    def flush(self, facts: dict[str, Any] | None = None) -> None:
        """Hand everything written so far to the writer thread, then each file's header and
        sync and ``spikeforge.json`` with ``facts`` (the recording's state, e.g. ``ended``,
        ``link``) and the writer's counts. Does not wait for the disk (:meth:`sync` does);
        raises the error the thread met, if it met one (e.g. a full disk)."""
        self.metadata.update(facts or {})
        self._main.close_refused()      # lists a refused stretch (and marks it) first
        if self.lfp is not None:
            self.lfp.close_refused()
        self._count_metadata()
        self._main.flush()
        for appender in (*self._ttl.values(), *self._detections.values()):
            appender.flush()
        if self.lfp is not None:
            self.lfp.flush()
        text = json.dumps(self.metadata, indent=2, default=str)
        path = self.recording / "spikeforge.json"
        self.background.submit(lambda: _replace_text(path, text))

    def sync(self) -> None:
        """Wait until the writer thread has done everything handed to it (after
        :meth:`flush`: on disk and readable)."""
        self.background.drain()

    def _write_metadata(self) -> None:
        _replace_text(self.recording / "spikeforge.json",
                      json.dumps(self.metadata, indent=2, default=str))

    def close(self, facts: dict[str, Any] | None = None) -> None:
        """Flush with ``facts`` (e.g. ``ended``), wait for the writer thread, and close; the
        thread's error, if it met one, is raised after the files are closed."""
        try:
            self.flush(facts)
        finally:
            try:
                self.background.close()
            finally:
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
    at ``rate_hz``. Blocks must arrive in order; a gap is zero-filled (a hole in
    ``continuous.dat``), listed in ``losses``, counted in ``samples_lost`` and reported to
    ``on_loss(first, stop)``. A block the writer thread's full queue refuses is such a loss
    too (counted also in ``sweeps_refused``; a run of them is listed as one stretch).

    The folder and its files are created with the first sweeps, which are on disk before
    ``on_created()`` is called (to list the stream): a stream that is listed is never empty.
    The writer thread writes whole blocks, so a cut leaves whole rows."""

    #: Sweeps of sample numbers staged at a time for a gap (a long gap is not one array).
    _FILL_ROWS = 1 << 16

    def __init__(self, folder: Path, rate_hz: float, channels: int, what: str,
                 writer: BackgroundWriter,
                 on_loss: Callable[[int, int], None] | None = None,
                 on_created: Callable[[], None] | None = None):
        self.folder = folder
        self.rate_hz = rate_hz
        self.channels = channels
        self._what = what   # "" or "LFP ": names the stream in errors
        self._writer = writer
        self._on_loss = on_loss
        self._on_created = on_created
        self._data: _StagedFile | None = None     # the files, from the first sweeps on
        self._sample_numbers: _NpyAppender | None = None
        self._timestamps: _NpyAppender | None = None
        self.first_sample: int | None = None
        self.next_sample: int | None = None
        self.samples_lost = 0
        self.sweeps_refused = 0
        self._refused: list[int] | None = None    # [first, stop) refused, not yet listed
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
        self._append(first_sample, samples)

    def skip_to(self, sample: int) -> None:
        """Everything before ``sample`` that has not arrived is lost: zero-fill and list it."""
        if self.next_sample is None or sample <= self.next_sample:
            return
        self.close_refused()
        start = self.next_sample
        self.samples_lost += sample - start
        self._list_loss(start, sample)
        for chunk_start in range(start, sample, self._FILL_ROWS):
            if (chunk_start > start
                    and self._writer.queued_bytes > self._writer.stats.max_queue_bytes):
                self._writer.drain()    # a gap of hours: its sample numbers, a bit at a time
            rows = min(self._FILL_ROWS, sample - chunk_start)
            self._data.skip(rows * self.channels * 2)
            self._number(chunk_start, rows)
        self.next_sample = sample

    def _list_loss(self, start: int, stop: int) -> None:
        self.losses.append({"first_sample": start, "samples": stop - start})
        if self._on_loss is not None:
            self._on_loss(start, stop)

    def close_refused(self) -> None:
        """List the stretch of refused blocks that is open (the next thing differs)."""
        if self._refused is not None:
            start, stop = self._refused
            self._refused = None
            self._list_loss(start, stop)

    def _number(self, first_sample: int, sweeps: int) -> None:
        numbers = np.arange(first_sample, first_sample + sweeps, dtype=np.int64)
        self._sample_numbers.append(numbers)
        self._timestamps.append(numbers / self.rate_hz)

    def _append(self, first_sample: int, samples: np.ndarray) -> None:
        first = self._data is None
        if first:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._data = _StagedFile(self.folder / "continuous.dat", self._writer)
            self._sample_numbers = _NpyAppender(self.folder / "sample_numbers.npy", "<i8",
                                                self._writer)
            self._timestamps = _NpyAppender(self.folder / "timestamps.npy", "<f8",
                                            self._writer)
        samples = np.ascontiguousarray(samples, dtype="<i2")
        # A block over immutable bytes (the decoder's, over the frame's payload) is handed
        # over as it is; any other is copied (its owner may change it after this call).
        data: Any = samples.data if _over_bytes(samples) else samples.tobytes()
        sweeps = len(samples)
        if self._writer.reserve(samples.nbytes, always=first):
            self.close_refused()
            self._data.stage(data, samples.nbytes)
        else:       # the writer's queue is full: these sweeps are lost, counted apart
            if self._refused is not None and self._refused[1] == first_sample:
                self._refused[1] += sweeps
            else:
                self.close_refused()
                self._refused = [first_sample, first_sample + sweeps]
            self.samples_lost += sweeps
            self.sweeps_refused += sweeps
            self._data.skip(samples.nbytes)
        self._number(first_sample, sweeps)
        self.next_sample = first_sample + sweeps
        if first:
            # The first sweeps and their sample numbers are on disk at once (readers take
            # the start time from them), and only then is the stream listed.
            self.flush()
            self._writer.drain()
            if self._on_created is not None:
                self._on_created()

    def flush(self) -> None:
        if self._data is None:
            return
        self.close_refused()
        self._data.sync()
        self._sample_numbers.flush()
        self._timestamps.flush()

    def close(self) -> None:
        """After the writer thread has drained (a flush first)."""
        if self._data is None:
            return
        self._data.close()
        self._sample_numbers.close()
        self._timestamps.close()


def _lfp_structure(config: SystemConfig, enabled: tuple[int, ...]) -> dict[str, Any]:
    """The LFP stream's entry in structure.oebin: same channels, the decimated rate."""
    entry = dict(_structure(config, enabled)["continuous"][0])
    entry.update({"folder_name": f"{_LFP_STREAM}/", "stream_name": "lfp",
                  "sample_rate": float(config.lfp_rate_hz)})
    return entry
