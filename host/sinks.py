"""Where a recording's decoded stream goes: sinks, and the window that cuts each stream.

The recorder decodes the device's stream once and hands every consumer the same calls, in
the same order, through the :class:`Sink` protocol: the Open Ephys writer
(:class:`~spikeforge.host.openephys.OpenEphysWriter`) is one sink; another consumer (a live
LSL outlet, a test's list) plugs in without touching the recorder's loop.

A continuous stream reaches a sink without holes: from the recording's first sweep of that
stream to its last, every sweep arrives either in a ``write_continuous`` block or in a
``write_loss`` (sweeps that never arrived, which the sink may zero-fill or mark). The
:class:`StreamWindow` of each stream makes it so, and cuts the stream at the recording's
duration, the same way for the full-rate stream and for the LFP stream.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import DeviceRestarted
from .frames import EventBlock

__all__ = ["Sink", "FanOut", "StreamWindow", "Tally"]


@runtime_checkable
class Sink(Protocol):
    """A consumer of a recording. ``stream`` names a continuous stream as
    :attr:`DataBlock.stream <spikeforge.host.frames.DataBlock.stream>` does: ``"data"`` (the
    full-rate stream, sample numbers count device sweeps) or ``"lfp"`` (the decimated stream
    of mode events+lfp, sample numbers count decimated sweeps)."""

    def write_continuous(self, stream: str, first_sample: int, samples: np.ndarray) -> None:
        """Sweeps ``first_sample ..`` of ``stream`` (sweeps x recorded channels, int16)."""

    def write_loss(self, stream: str, first_sample: int, sweeps: int) -> None:
        """Sweeps ``first_sample .. first_sample + sweeps - 1`` of ``stream`` never arrived."""

    def write_events(self, block: EventBlock) -> None:
        """Detector events inside the recorded stretch (source sweep numbers)."""

    def flush(self, facts: dict[str, Any]) -> None:
        """At least every flush interval: make what was written durable. ``facts``: the
        recording's state (``ended``: "still recording", ``link``: the link counters)."""

    def close(self, facts: dict[str, Any]) -> None:
        """The recording ended (``facts["ended"]`` says why); nothing follows."""


class FanOut:
    """Several sinks as one: every call goes to each, in order. ``close`` reaches every sink
    even if one fails (the first failure is raised afterwards)."""

    def __init__(self, sinks: "list[Sink] | tuple[Sink, ...]"):
        for sink in sinks:
            if not isinstance(sink, Sink):
                raise TypeError(
                    f"a recording sink must have the methods of spikeforge.host.sinks.Sink "
                    f"(write_continuous, write_loss, write_events, flush, close), not "
                    f"{type(sink).__name__}")
        self.sinks = tuple(sinks)

    def write_continuous(self, stream: str, first_sample: int, samples: np.ndarray) -> None:
        for sink in self.sinks:
            sink.write_continuous(stream, first_sample, samples)

    def write_loss(self, stream: str, first_sample: int, sweeps: int) -> None:
        for sink in self.sinks:
            sink.write_loss(stream, first_sample, sweeps)

    def write_events(self, block: EventBlock) -> None:
        for sink in self.sinks:
            sink.write_events(block)

    def flush(self, facts: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.flush(facts)

    def close(self, facts: dict[str, Any]) -> None:
        failure: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close(facts)
            except Exception as exc:   # noqa: BLE001 - close the others, then raise it
                failure = failure or exc
        if failure is not None:
            raise failure


@dataclass
class StreamWindow:
    """The stretch of one continuous stream that belongs to the recording: from the first
    block written to ``first_sample + length`` (``length`` None: no end). It passes blocks
    on to ``sink`` trimmed to the window, turns every gap into a ``write_loss``, and at the
    end cuts the stream off: sweeps up to the end that never arrived are a loss too, so the
    stream always reaches its duration."""

    stream: str
    sink: Sink
    length: int | None
    first_sample: int | None = field(default=None, init=False)
    next_sample: int | None = field(default=None, init=False)

    @property
    def end(self) -> int | None:
        """Sample number just past the window (None: before the first block, or no end)."""
        if self.first_sample is None or self.length is None:
            return None
        return self.first_sample + self.length

    @property
    def full(self) -> bool:
        """The stream has reached the end of the window."""
        return self.end is not None and self.next_sample is not None \
            and self.next_sample >= self.end

    def write(self, first_sample: int, samples: np.ndarray) -> bool:
        """Pass on a block of the stream (its sweeps inside the window); returns ``full``."""
        if self.first_sample is None:
            self.first_sample = self.next_sample = first_sample
        if first_sample < self.next_sample:
            # The decoder drops late and duplicate frames, so only a device that started
            # numbering afresh gets here: the recording cannot go on in one time base.
            raise DeviceRestarted(
                f"the device restarted: its {self.stream} stream went back from sweep "
                f"{self.next_sample} to {first_sample}; the recording ends there. Record "
                "again after the reset")
        end = self.end
        if end is not None and first_sample >= end:
            self.cut_off()
            return True
        self._lost_until(first_sample)
        kept = samples[:None if end is None else end - first_sample]
        self.sink.write_continuous(self.stream, first_sample, kept)
        self.next_sample = first_sample + len(kept)
        return self.full

    def cut_off(self) -> None:
        """The stream's end: whatever of the window has not arrived is lost."""
        if self.end is not None:
            self._lost_until(self.end)

    def _lost_until(self, sample: int) -> None:
        if self.next_sample is not None and sample > self.next_sample:
            self.sink.write_loss(self.stream, self.next_sample, sample - self.next_sample)
            self.next_sample = sample


@dataclass
class StreamTally:
    """The counters of one continuous stream, as a writer keeps them (lost sweeps count as
    sweeps of the stream: it has no holes)."""

    channels: int
    sweeps_written: int = 0
    samples_lost: int = 0

    @property
    def bytes_written(self) -> int:
        return self.sweeps_written * self.channels * 2


class Tally:
    """A sink that only counts, with the Open Ephys writer's counters (``channels``,
    ``sweeps_written``, ``samples_lost``, ``bytes_written``, ``spikes_written``, ``lfp``): what
    the recorder reports on when nothing is written to disk (sinks only, e.g. live
    streaming)."""

    def __init__(self, channels: "tuple[int, ...] | list[int]"):
        self.channels = tuple(channels)
        self.main = StreamTally(len(self.channels))
        self.lfp: StreamTally | None = None    # created by the first block of "lfp"
        self.spikes_written = 0

    @property
    def sweeps_written(self) -> int:
        return self.main.sweeps_written

    @property
    def samples_lost(self) -> int:
        return self.main.samples_lost

    @property
    def bytes_written(self) -> int:
        return self.main.bytes_written

    def _stream(self, stream: str) -> StreamTally:
        if stream != "lfp":
            return self.main
        if self.lfp is None:
            self.lfp = StreamTally(len(self.channels))
        return self.lfp

    def write_continuous(self, stream: str, first_sample: int, samples: np.ndarray) -> None:
        self._stream(stream).sweeps_written += len(samples)

    def write_loss(self, stream: str, first_sample: int, sweeps: int) -> None:
        tally = self._stream(stream)
        tally.sweeps_written += sweeps
        tally.samples_lost += sweeps

    def write_events(self, block: EventBlock) -> None:
        self.spikes_written += len(block.events)

    def flush(self, facts: dict[str, Any]) -> None:
        pass

    def close(self, facts: dict[str, Any]) -> None:
        pass
