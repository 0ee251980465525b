"""Records a device to an Open Ephys binary folder, with a live status and a clean ending.

The recording always ends readable: on the requested duration, Ctrl-C, a device that
disappears or goes silent, and a full disk alike, the files are flushed and closed and the
reason is written into ``spikeforge.json``. While recording, everything is flushed at
least every ``flush_interval_s`` (1 s), so even after ``kill -9`` all but the last second
is readable.

:class:`Recorder` does it in three steps: ``prepare`` (identity, control path, codebook,
bandwidth mode, channel mask; creates the Open Ephys writer), ``run`` (the loop over the
device's stream) and ``close``. Lossless from a v2 build with a value grid
(``codec_v2.grid``) starts raw: the grid is learned from the first ``learn_seconds`` of the
recording, loaded, and the device switched to lossless at a sync block
(:class:`GridLearning`), with the code weights learned from the same samples
(``codec_v2.code_weights`` builds); a restart prior (``codec_v2.restart_prior`` builds) is
loaded before the stream starts. Each continuous stream goes through a
:class:`~spikeforge.host.sinks.StreamWindow`, which cuts it at the duration and turns gaps
into losses, and everything decoded goes to the recording's sinks
(:mod:`spikeforge.host.sinks`): the Open Ephys writer, and any extra ones given.
"""

import errno
import hashlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spikeforge.firmware.compression import Codebook
from spikeforge.firmware.compression_v2 import (
    WEIGHT_UNIT_BITS,
    ValueGrid,
    learn_code_weights,
    learn_grid,
)
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.firmware.wire import FrameType

from .device import Device, DeviceError, DeviceNoControl, RegisterRefused
from .errors import ExitCode
from .frames import DataBlock, EventBlock, StreamItem, decided_at_sweep
from .openephys import OpenEphysWriter
from .sinks import FanOut, Sink, StreamWindow, Tally
from .udp import link_record, udp_stats

if TYPE_CHECKING:
    from .encrypted_recording import Recipient
    from .restart_prior import RestartPrior

__all__ = ["RecordingStatus", "Recorder", "record", "DiskFull", "RecordingModeError",
           "RECORDABLE_MODES", "OutputFolderError", "RecordingWriteError",
           "check_output_folder", "LinkOverloaded", "stream_load", "link_problem",
           "control_path_warning", "OVERLOAD_POLICIES", "LEARN_SECONDS", "GridLearning",
           "learns_grid"]


class DiskFull(SpikeforgeError):
    exit_code = ExitCode.DISK_FULL


class RecordingModeError(SpikeforgeError):
    exit_code = ExitCode.USAGE


_log = logging.getLogger(__name__)

#: What :class:`Recorder` does when the link cannot carry the stream asked for: warn (log a
#: warning, record, mark every loss), refuse (:class:`LinkOverloaded` before the stream
#: starts), allow (say nothing).
OVERLOAD_POLICIES = ("warn", "refuse", "allow")


class LinkOverloaded(SpikeforgeError):
    """The stream asked for needs more than the link carries: frames would be dropped."""

    exit_code = ExitCode.USAGE


def stream_load(config: SystemConfig, mode: str | None = None,
                channels: "list[int] | tuple[int, ...] | None" = None) -> tuple[float, str]:
    """The fraction of ``config``'s link that a recording in ``mode`` (None: raw) of
    ``channels`` (None: the configuration's enabled channels) needs, from the link budget
    (:func:`spikeforge.host.budget.budget`: frames, identity frames, UART or Ethernet
    framing), and a phrase saying what it assumed (lossless: the coder's expected ratio;
    events: the expected spike rate)."""
    from .budget import StreamDescription, budget

    mode = mode or "raw"
    count = len(channels) if channels is not None else len(config.enabled_channels)
    stream = StreamDescription.from_config(config)
    if mode != "lossless":     # COMPRESSED frames carry every channel, whatever the mask
        stream = replace(stream, channels=count)
    link = "ethernet" if config.link == "ethernet" else "uart"
    result = budget(stream, None if link == "ethernet" else float(config.baud), link=link,
                    lfp_decimation=config.lfp.factor if config.lfp is not None else None)
    row = result.mode(mode)
    assumed = {"lossless": f", assuming the coder's ratio {result.compression_ratio:.3g}x",
               "events+lfp": f", assuming {stream.spike_rate_hz:g} spikes/s per channel",
               "events": f", assuming {stream.spike_rate_hz:g} spikes/s per channel"}
    what = (f"{mode} stream of {stream.channels} channels at {config.sample_rate_hz:,} S/s"
            f"{assumed.get(mode, '')}")
    return row.load, what


