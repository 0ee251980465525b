"""Records a device to an Open Ephys binary folder, with a live status and a clean ending.

The recording always ends readable: on the requested duration, Ctrl-C, a device that
disappears or goes silent, and a full disk alike, the files are flushed and closed and the
reason is written into ``spikeforge.json``. While recording, everything is flushed at
least every ``flush_interval_s`` (1 s), so even after ``kill -9`` all but the last second
is readable.
"""

import errno
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from spikeforge.firmware.compression import Codebook
from spikeforge.firmware.errors import SpikeforgeError

from .device import Device, DeviceError, DeviceNoControl, RegisterRefused
from .frames import DataBlock, EventBlock
from .openephys import OpenEphysWriter

__all__ = ["RecordingStatus", "record", "DiskFull", "RecordingModeError", "RECORDABLE_MODES"]


class DiskFull(SpikeforgeError):
    exit_code = 6


class RecordingModeError(SpikeforgeError):
    exit_code = 2


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
                f"lost {self.samples_lost} sweeps  CRC errors {self.crc_errors}")


def record(device: Device, out: Path, *, duration_s: float | None = None,
           flush_interval_s: float = 1.0,
           on_status: Callable[[RecordingStatus], None] | None = None,
           control: bool | None = None, mode: str | None = None,
           channels: "list[int] | tuple[int, ...] | None" = None,
           codebook: Codebook | None = None) -> RecordingStatus:
    """Record from ``device`` into ``out`` until ``duration_s`` of device time (or forever).

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

    ``codebook``: load it into the device's coder first (``codec.codebook`` builds, needs
    the control path; the device is switched to raw for it if it is lossless, see
    :meth:`Device.load_codebook`); COMPRESSED frames are decoded with it, and it is kept in
    ``spikeforge.json``.

    Raises the device error or :class:`DiskFull` after closing the recording; a
    ``KeyboardInterrupt`` ends the recording normally with ``ended="interrupted"``.
    """
    config = device.identify()
    if control is None:
        control = device.supports_control()
    if codebook is not None:
        if not control:
            raise DeviceNoControl(
                f"loading a codebook needs the device's control path, and {device.url} does "
                "not answer commands; record without a codebook")
        if device.mode() == "lossless":
            device.set_mode("raw")   # the device takes a codebook only outside lossless
        device.load_codebook(codebook)
    if mode is not None:
        if mode not in RECORDABLE_MODES:
            raise RecordingModeError(
                f"the recorder records continuous samples: mode must be one of "
                f"{', '.join(RECORDABLE_MODES)}, not {mode!r} (mode events carries no "
                "continuous stream; record events+lfp on a build with SystemConfig.lfp)")
        if not control:
            raise DeviceNoControl(
                f"recording in bandwidth mode {mode!r} needs the device's control path, and "
                f"{device.url} does not answer commands; record without --mode")
        device.set_mode(mode)
    if channels is not None and not control:
        raise DeviceNoControl(
            "recording chosen channels needs a device that answers commands (the channel "
            "mask is set through its registers); record every channel, or use a build with "
            "the control path")
    if control:
        # The channel mask: set it, or learn the one in force.
        if channels is not None:
            device.stop()
            device.set_channel_mask(channels)
        else:
            try:
                device.read_channel_mask()
            except RegisterRefused:
                pass    # a bitstream older than the channel mask: every channel
        device.start()
    enabled = device.enabled_channels or config.enabled_channels
    in_force = mode or (device.mode() if control else None)
    writer = OpenEphysWriter(out, config, {"port": device.url, "control": control,
                                           "mode": in_force or "as streamed",
                                           **({"codebook": codebook.to_dict()}
                                              if codebook is not None else {})},
                             channels=enabled)
    started = time.monotonic()
    last_flush = started
    target_sweeps = None if duration_s is None else round(duration_s * config.sample_rate_hz)
    end: int | None = None  # device sweep at which to stop, once the first block is seen
    # -- LFP (mode events+lfp): the stream the recording follows, set by its first block --
    # (frames of the other stream buffered before the mode was set are not recorded)
    following: str | None = (None if in_force is None
                             else "lfp" if in_force == "events+lfp" else "data")
    lfp_end: int | None = None  # decimated sweep at which to stop

    def status(ended: str | None = None) -> RecordingStatus:
        elapsed = time.monotonic() - started
        recorded_s = writer.sweeps_written / config.sample_rate_hz
        written, lost = writer.bytes_written, writer.samples_lost
        if writer.lfp is not None and config.lfp_rate_hz:
            recorded_s = max(recorded_s, writer.lfp.sweeps_written / config.lfp_rate_hz)
            written += writer.lfp.bytes_written
            lost += writer.lfp.samples_lost
        return RecordingStatus(
            elapsed_s=elapsed, recorded_s=recorded_s,
            duration_s=duration_s, bytes_written=written,
            data_rate_bps=written / elapsed if elapsed > 0 else 0.0,
            samples_lost=lost, crc_errors=device.stats.crc_errors,
            spikes=writer.spikes_written, ended=ended)

    def event_window() -> tuple[int, int | None] | None:
        """The source sweeps the recorded stretch covers (None: nothing recorded yet)."""
        if following == "lfp":
            if writer.lfp is None or writer.lfp.first_sample is None or config.lfp is None:
                return None
            factor = config.lfp.factor
            return (writer.lfp.first_sample * factor,
                    None if lfp_end is None else lfp_end * factor)
        if writer.first_sample is None:
            return None
        return writer.first_sample, end

    def finish(reason: str) -> RecordingStatus:
        if control and not reason.startswith("device error"):
            try:
                device.stop()
            except DeviceError:
                pass     # the recording is what matters; its ending says what happened
        final = status(reason)
        writer.update_metadata(ended=reason, link=asdict(device.stats),
                               samples_lost=writer.samples_lost,
                               sweeps=writer.sweeps_written, spikes=writer.spikes_written)
        if writer.lfp is not None:
            writer.update_metadata(lfp_sweeps=writer.lfp.sweeps_written,
                                   lfp_samples_lost=writer.lfp.samples_lost)
        writer.close()
        if on_status:
            on_status(final)
        return final

    try:
        for item in device.items():
            window = event_window()
            if isinstance(item, EventBlock) and window is not None:
                # Only the spikes inside the recorded stretch of samples belong to it.
                low, high = window
                inside = tuple(e for e in item.events if low <= e.sample
                               and (high is None or e.sample < high))
                writer.write_events(replace(item, events=inside))
            if isinstance(item, DataBlock) and item.stream == "lfp":
                if item.channels != writer.channels:
                    continue   # buffered before the channel mask was set: not recorded
                if following is None:
                    following = "lfp"
                if following != "lfp":
                    continue   # the mode changed to events+lfp: not this recording's
                if writer.lfp is None:   # the recording's first LFP block
                    lfp_end = (None if duration_s is None or config.lfp_rate_hz is None
                               else item.first_sample + round(duration_s * config.lfp_rate_hz))
                if lfp_end is not None and item.first_sample >= lfp_end:
                    return finish("duration reached")
                writer.write_lfp(item.first_sample, item.samples[
                    :None if lfp_end is None else lfp_end - item.first_sample])
                if (lfp_end is not None and writer.lfp is not None
                        and writer.lfp.next_sample is not None
                        and writer.lfp.next_sample >= lfp_end):
                    return finish("duration reached")
            elif isinstance(item, DataBlock) and following != "lfp":
                following = "data"
                if (item.compressed and item.channels != writer.channels
                        and set(writer.channels) <= set(item.channels)):
                    # COMPRESSED blocks carry every channel (the coder ignores the mask):
                    # the recording keeps the enabled ones.
                    columns = [item.channels.index(c) for c in writer.channels]
                    item = replace(item, samples=item.samples[:, columns],
                                   channels=writer.channels)
                if item.channels != writer.channels:   # the channel mask changed
                    if writer.first_sample is None:
                        continue    # buffered before the mask was set: not recorded
                    return finish("the channel mask changed on the device; recording ended")
                if writer.first_sample is None:
                    end = None if target_sweeps is None else item.first_sample + target_sweeps
                if end is not None and item.first_sample >= end:
                    writer.skip_to(end)
                    return finish("duration reached")
                writer.write(item.first_sample, item.samples[:None if end is None
                                                             else end - item.first_sample])
                if end is not None and writer.next_sample >= end:
                    return finish("duration reached")
            now = time.monotonic()
            if now - last_flush >= flush_interval_s:
                writer.update_metadata(link=asdict(device.stats), ended="still recording")
                writer.flush()
                last_flush = now
                if on_status:
                    on_status(status())
    except KeyboardInterrupt:
        return finish("interrupted")
    except DeviceError as exc:
        finish(f"device error: {exc}")
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            try:
                finish("disk full")
            except OSError:
                pass
            raise DiskFull(
                f"the disk holding {out} is full; the recording up to the last flush is "
                "readable. Free space or record elsewhere") from None
        raise
    return finish("device stopped")
