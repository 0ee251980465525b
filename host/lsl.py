"""Live streaming of a recording over Lab Streaming Layer (LSL): a recording sink.

BCI software (decoders, stimulus programs, LabRecorder, MNE-LSL viewers) takes live data
from LSL. :class:`LslSink` is a :class:`~spikeforge.host.sinks.Sink` of the recorder: it
receives exactly what the Open Ephys writer receives and pushes it to LSL outlets, so
``spikeforge record --lsl`` records and streams at once and ``spikeforge stream --lsl``
streams without a folder (:class:`~spikeforge.host.recorder.Recorder` with ``out=None``).

Outlets (``name`` is ``spikeforge`` unless given; every outlet's ``source_id`` is the
device's :func:`device_source_id` plus ``/data``, ``/lfp``, ``/spikes`` or ``/markers``, so a
consumer that lost the stream reconnects to the same device, and only to it):

=====================  ========  =============  =========================================
outlet (name, type)    format    rate           one sample
=====================  ========  =============  =========================================
``NAME`` (EEG)         int16     sample rate    one sweep of the recorded channels
``NAME-lfp`` (EEG)     int16     LFP rate       one decimated sweep (mode events+lfp)
``NAME-spikes``        int16     irregular      one detector event: ``channel, peak, pre,
(SpikeEvents)                                   post``, then the snippet (``max_snippet_pre
                                                + 1 + max_snippet_post`` values, the peak at
                                                column ``max_snippet_pre``, zero-padded)
``NAME-markers``       string    irregular      one JSON object: ``start``, ``loss``,
(Markers)                                       ``end`` (below)
=====================  ========  =============  =========================================

Continuous values are the device's int16 counts; ``value * 0.195`` is µV (the desc() says
so per channel: ``label``, ``unit`` microvolts, ``scaling_factor``, ``device_channel``).

Timestamps come from the device's sample counter, not from the packets' arrival: the first
block anchors the device's sweep count to :func:`pylsl.local_clock` (its last sweep is
taken to have been sampled when it arrived), and every later sample, LFP sweep and event is
stamped ``anchor_time + (sweep - anchor_sweep) / sample_rate_hz``, LFP sweep ``d`` as source
sweep ``d * factor``. The spacing is therefore exactly the device's: nothing the host's
scheduling or the link's jitter does moves a timestamp (the device's crystal and the host's
clock drift apart by their ppm error, which this does not correct).

Lost sweeps are never papered over: nothing is pushed for them, so they show as a jump in
the timestamps, and each loss is a ``loss`` marker (``stream``, ``first_sample``,
``sweeps``, ``lost_total``) stamped at the first lost sweep's time. Consumers should not
ask their inlet to dejitter (``proc_dejitter``) these streams: it would smooth the jump
away; ``proc_clocksync`` is right. The ``start`` marker gives the anchor (``stream``,
``first_sample``: the sweep stamped with the marker's time), ``end`` the reason the stream
ended and the loss totals.
"""

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError

from .errors import ExitCode
from .frames import EventBlock
from .openephys import MICROVOLTS_PER_BIT

__all__ = ["LslSink", "LslUnavailable", "device_source_id", "SPIKE_COLUMNS"]

#: The columns of a spike sample before the snippet.
SPIKE_COLUMNS = ("channel", "peak", "pre", "post")

_SAMPLE_COUNTER = 1 << 32    # the events' sample numbers wrap here


class LslUnavailable(SpikeforgeError):
    exit_code = ExitCode.ENVIRONMENT


def _pylsl():
    try:
        import pylsl
    except ImportError as exc:   # pragma: no cover - the extra is installed in development
        raise LslUnavailable(
            f"live streaming needs pylsl ({exc}); install spikeforge's lsl extra: "
            "pip install 'spikeforge[lsl]'") from None
    return pylsl


def device_source_id(config: SystemConfig, port: str) -> str:
    """The LSL ``source_id`` of the device on ``port``: the port as the user named it and a
    digest of the configuration the device reports (its identity), so the same board on the
    same port keeps its id across runs and a different build or port does not."""
    identity = json.dumps(config.to_dict(), sort_keys=True).encode()
    return f"spikeforge:{port}:{hashlib.sha256(identity).hexdigest()[:12]}"