def _link_name(config: SystemConfig) -> str:
    return ("Gigabit Ethernet" if config.link == "ethernet"
            else f"{config.baud:,}-baud UART")


def link_problem(config: SystemConfig, mode: str | None = None,
                 channels: "list[int] | tuple[int, ...] | None" = None) -> str | None:
    """Why the link of ``config`` cannot carry a recording in ``mode`` of ``channels``
    (:func:`stream_load` above 100 %), naming the load and the fixes; None if it can."""
    load, what = stream_load(config, mode, channels)
    if load <= 1.0:
        return None
    fit = max(1, int(len(channels if channels is not None else config.enabled_channels)
                     / load))
    return (f"the {what} needs {load:,.0%} of the {_link_name(config)}: about "
            f"{1 - 1 / load:.1%} of it would be lost (zero-filled). Record fewer channels "
            f"(--channels-enabled, about {fit}), a leaner --mode (lossless, events+lfp), "
            f"or over a faster link (a board's default --baud; sim://?clock_hz=...&baud=..., "
            f"or leave both out of a sim:// URL to get one that fits); or pass --allow-loss "
            f"to record anyway, every loss marked")


def control_path_warning(config: SystemConfig) -> str | None:
    """Why a UART build at ``config``'s baud takes no commands (None if it does)."""
    from spikeforge.firmware.control_protocol import MIN_RX_DIVISOR, has_control_path

    if config.link == "ethernet" or has_control_path(config):
        return None
    return (f"at {config.baud:,} baud a {config.clock_hz / 1e6:g} MHz clock gives "
            f"{config.uart_divisor} clock cycle(s) per bit and the UART receiver needs "
            f"{MIN_RX_DIVISOR}: the device has no control path (it streams, but takes no "
            "commands: no --mode, --channels-enabled, --codebook-from, --restart-prior, "
            f"status --stop). Use baud <= {config.clock_hz // MIN_RX_DIVISOR:,} to keep it")


class RecordingWriteError(SpikeforgeError):
    """Writing the recording failed part-way (not a full disk: e.g. the disk went
    read-only, an I/O error)."""

    exit_code = ExitCode.FAILURE


class OutputFolderError(SpikeforgeError):
    """The recording's folder cannot be used: it holds files, or cannot be written."""

    exit_code = ExitCode.USAGE


def check_output_folder(out: Path) -> None:
    """Refuse, before any device is touched, a folder the recording could not be written
    to: one that already holds files, or one that cannot be created or written (a read-only
    disk, no permission). Leaves nothing behind that was not there."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out} is a file, not a folder; choose a new folder for the "
                                "recording (--out)")
    if out.is_dir() and any(out.iterdir()):
        raise OutputFolderError(f"{out} already holds files; choose a new folder for the "
                                "recording (--out), the recorder never overwrites one")
    created = not out.exists()
    probe = out / ".spikeforge-write-test"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
        if created:
            out.rmdir()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputFolderError(f"cannot write the recording into {out}: {reason} "
                                f"[errno {exc.errno}]; record onto a writable disk "
                                "(--out)") from None


#: Seconds of device time recorded raw, at the start of a lossless recording from a v2 build
#: with a value grid, to learn the grid from ("the live stream's first seconds").
LEARN_SECONDS = 1.0


def learns_grid(config: SystemConfig, mode: str | None) -> bool:
    """Whether a recording in ``mode`` from a build of ``config`` learns the v2 coder's
    value grid first (lossless, ``codec_v2`` enabled with ``grid``)."""
    codec = config.codec_v2
    return mode == "lossless" and codec.enabled and codec.grid


@dataclass
class GridLearning:
    """The raw start of a lossless recording from a v2 build with a value grid: the first
    ``sweeps`` recorded sweeps (all recorded channels) collect here; then
    :func:`~spikeforge.firmware.compression_v2.learn_grid` finds the grid (None: the samples
    show none, e.g. fewer than 6 distinct values or no common step; the recording then stays
    raw and says why, never codes without the grid the build needs)."""

    sweeps: int
    max_bits: int
    collected: list[np.ndarray] = field(default_factory=list)
    count: int = 0

    def take(self, samples: np.ndarray) -> bool:
        """Collect a raw block's samples; returns whether enough are in."""
        if self.count < self.sweeps:
            kept = samples[:self.sweeps - self.count]
            self.collected.append(kept)
            self.count += len(kept)
        return self.count >= self.sweeps

    def learn(self) -> ValueGrid | None:
        samples = np.concatenate(self.collected) if self.collected else np.zeros((0, 1))
        return learn_grid(samples, max_bits=self.max_bits)


#: Bandwidth modes that carry continuous samples (docs/recording.md): raw and lossless the
#: full-rate stream, events+lfp the decimated LFP stream (with the detector's events).
RECORDABLE_MODES = ("raw", "lossless", "events+lfp")


@dataclass
class RecordingStatus:
    elapsed_s: float          #: wall time since the first sample
    recorded_s: float         #: device time written (sweeps / sample rate)
    duration_s: float | None  #: what was asked for
    bytes_written: int
    data_rate_bps: float      #: bytes of samples per wall second
    samples_lost: int         #: sweeps zero-filled because their frames never arrived
    crc_errors: int
    spikes: int = 0           #: detector events recorded (EVENTS frames)
    ended: str | None = None  #: why the recording ended, once it has
    #: UDP datagrams this host dropped (udp:// devices): the kernel's (receive buffer full)
    #: and the receive thread's (queue full); each also shows as lost sweeps
    kernel_drops: int = 0
    queue_drops: int = 0

    @property
    def spikes_per_s(self) -> float:
        """Detected spikes per second of device time, all channels together."""
        return self.spikes / self.recorded_s if self.recorded_s > 0 else 0.0

    def line(self) -> str:
        progress = ""
        if self.duration_s:
            done = min(1.0, self.recorded_s / self.duration_s)
            bar = "#" * int(done * 20)
            progress = f"[{bar:<20}] {done:4.0%} "
        return (f"{progress}{self.recorded_s:7.1f} s recorded  "
                f"{self.bytes_written / 1e6:8.2f} MB  {self.data_rate_bps / 1e3:7.1f} kB/s  "
                f"{self.spikes_per_s:7.1f} spikes/s  "
                f"lost {self.samples_lost} sweeps  CRC errors {self.crc_errors}"
                + (f"  UDP drops: {self.kernel_drops} kernel, {self.queue_drops} queue"
                   if self.kernel_drops or self.queue_drops else ""))