class LslSink:
    """A recording sink that pushes everything it receives to LSL outlets (module docs).

    Made in two steps, because the outlets need what the device reports::

        sink = LslSink()
        recorder = Recorder(device, out_or_None, sinks=[sink])
        recorder.prepare()
        sink.open_for(recorder, port)   # creates the outlets; consumers may connect now
        recorder.run()

    ``clock``: the LSL clock (:func:`pylsl.local_clock`; a test may pass its own).
    """

    def __init__(self, name: str = "spikeforge", *,
                 clock: Callable[[], float] | None = None):
        self.name = name
        self._clock = clock
        self.outlets: dict[str, Any] = {}    # "data", "lfp", "spikes", "markers"
        self.config: SystemConfig | None = None
        self.channels: tuple[int, ...] = ()
        self.source_id = ""
        #: Device sweep and LSL time of the anchor (set by the first continuous block).
        self.anchor_sweep: int | None = None
        self.anchor_time: float | None = None
        self._last_sweep = 0          # latest source sweep seen: unwraps event samples
        self.samples_lost: dict[str, int] = {}
        self.samples_pushed: dict[str, int] = {}
        self.spikes_pushed = 0

    # -- opening --
    def open_for(self, recorder: Any, port: str) -> None:
        """Open the outlets for a prepared :class:`~spikeforge.host.recorder.Recorder`: its
        device's configuration and recorded channels, the continuous stream it follows
        (both, if the device's mode is not known before the first block)."""
        config = recorder.config
        if recorder.window is not None:
            streams: tuple[str, ...] = (recorder.window.stream,)
        else:
            streams = ("data", "lfp") if config.lfp is not None else ("data",)
        self.open(config, recorder.counts.channels, device_source_id(config, port),
                  streams=streams, url=port)

    def open(self, config: SystemConfig, channels: "tuple[int, ...] | list[int]",
             source_id: str, *, streams: tuple[str, ...] = ("data",), url: str = "") -> None:
        """Create the outlets: one per continuous stream in ``streams`` ("data", "lfp"), one
        for the detector's events if its build has the detector, and the markers."""
        pylsl = _pylsl()
        if self._clock is None:
            self._clock = pylsl.local_clock
        self.config, self.channels, self.source_id = config, tuple(channels), source_id
        for stream in streams:
            self.outlets[stream] = pylsl.StreamOutlet(self._continuous_info(stream, url))
            self.samples_lost[stream] = self.samples_pushed[stream] = 0
        if config.detector.enabled:
            self.outlets["spikes"] = pylsl.StreamOutlet(self._spikes_info(url))
        info = pylsl.StreamInfo(f"{self.name}-markers", "Markers", 1, pylsl.IRREGULAR_RATE,
                                pylsl.cf_string, f"{source_id}/markers")
        self._describe_device(info, url)
        self.outlets["markers"] = pylsl.StreamOutlet(info)

    def _rate_hz(self, stream: str) -> float:
        config = self.config
        return float(config.lfp_rate_hz if stream == "lfp" else config.sample_rate_hz)

    def _factor(self, stream: str) -> int:
        """Source sweeps per sweep of ``stream``."""
        return self.config.lfp.factor if stream == "lfp" else 1

    def _describe_device(self, info: Any, url: str) -> Any:
        device = info.desc().append_child("acquisition")
        for key, value in (("manufacturer", "spikeforge"), ("model", self.config.describe()),
                           ("port", url), ("sample_rate_hz", self.config.sample_rate_hz),
                           ("timestamps", "device sample counter, anchored at the first "
                            "block; lost sweeps are not pushed (loss markers)")):
            device.append_child_value(key, str(value))
        return device

    def _continuous_info(self, stream: str, url: str) -> Any:
        pylsl = _pylsl()
        name = self.name if stream == "data" else f"{self.name}-{stream}"
        info = pylsl.StreamInfo(name, "EEG", len(self.channels), self._rate_hz(stream),
                                pylsl.cf_int16, f"{self.source_id}/{stream}")
        device = self._describe_device(info, url)
        device.append_child_value("stream", stream)
        device.append_child_value("decimation_factor", str(self._factor(stream)))
        device.append_child_value("microvolts_per_bit", str(MICROVOLTS_PER_BIT))
        channels = info.desc().append_child("channels")
        for index in self.channels:
            channel = channels.append_child("channel")
            channel.append_child_value("label", f"CH{index + 1}")
            channel.append_child_value("unit", "microvolts")
            channel.append_child_value("scaling_factor", str(MICROVOLTS_PER_BIT))
            channel.append_child_value("type", "LFP" if stream == "lfp" else "EXTRA")
            channel.append_child_value("device_channel", str(index))
        return info

    def _spikes_info(self, url: str) -> Any:
        pylsl = _pylsl()
        detector = self.config.detector
        width = detector.max_snippet_pre + 1 + detector.max_snippet_post
        info = pylsl.StreamInfo(f"{self.name}-spikes", "SpikeEvents", len(SPIKE_COLUMNS) + width,
                                pylsl.IRREGULAR_RATE, pylsl.cf_int16, f"{self.source_id}/spikes")
        device = self._describe_device(info, url)
        device.append_child_value("microvolts_per_bit", str(MICROVOLTS_PER_BIT))
        device.append_child_value("peak_column", str(detector.max_snippet_pre))
        columns = info.desc().append_child("channels")
        names = [*SPIKE_COLUMNS, *(f"snippet{i - detector.max_snippet_pre:+d}"
                                   for i in range(width))]
        for label in names:
            columns.append_child("channel").append_child_value("label", label)
        return info

    # -- the clock --
    def _require_open(self) -> None:
        if not self.outlets:
            raise RuntimeError("LslSink.open (or open_for) must be called before the "
                               "recording runs: the outlets need the device's configuration")

    def _anchor(self, stream: str, first_sample: int, sweeps: int) -> None:
        """The first block: its last sweep was sampled about now."""
        factor = self._factor(stream)
        self.anchor_sweep = first_sample * factor
        end_time = self._clock()
        self.anchor_time = end_time - (sweeps - 1) * factor / self.config.sample_rate_hz
        self._mark({"event": "start", "stream": stream, "first_sample": first_sample,
                    "source_sweep": self.anchor_sweep}, self.anchor_time)

    def times(self, source_sweeps: np.ndarray) -> np.ndarray:
        """LSL times of device (source) sweeps."""
        offsets = np.asarray(source_sweeps, dtype=np.int64) - self.anchor_sweep
        return self.anchor_time + offsets / float(self.config.sample_rate_hz)

    def _mark(self, marker: dict[str, Any], stamp: float) -> None:
        self.outlets["markers"].push_sample([json.dumps(marker)], stamp)

    # -- as a recording sink --
    def write_continuous(self, stream: str, first_sample: int, samples: np.ndarray) -> None:
        self._require_open()
        if not len(samples):
            return
        if self.anchor_time is None:
            self._anchor(stream, first_sample, len(samples))
        factor = self._factor(stream)
        sweeps = (first_sample + np.arange(len(samples), dtype=np.int64)) * factor
        self._last_sweep = int(sweeps[-1])
        outlet = self.outlets.get(stream)
        if outlet is None:
            raise ValueError(f"no LSL outlet for the {stream} stream; open the sink with "
                             f"streams=(..., {stream!r})")
        outlet.push_chunk(np.ascontiguousarray(samples, dtype=np.int16),
                          self.times(sweeps).tolist())
        self.samples_pushed[stream] += len(samples)

    def write_loss(self, stream: str, first_sample: int, sweeps: int) -> None:
        """Nothing is pushed for lost sweeps: the timestamps jump, and a marker says so."""
        self._require_open()
        self.samples_lost[stream] = self.samples_lost.get(stream, 0) + sweeps
        if self.anchor_time is None:
            return     # cannot happen through StreamWindow: a loss follows a block
        self._mark({"event": "loss", "stream": stream, "first_sample": first_sample,
                    "sweeps": sweeps, "lost_total": self.samples_lost[stream]},
                   float(self.times(np.array([first_sample * self._factor(stream)]))[0]))

    def write_events(self, block: EventBlock) -> None:
        self._require_open()
        outlet = self.outlets.get("spikes")
        if outlet is None or not block.events or self.anchor_time is None:
            return
        detector = self.config.detector
        width = detector.max_snippet_pre + 1 + detector.max_snippet_post
        rows = np.zeros((len(block.events), len(SPIKE_COLUMNS) + width), dtype=np.int16)
        sweeps = np.empty(len(block.events), dtype=np.int64)
        for row, event in enumerate(block.events):
            rows[row, :4] = (event.channel, event.peak, event.pre, event.post)
            start = len(SPIKE_COLUMNS) + detector.max_snippet_pre - event.pre
            rows[row, start:start + len(event.snippet)] = event.snippet
            sweeps[row] = self._unwrap(event.sample)
        outlet.push_chunk(rows, self.times(sweeps).tolist())
        self.spikes_pushed += len(block.events)

    def _unwrap(self, sample: int) -> int:
        """An event's sample number (wrapping at 2**32) as the source sweep nearest the
        latest one streamed."""
        half = _SAMPLE_COUNTER // 2
        return self._last_sweep + (sample - self._last_sweep + half) % _SAMPLE_COUNTER - half

    def flush(self, facts: dict[str, Any]) -> None:
        pass     # every push is sent at once (pushthrough)

    def close(self, facts: dict[str, Any]) -> None:
        """The end marker. The outlets stay until :meth:`release`, so that what was pushed
        last still reaches the consumers."""
        if "markers" in self.outlets:
            self._mark({"event": "end", "ended": facts.get("ended"),
                        "samples_lost": dict(self.samples_lost),
                        "samples_pushed": dict(self.samples_pushed),
                        "spikes_pushed": self.spikes_pushed}, self._clock())

    def release(self, linger_s: float = 0.0) -> None:
        """Destroy the outlets (consumers see the streams go), after ``linger_s`` seconds for
        the last samples to leave."""
        if linger_s > 0 and self.outlets:
            time.sleep(linger_s)
        self.outlets.clear()