class Recorder:
    """Records ``device`` into the Open Ephys folder ``out`` (and into any extra ``sinks``)
    until ``duration_s`` of device time (or forever)::

        recorder = Recorder(device, out, duration_s=60)
        recorder.prepare()     # identity, control, codebook, mode, channel mask; the writer
        final = recorder.run()  # the loop; closes the recording however it ends

    ``control``: use the device's control path — :meth:`Device.start` before recording,
    :meth:`Device.stop` when it ends (not after a device error). ``None`` (default): if the
    device answers commands (:meth:`Device.supports_control`); a device that only streams is
    recorded as it streams.

    ``mode``: the bandwidth mode to record in, "raw" or "lossless" (set over the control
    path, read back and checked, before streaming starts). Raw DATA and lossless COMPRESSED
    frames decode to the same samples, so both give the same recording. "events+lfp"
    records the LFP frames as the recording's second continuous stream
    (``spikeforge-100.lfp``, at ``lfp_rate_hz``) and the events; the duration then counts
    decimated sweeps. Mode "events" carries no continuous samples, which this recorder is
    built around: not supported. ``None``: as the device is (the first continuous block
    decides which stream the recording follows).

    ``channels``: the channels to record, set as the device's channel mask before the
    stream starts (needs the control path). Only the channels the mask enables are written
    (the mask in force is read from the device when it answers commands, else the identity
    frame's reset mask is assumed).

    ``learn_seconds``: with ``mode="lossless"`` on a v2 build with a value grid
    (:func:`learns_grid`), the recording starts raw; once ``learn_seconds`` of device time
    (default :data:`LEARN_SECONDS`) are recorded, the grid is learned from those samples
    (:class:`GridLearning`), loaded (:meth:`Device.load_grid`) and the device switched to
    lossless at a sync block (:meth:`Device.switch_to_lossless`); the raw start stays in the
    recording. ``spikeforge.json`` keeps the grid (``grid``) and where lossless started
    (``grid_learning``). No grid found: the recording goes on raw, and ``grid_learning``
    says why.

    ``code_weights``: on a build with code weights (``codec_v2.code_weights``), learn them
    (:func:`~spikeforge.firmware.compression_v2.learn_code_weights`) from the same raw start
    as the grid and load them with it (:meth:`Device.load_code_weights`), before lossless
    starts; the stream keeps running meanwhile, so the raw start just lasts longer.
    ``spikeforge.json`` keeps them (``code_weights``: the table, its digest, where it was
    learned). False: WEIGHTS_ON = 0, the coder codes as without them (one command instead of
    ``(2**grid.bits + 64) / 2``).

    ``codebook``: load it into the device's coder first (``codec.codebook`` builds, needs
    the control path; the device is switched to raw for it if it is lossless, see
    :meth:`Device.load_codebook`); COMPRESSED frames are decoded with it, and it is kept in
    ``spikeforge.json``.

    ``prior``: a :class:`~spikeforge.host.restart_prior.RestartPrior` to load into the
    device's v2 coder (``codec_v2.restart_prior`` builds, ``mode="lossless"``, needs the
    control path): loaded (:meth:`Device.load_prior`) with the device in raw before the
    stream starts, so before lossless, and COMPRESSED frames are decoded with it.
    ``spikeforge.json`` keeps its file and digest (``restart_prior``). A build without a
    restart prior, another mode or a prior that does not fit the build's coder is refused
    before anything is written (:class:`RecordingModeError`, ``ConfigError``).

    ``sinks``: further consumers of the recording (:class:`~spikeforge.host.sinks.Sink`);
    each receives exactly the calls the Open Ephys writer receives, after it. ``out`` None:
    nothing is written to disk, the sinks are the recording's only consumers (live
    streaming, :mod:`spikeforge.host.lsl`) and the status counts what they received.

    ``overload``: what to do, before the stream starts, when the link cannot carry what is
    asked (:func:`link_problem`: the mode's load over the enabled channels above 100 %):
    "warn" (default: log a warning, record, mark every loss), "refuse"
    (:class:`LinkOverloaded`; ``spikeforge record`` without ``--allow-loss``) or "allow".

    ``encrypt_to``: a :class:`~spikeforge.host.encrypted_recording.Recipient`; the folder
    then holds only ``recording.sfenc``, every write of the Open Ephys writer sealed in
    chunks for that recipient (``spikeforge decrypt`` restores the folder), nothing readable.

    ``run`` raises the device error or :class:`DiskFull` after closing the recording; a
    ``KeyboardInterrupt`` ends the recording normally with ``ended="interrupted"``.
    """

    def __init__(self, device: Device, out: Path | None, *, duration_s: float | None = None,
                 flush_interval_s: float = 1.0,
                 on_status: Callable[[RecordingStatus], None] | None = None,
                 control: bool | None = None, mode: str | None = None,
                 channels: "list[int] | tuple[int, ...] | None" = None,
                 codebook: Codebook | None = None,
                 sinks: "list[Sink] | tuple[Sink, ...]" = (),
                 overload: str = "warn", encrypt_to: "Recipient | None" = None,
                 learn_seconds: float = LEARN_SECONDS,
                 prior: "RestartPrior | None" = None, code_weights: bool = True):
        if overload not in OVERLOAD_POLICIES:
            raise ValueError(f"overload must be one of {', '.join(OVERLOAD_POLICIES)}, "
                             f"not {overload!r}")
        self.overload = overload
        self.device = device
        self.out = None if out is None else Path(out)
        self.duration_s = duration_s
        self.flush_interval_s = flush_interval_s
        self.on_status = on_status
        self.control = control
        self.mode = mode
        self.channels = channels
        self.codebook = codebook
        self.prior = prior
        self.code_weights = code_weights
        if not learn_seconds > 0:
            raise ValueError(f"learn_seconds must be above 0, not {learn_seconds!r}")
        self.learn_seconds = learn_seconds
        self.extra_sinks = FanOut(sinks).sinks    # checked before anything is written
        self.encrypt_to = encrypt_to
        # -- set by prepare() --
        self.config: SystemConfig | None = None
        self.writer: OpenEphysWriter | None = None   # None: out is None (sinks only)
        #: The counters the status reports: the writer, or a Tally without one.
        self.counts: OpenEphysWriter | Tally | None = None
        self.sink: FanOut | None = None          # the writer, then the extra sinks
        # -- set while running --
        #: The continuous stream the recording follows ("data" or "lfp"): set by the mode in
        #: force, else by the first block recorded; blocks of the other stream are skipped.
        self.window: StreamWindow | None = None
        self.started_s = self.last_flush_s = 0.0
        self.interrupted = False     #: Ctrl-C came (the loop ends at the next item)
        #: The raw start of a lossless v2 recording that learns its grid (None: none, or
        #: learned).
        self.learning: GridLearning | None = None
        #: What the recording's spikeforge.json says about the grid (kept in every flush).
        self.facts: dict[str, Any] = {}
        #: Switched to lossless after the raw start; the first COMPRESSED block not yet in.
        self._switching = False

    # -- set-up --
    def prepare(self) -> None:
        """Learn the device, refuse what it cannot do, configure it, start its stream and
        create the recording. Nothing is written before the requests are checked."""
        if self.out is not None:     # None: sinks only (live streaming)
            check_output_folder(self.out)
        self.config = self.device.identify()
        if self.control is None:
            self.control = self.device.supports_control()
        self._refuse_what_needs_control()
        self._check_link_load()
        if learns_grid(self.config, self.mode):
            self.learning = GridLearning(round(self.learn_seconds * self.config.sample_rate_hz),
                                         self.config.codec_v2.grid_bits)
            self.facts = {"grid": None, "grid_learning": {
                "learn_seconds": self.learn_seconds, "sweeps": self.learning.sweeps,
                "state": "learning (raw)"}}
            if self.config.codec_v2.code_weights:
                self.facts["code_weights"] = {"learned_from": None, "loaded": False}
        if self.prior is not None:
            self.facts["restart_prior"] = {**self.prior.facts(), "loaded": False}
        self._configure_device()
        mode_in_force = self.mode or (self.device.mode() if self.control else None)
        enabled = self.device.enabled_channels or self.config.enabled_channels
        if self.out is not None:
            metadata = {"port": self.device.url, "control": self.control,
                        "mode": mode_in_force or "as streamed",
                        **({"codebook": self.codebook.to_dict()} if self.codebook is not None
                           else {}), **self.facts}
            if self.encrypt_to is not None:     # nothing readable on disk
                from .encrypted_recording import EncryptedRecordingWriter

                self.writer = EncryptedRecordingWriter(  # type: ignore[assignment]
                    self.out, self.encrypt_to, self.config, metadata, channels=enabled)
            else:
                self.writer = OpenEphysWriter(self.out, self.config, metadata,
                                              channels=enabled)
        self.counts = self.writer if self.writer is not None else Tally(enabled)
        self.sink = FanOut((self.counts, *self.extra_sinks))
        if mode_in_force is not None:
            self._follow("lfp" if mode_in_force == "events+lfp" else "data")

    def _refuse_what_needs_control(self) -> None:
        if self.codebook is not None and not self.control:
            raise DeviceNoControl(
                f"loading a codebook needs the device's control path, and {self.device.url} "
                "does not answer commands; record without a codebook")
        if self.mode is not None and self.mode not in RECORDABLE_MODES:
            raise RecordingModeError(
                f"the recorder records continuous samples: mode must be one of "
                f"{', '.join(RECORDABLE_MODES)}, not {self.mode!r} (mode events carries no "
                "continuous stream; record events+lfp on a build with SystemConfig.lfp)")
        if self.prior is not None:
            self._refuse_prior()
        if self.mode is not None and not self.control:
            raise DeviceNoControl(
                f"recording in bandwidth mode {self.mode!r} needs the device's control path, "
                f"and {self.device.url} does not answer commands; record without --mode")
        if self.channels is not None and not self.control:
            raise DeviceNoControl(
                "recording chosen channels needs a device that answers commands (the channel "
                "mask is set through its registers); record every channel, or use a build "
                "with the control path")

    def _refuse_prior(self) -> None:
        """A restart prior needs a lossless recording from a build that holds one, the
        control path, and rows that fit the build's coder."""
        codec = self.config.codec_v2
        if not (codec.enabled and codec.restart_prior):
            raise RecordingModeError(
                f"the device's build has no restart prior (codec_v2.enabled={codec.enabled}, "
                f"codec_v2.restart_prior={codec.restart_prior}), so {self.prior.source} "
                "cannot be loaded; rebuild with codec_v2 restart_prior=True (and sync_blocks "
                "> 0), or record without --restart-prior")
        if self.mode != "lossless":
            raise RecordingModeError(
                f"a restart prior is for lossless recordings, not mode {self.mode!r}; record "
                "with --mode lossless, or without --restart-prior")
        if not self.control:
            raise DeviceNoControl(
                f"loading a restart prior needs the device's control path, and "
                f"{self.device.url} does not answer commands; record without --restart-prior")
        self.prior.check(codec)

    def _check_link_load(self) -> None:
        """Before the stream starts: the link must carry what is asked (``overload``)."""
        if self.overload == "allow":
            return
        mode = self.mode or (self.device.mode() if self.control else None)
        problem = link_problem(self.config, mode, self.channels)
        if problem is None:
            return
        if self.overload == "refuse":
            raise LinkOverloaded(problem)
        _log.warning("warning: %s", problem)

    def _configure_device(self) -> None:
        """Codebook, mode and channel mask (or learn the mask in force); start the stream."""
        device = self.device
        if self.prior is not None:
            # stopped while its contexts x PRIOR_ENTRIES commands go: the frames the device
            # would stream meanwhile are a backlog the recording would start with (the
            # frames from before the restart are skipped, see _before_restart)
            device.stop()
        if (self.prior is not None or self.codebook is not None) \
                and device.mode() == "lossless":
            device.set_mode("raw")   # the device takes a prior or codebook only outside it
        if self.prior is not None:
            device.load_prior(self.prior.rows)
            self.facts["restart_prior"]["loaded"] = True
            _log.info("restart prior %s loaded (%d context tables)", self.prior.source,
                      len(self.prior.rows))
        if self.codebook is not None:
            device.load_codebook(self.codebook)
        if self.learning is not None:
            device.set_mode("raw")       # lossless once the grid is learned and loaded
        elif self.mode is not None:
            device.set_mode(self.mode)
        if not self.control:
            return
        if self.channels is not None:
            device.stop()
            device.set_channel_mask(self.channels)
        else:
            try:
                device.read_channel_mask()
            except RegisterRefused:
                pass    # a bitstream older than the channel mask: every channel
        device.start()

    def _follow(self, stream: str) -> None:
        """Record ``stream`` ("data" or "lfp"), ``duration_s`` of it at its own rate."""
        rate_hz = self.config.sample_rate_hz if stream == "data" else self.config.lfp_rate_hz
        length = (None if self.duration_s is None or rate_hz is None
                  else round(self.duration_s * rate_hz))
        self.window = StreamWindow(stream, self.sink, length)

    # -- the loop --
    def run(self) -> RecordingStatus:
        """Record until the duration, the device's end, Ctrl-C or an error; the recording
        is closed however it ends. Returns the final status."""
        if self.sink is None:
            self.prepare()
        self.started_s = self.last_flush_s = time.monotonic()
        try:
            with self._ctrl_c_between_items():
                for item in self.device.items():
                    if self.interrupted:
                        return self.close("interrupted")
                    ending = self._take(item)
                    if ending is not None:
                        return self.close(ending)
                    self._flush_now_and_then()
        except KeyboardInterrupt:
            return self.close("interrupted")
        except DeviceError as exc:
            if self.interrupted:     # e.g. the board went with the same Ctrl-C
                return self.close("interrupted")
            self.close(f"device error: {exc}")
            raise
        except OSError as exc:
            full = exc.errno == errno.ENOSPC
            try:
                self.close("disk full" if full else f"write error: {exc.strerror or exc}")
            except OSError:
                pass
            if not full:
                raise RecordingWriteError(
                    f"writing the recording into {self.out} failed: {exc.strerror or exc} "
                    f"[errno {exc.errno}]; what was flushed before is readable. Record onto "
                    "a disk that works") from None
            raise DiskFull(
                f"the disk holding {self.out} is full; the recording up to the last flush is "
                "readable. Free space or record elsewhere") from None
        return self.close("device stopped")

    @contextmanager
    def _ctrl_c_between_items(self) -> Iterator[None]:
        """Ctrl-C ends the recording between two items of the stream, never inside a read
        of the port: bytes read but not yet decoded would be lost, and the reads that
        follow (the stop command's) would decode a hole — a CRC error, discarded bytes and
        sequence gaps the link never had. A second Ctrl-C interrupts at once. Only where
        Python's own Ctrl-C handling is in force (the main thread, SIGINT not ignored)."""
        self.interrupted = False
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            yield
            return

        def on_ctrl_c(signum: int, frame: object) -> None:
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True

        previous = signal.signal(signal.SIGINT, on_ctrl_c)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _take(self, item: StreamItem) -> str | None:
        """One item of the device's stream; returns why the recording ends, if it does."""
        if isinstance(item, EventBlock):
            self._take_events(item)
            return None
        if not isinstance(item, DataBlock):
            return None
        if self.window is not None and item.stream != self.window.stream:
            return None     # the other stream (e.g. buffered before the mode was set)
        started = self.window is not None and self.window.first_sample is not None
        if not started and self._before_restart(item):
            return None     # sent before the stream was stopped to configure it
        block = self._recorded_columns(item)
        if block is None:
            if self.window is None or self.window.first_sample is None:
                return None    # buffered before the channel mask was set: not recorded
            return "the channel mask changed on the device; recording ended"
        if self.window is None:
            self._follow(block.stream)
        if block.compressed and self._switching:
            block = self._first_coded(block)
            if block is None:
                return None
        if self.window.write(block.first_sample, block.samples):
            return "duration reached"
        if self.learning is not None and not block.compressed \
                and self.learning.take(block.samples):
            self._enter_lossless()
        return None

    def _first_coded(self, block: DataBlock) -> DataBlock | None:
        """The first COMPRESSED block after the switch from the raw start: the sweeps it
        repeats of the last raw slot (a sync block inside that slot, see
        :meth:`Device.switch_to_lossless`) are dropped, they are the same samples; where
        lossless started goes into spikeforge.json."""
        self._switching = False
        window = self.window
        repeated = window.next_sample - block.first_sample \
            if window.next_sample is not None else 0
        if 0 < repeated <= self.config.sweeps_per_frame:
            if repeated >= len(block.samples):
                self._switching = True      # wholly repeated: the next block is the first
                return None
            block = replace(block, first_sample=window.next_sample,
                            samples=block.samples[repeated:])
        self.facts["grid_learning"].update(
            lossless_from_sample=block.first_sample,
            raw_sweeps=block.first_sample - window.first_sample)   # the raw start's cost
        return block

    def _enter_lossless(self) -> None:
        """The grid learned from the raw start: load it and switch to lossless at a sync
        block, or (no grid) stay raw and say why."""
        learning, self.learning = self.learning, None
        grid = learning.learn()
        record = self.facts["grid_learning"]
        if grid is None:
            distinct = len(np.unique(np.concatenate(learning.collected))) \
                if learning.collected else 0
            reason = (f"no value grid in the first {learning.count} sweeps ({distinct} "
                      "distinct values: learn_grid needs at least 6 on one step of 2 or more, "
                      "within the build's grid_bits); the recording stays raw")
            record.update(state="no grid: raw", reason=reason)
            if "code_weights" in self.facts:
                self.facts["code_weights"]["reason"] = "no grid, so no code weights"
            self.facts["mode"] = "raw"      # what the recording holds, not what was asked
            _log.warning("warning: %s", reason)
            return
        self.device.load_grid(grid)
        if self.config.codec_v2.code_weights:
            self._load_code_weights(learning, grid)
        self.device.switch_to_lossless()
        self._switching = True
        self.facts["grid"] = grid.to_dict()
        record.update(state="lossless", lossless_from_sample=None)
        _log.info("value grid learned from %d sweeps (%d-bit, step %.4g); switched to "
                  "lossless", learning.count, grid.bits, grid.step)

    def _load_code_weights(self, learning: GridLearning, grid: ValueGrid) -> None:
        """Learn the code weights from the samples the grid came from and load them (or,
        ``code_weights`` False, switch them off: the device may hold an earlier table)."""
        record = self.facts["code_weights"]
        if not self.code_weights:
            self.device.load_code_weights(None, grid)
            record.update(reason="switched off (record --no-code-weights): WEIGHTS_ON = 0, "
                                 "coded as without code weights")
            return
        weights = learn_code_weights(learning.collected, grid)
        self.device.load_code_weights(weights, grid)
        seconds = learning.count / self.config.sample_rate_hz
        record.update(
            learned_from=f"first {learning.count} sweeps ({seconds:g} s) of this stream",
            loaded=True, codes=len(weights),
            weighted_codes=int(np.count_nonzero(weights != 1 << WEIGHT_UNIT_BITS)),
            sha256=hashlib.sha256(weights.astype(np.uint8).tobytes()).hexdigest(),
            weights=weights.tolist())
        _log.info("code weights learned from the same sweeps (%d of %d codes weighted) and "
                  "loaded", record["weighted_codes"], len(weights))

    def _before_restart(self, block: DataBlock) -> bool:
        """Whether ``block``'s slot started before the device's stream was last restarted
        by this host (:attr:`Device.restarted_at_sweep`, e.g. after the channel mask was
        written): such a block is from before the pause, and the recording starts after it
        (else the pause, slots the device skipped on purpose, would be recorded as a loss).
        Asked only until the recording's first block: after it, a block from earlier means
        the device restarted, which the window turns into an error."""
        restarted_at = getattr(self.device, "restarted_at_sweep", None)
        if restarted_at is None:
            return False
        frame_type = (FrameType.LFP if block.stream == "lfp" else
                      FrameType.COMPRESSED if block.compressed else FrameType.DATA)
        sweep = decided_at_sweep(self.config, frame_type, block.seq)
        return (sweep - restarted_at) % 2**32 >= 2**31

    def _recorded_columns(self, block: DataBlock) -> DataBlock | None:
        """``block`` with the recording's channels as its columns (None: it lacks some)."""
        channels = self.counts.channels
        if block.channels == channels:
            return block
        if block.compressed and set(channels) <= set(block.channels):
            # COMPRESSED blocks carry every channel (the coder ignores the mask): the
            # recording keeps the enabled ones.
            columns = [block.channels.index(c) for c in channels]
            return replace(block, samples=block.samples[:, columns], channels=channels)
        return None

    def _take_events(self, block: EventBlock) -> None:
        """Only the spikes inside the recorded stretch of samples belong to the recording."""
        window = self.window
        if window is None or window.first_sample is None:
            return
        factor = 1
        if window.stream == "lfp":   # decimated sweep d spans source sweeps d*R .. d*R+R-1
            if self.config.lfp is None:
                return
            factor = self.config.lfp.factor
        low = window.first_sample * factor
        high = None if window.end is None else window.end * factor
        inside = tuple(e for e in block.events
                       if low <= e.sample and (high is None or e.sample < high))
        if inside:
            self.sink.write_events(replace(block, events=inside))

    def _flush_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self.last_flush_s < self.flush_interval_s:
            return
        self.sink.flush({"ended": "still recording", "link": link_record(self.device),
                         **self._v2_facts()})
        self.last_flush_s = now
        if self.on_status:
            self.on_status(self.status())

    # -- status and ending --
    def status(self, ended: str | None = None) -> RecordingStatus:
        """Where the recording stands (what the Open Ephys writer has written)."""
        writer, config = self.counts, self.config
        udp = udp_stats(self.device)
        elapsed = time.monotonic() - self.started_s
        recorded_s = writer.sweeps_written / config.sample_rate_hz
        written, lost = writer.bytes_written, writer.samples_lost
        if writer.lfp is not None and config.lfp_rate_hz:
            recorded_s = max(recorded_s, writer.lfp.sweeps_written / config.lfp_rate_hz)
            written += writer.lfp.bytes_written
            lost += writer.lfp.samples_lost
        return RecordingStatus(
            elapsed_s=elapsed, recorded_s=recorded_s,
            duration_s=self.duration_s, bytes_written=written,
            data_rate_bps=written / elapsed if elapsed > 0 else 0.0,
            samples_lost=lost, crc_errors=self.device.stats.crc_errors,
            spikes=writer.spikes_written, ended=ended,
            kernel_drops=udp.kernel_drops if udp is not None else 0,
            queue_drops=udp.host_queue_drops if udp is not None else 0)

    def _v2_facts(self) -> dict[str, Any]:
        """The grid, how it was learned, and the v2 decoder's counters (v2 builds)."""
        facts = dict(self.facts)
        v2 = getattr(self.device, "v2", None)
        if v2 is not None:
            facts["v2_stream"] = {"decoded_sweeps": v2.decoded_sweeps,
                                  "lost_sweeps": v2.lost_sweeps,
                                  "undecoded_sweeps": v2.undecoded_sweeps,
                                  "damaged_sweeps": v2.damaged_sweeps}
        return facts

    def close(self, reason: str) -> RecordingStatus:
        """End the recording: stop the device's stream (not after a device error), close
        every sink with ``reason`` as ``ended``; returns the final status."""
        if self.control and not reason.startswith("device error"):
            try:
                self.device.stop()
            except DeviceError:
                pass     # the recording is what matters; its ending says what happened
        final = self.status(reason)
        self.sink.close({"ended": reason, "link": link_record(self.device),
                         **self._v2_facts()})
        if self.on_status:
            self.on_status(final)
        return final


def record(device: Device, out: Path, *, duration_s: float | None = None,
           flush_interval_s: float = 1.0,
           on_status: Callable[[RecordingStatus], None] | None = None,
           control: bool | None = None, mode: str | None = None,
           channels: "list[int] | tuple[int, ...] | None" = None,
           codebook: Codebook | None = None,
           sinks: "list[Sink] | tuple[Sink, ...]" = (),
           overload: str = "warn", learn_seconds: float = LEARN_SECONDS,
           prior: "RestartPrior | None" = None,
           code_weights: bool = True) -> RecordingStatus:
    """Record from ``device`` into ``out`` until ``duration_s`` of device time (or forever):
    :class:`Recorder` ``.prepare()`` then ``.run()``; the arguments are :class:`Recorder`'s.
    Returns the final status."""
    recorder = Recorder(device, out, duration_s=duration_s, flush_interval_s=flush_interval_s,
                        on_status=on_status, control=control, mode=mode, channels=channels,
                        codebook=codebook, sinks=sinks, overload=overload,
                        learn_seconds=learn_seconds, prior=prior, code_weights=code_weights)
    recorder.prepare()
    return recorder.run()
