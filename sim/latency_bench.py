"""``spikeforge bench latency``: spike at the ADC input to its event decoded on the host.

The virtual board (:mod:`spikeforge.sim.virtual_board`) runs the acquisition system with the
detector; its test source is the ADC, and the golden model
(:func:`spikeforge.sim.models.source.source_signal`) knows every spike it puts in. The
harness logs, for every byte it hands the host, the simulated cycle its last bit reaches the
host's end of the link (``--byte-log``). The bench connects to the board like the host
driver (TCP, the host's :class:`~spikeforge.host.frames.StreamDecoder`), switches the board
to events-only (``BANDWIDTH_MODE`` = events, what a closed loop records) unless told
otherwise, and for every event that matches a true spike (same channel, peak within
:data:`MATCH_SWEEPS`) splits its latency into:

device
    From the spike's trough leaving the ADC (the source emits sample (n, c) at cycle
    ``n * cycles_per_sample + c + TestSource.LATENCY``) to the first byte of its EVENTS
    frame leaving the device for the link: conditioning, detection (the detector decides
    some sweeps after the trough), the event queue and the framer, and any frame the
    EVENTS frame waits behind. Simulated time: the design's cycles.
link
    From that first byte leaving to the frame's last byte reaching the host's end of the
    link (the UART's byte time for each byte, or the bit-level UART's stop bit). Simulated.
host
    Wall time on this machine from the chunk holding the frame's last byte being read from
    the socket to the :class:`~spikeforge.host.frames.EventBlock` returned by the host's
    decoder (parsing, CRC, decoding). Not included: the operating system's USB/serial
    delivery (for an FTDI bridge its latency timer, ``docs/recording.md``).
"""

import math
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikeforge.firmware.bandwidth import BandwidthMode
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.control_protocol import CommandOp, encode_command
from spikeforge.firmware.detection import DetectorConfig
from spikeforge.firmware.registers import register
from spikeforge.firmware.wire import DATA_FRAME_OVERHEAD_BYTES, FrameType
from spikeforge.host.frames import EventBlock, FrameParser, StreamDecoder

__all__ = ["LatencyResult", "measure_latency", "latency_config", "MATCH_SWEEPS",
           "format_result", "add_arguments", "run", "CLOSED_LOOP_DETECTOR"]

#: Largest distance, in sweeps, between an event's sample and a true spike's trough on the
#: same channel for the event to count as that spike (the conditioner's filters shift the
#: peak by a sweep or two).
MATCH_SWEEPS = 8
#: Sweeps at the start of a run whose spikes are not scored (the detector's noise estimate
#: settles).
WARM_UP_S = 0.05


#: A detector set for closed loops: the event goes as soon as the trough is confirmed
#: (``align_samples`` 4) with a short snippet (4 before, 2 after the peak), instead of the
#: default's 8-sample alignment and 16 samples after the peak (0.8 ms of waiting at 30 kS/s).
CLOSED_LOOP_DETECTOR = DetectorConfig(enabled=True, align_samples=4, snippet_pre=4,
                                      snippet_post=2)


def latency_config(channels: int = 32, *, baud: int = 3_000_000,
                   clock_hz: int = 12_000_000, closed_loop: bool = True) -> SystemConfig:
    """The board the bench measures by default: the test source, the detector built
    (:data:`CLOSED_LOOP_DETECTOR`, or with ``closed_loop=False`` the default detector), a
    UART at ``baud`` from a ``clock_hz`` board clock."""
    detector = CLOSED_LOOP_DETECTOR if closed_loop else DetectorConfig(enabled=True)
    return SystemConfig(channels=channels, clock_hz=clock_hz, baud=baud, detector=detector)


@dataclass
class LatencyResult:
    """Latencies in seconds, one entry per matched event."""

    config: SystemConfig
    link: str
    model: str
    device_s: np.ndarray
    link_s: np.ndarray
    host_s: np.ndarray
    #: The device part split by the golden models (seconds per matched event, same order as
    #: ``device_s``; :data:`SPLIT_PARTS`): trough at the ADC to the detector's decision, to
    #: the snippet's completion (its last post sample in the ring), to the event's first word
    #: readable in the detector's buffer (the copier), to its frame's first byte leaving the
    #: device (the serializer: waiting behind earlier frames on the link).
    split: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per matched event, the EVENTS frames still leaving when its first word was readable
    #: (the frames it queued behind).
    frames_ahead: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: Per matched event, the events the detector decided within one sweep of it (itself
    #: included): the burst it came in.
    burst: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: Events the golden model's detector decides after the warm-up and up to the last
    #: event received, and how many of them never reached the host (dropped whole at the
    #: detector's admission: its event queue or buffer was full).
    decided: int = 0
    lost: int = 0
    events: int = 0
    matched: int = 0
    true_spikes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def event_frame_s(self) -> float:
        """The link time of one EVENTS frame of one event (the closed-loop figure's unit)."""
        return float(np.median(self.link_s)) if len(self.link_s) else math.nan

    @property
    def device_and_link_s(self) -> np.ndarray:
        return self.device_s + self.link_s

    @property
    def total_s(self) -> np.ndarray:
        return self.device_s + self.link_s + self.host_s

    def summary(self) -> dict[str, dict[str, float]]:
        """Median, p99 and max of each part, in milliseconds."""
        parts = {"device": self.device_s, "link": self.link_s, "host": self.host_s,
                 "device+link": self.device_and_link_s, "total": self.total_s}
        return {name: _stats_ms(values) for name, values in parts.items()}


def _stats_ms(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"median": math.nan, "p99": math.nan, "max": math.nan}
    return {"median": 1e3 * float(np.median(values)),
            "p99": 1e3 * float(np.percentile(values, 99)),
            "max": 1e3 * float(np.max(values))}


def measure_latency(config: SystemConfig, *, seconds: float = 0.5, mode: str = "events",
                    bit_level: bool = False) -> LatencyResult:
    """Run the virtual board of ``config`` (UART link, test source, detector built) for
    ``seconds`` of device time and measure every detected spike's latency (module
    docstring). ``mode``: "events" (events-only stream) or "raw" (DATA frames too: events
    wait behind them)."""
    from spikeforge.firmware.errors import ConfigError
    from spikeforge.hdl.source import TestSource
    from spikeforge.sim.models.source import source_signal
    from spikeforge.sim.virtual_board import VirtualBoard, design_config

    if config.link != "uart" or config.source != "test" or not config.detector.enabled:
        raise ConfigError("the latency bench measures a UART board with the test source and "
                          "the detector built (detector.enabled)")
    if mode not in ("events", "raw"):
        raise ConfigError(f"mode must be events or raw, not {mode!r}")
    design = design_config(config, bit_level=bit_level)
    cycles = int(seconds * design.clock_hz)
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "bytes.u64"
        board = VirtualBoard.start(config, cycles=cycles, byte_log=log_path,
                                   bit_level=bit_level, realtime=False)
        try:
            received, frames, host_s = _host_side(board.url, mode)
        finally:
            board.stop(timeout_s=30)
        arrivals = np.fromfile(log_path, dtype="<u8")
    if len(arrivals) != received:
        raise RuntimeError(f"the board logged {len(arrivals)} bytes but the host received "
                           f"{received}")
    # a link byte's time in the simulated clock's cycles (board cycles_per_byte, scaled)
    byte_cycles = config.cycles_per_byte * design.clock_hz / config.clock_hz
    sweeps = int(seconds * config.sample_rate_hz) + 1
    # the harness runs whole batches of cycles past ``cycles``: the truth covers them
    truth = source_signal(config, sweeps + sweeps // 8 + 64)
    cycles_per_sample = design.cycles_per_sample
    event_frames = list(_event_frames(frames, host_s))
    timing = _ModelTiming(design, truth.samples, [block for _, _, block, _ in event_frames])
    # the cycle each EVENTS frame's last byte left the device
    last_byte = np.array([arrivals[end - 1] - byte_cycles for _, end, _, _ in event_frames])
    device, link, host = [], [], []
    split: dict[str, list[float]] = {name: [] for name in SPLIT_PARTS}
    frames_ahead, burst = [], []
    events = matched = 0
    first_scored = int(WARM_UP_S * config.sample_rate_hz)
    for position, (start, end, block, host_latency) in enumerate(event_frames):
        departure = arrivals[start] - byte_cycles
        arrival = arrivals[end - 1]
        for event in block.events:
            events += 1
            milestones = timing.next_event()
            peaks = truth.spike_peaks(event.channel)
            if len(peaks) == 0:
                continue
            nearest = peaks[np.argmin(np.abs(peaks - event.sample))]
            if abs(int(nearest) - event.sample) > MATCH_SWEEPS or nearest < first_scored:
                continue
            matched += 1
            at_adc = nearest * cycles_per_sample + event.channel + TestSource.LATENCY
            device.append((departure - at_adc) / design.clock_hz)
            link.append((arrival - departure) / design.clock_hz)
            host.append(host_latency)
            if milestones is None:
                continue
            decided, complete, readable, decided_sweep, neighbours = milestones
            points = [at_adc, decided, max(decided, complete), readable, departure]
            for name, (a, b) in zip(SPLIT_PARTS, zip(points, points[1:]), strict=True):
                split[name].append((b - a) / design.clock_hz)
            frames_ahead.append(int((last_byte[:position] >= readable).sum()))
            burst.append(neighbours)
    true_spikes = sum(int(((p >= first_scored) & (p < sweeps - 1)).sum())
                      for p in (truth.spike_peaks(c) for c in range(config.channels)))
    model = ("direct-link board" if design is not config
             else "bit-level board")
    result = LatencyResult(config, "UART", model, np.array(device), np.array(link),
                           np.array(host), split={k: np.array(v) for k, v in split.items()},
                           frames_ahead=np.array(frames_ahead, dtype=np.int64),
                           burst=np.array(burst, dtype=np.int64), events=events,
                           matched=matched, true_spikes=true_spikes)
    result.decided, result.lost = timing.losses(first_scored)
    if timing.unmatched:
        result.notes.append(f"{timing.unmatched} received events not found in the golden "
                            "model's detection (device part not split for them)")
    return result


#: The device part's pieces, in order (:attr:`LatencyResult.split`).
SPLIT_PARTS = ("decision", "snippet", "copier", "serializer")


class _ModelTiming:
    """The golden models' cycles of every received event, in the order received: the
    detector's decision (:func:`~spikeforge.sim.models.detector.device_events`), its
    snippet's completion, and its first word readable in the detector's buffer (the
    copier takes events in order, one at a time, once decided and complete:
    :class:`~spikeforge.sim.models.detector.EventOutput`). Only received events were
    admitted, so only they occupy the copier."""

    def __init__(self, design: SystemConfig, samples: np.ndarray, blocks: list):
        from spikeforge.firmware.detection import EVENT_HEADER_WORDS
        from spikeforge.hdl.source import TestSource
        from spikeforge.sim.models.detector import device_events

        model = device_events(design, samples, TestSource.LATENCY)
        found = model.events
        index = {(int(s), int(c)): i for i, (s, c) in enumerate(zip(found.sweep, found.channel,
                                                                       strict=True))}
        self.unmatched = 0
        self._milestones: list = []
        idle_from = 0
        for block in blocks:
            for event in block.events:
                i = index.get((event.sample, event.channel))
                if i is None:
                    self.unmatched += 1
                    self._milestones.append(None)
                    continue
                emit, complete = int(model.emit_cycle[i]), int(model.complete_cycle[i])
                words = EVENT_HEADER_WORDS + 1 + found.pre + found.post
                take = max(emit + 1, idle_from, complete)
                idle_from = take + words + 1
                sweep = int(found.emit_sweep[i])
                neighbours = int((np.abs(found.emit_sweep - sweep) <= 1).sum())
                # word 0 is written in take + 1, readable by the serializer from take + 2
                self._milestones.append((emit, complete, take + 2, sweep, neighbours))
        self._next = iter(self._milestones)
        self._model = model
        self._received = {(e.sample, e.channel) for b in blocks for e in b.events}

    def losses(self, first_sweep: int) -> tuple[int, int]:
        """(events decided from ``first_sweep`` to the last one received, of them not
        received). Events are admitted in the order decided, so a decided event before a
        received one that is not received was dropped."""
        found = self._model.events
        last = max((int(self._model.emit_cycle[i]) for i in range(len(found))
                    if (int(found.sweep[i]), int(found.channel[i])) in self._received),
                   default=-1)
        window = [i for i in range(len(found))
                  if found.emit_sweep[i] >= first_sweep and self._model.emit_cycle[i] <= last]
        lost = sum(1 for i in window
                   if (int(found.sweep[i]), int(found.channel[i])) not in self._received)
        return len(window), lost

    def next_event(self):
        return next(self._next)


def _host_side(url: str, mode: str) -> tuple[int, list, list]:
    """Connect like the host, set the mode, read to the end; (bytes received, the frames
    with their byte ranges, per chunk decode timings)."""
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    parser = FrameParser()
    decoder = StreamDecoder()
    frames: list[tuple[int, int, object]] = []
    decoded: list[tuple[EventBlock, float]] = []
    offset = 0
    received = 0
    with socket.create_connection((host, int(port))) as client:
        code = BandwidthMode.EVENTS if mode == "events" else BandwidthMode.RAW
        client.sendall(encode_command(1, register("BANDWIDTH_MODE").address, CommandOp.WRITE,
                                      int(code)))
        while chunk := client.recv(1 << 16):
            read_at = time.perf_counter()
            items = decoder.feed(chunk)
            done = time.perf_counter()
            received += len(chunk)
            decoded += [(item, done - read_at) for item in items
                        if isinstance(item, EventBlock)]
            for frame in parser.feed(chunk):
                length = DATA_FRAME_OVERHEAD_BYTES + len(frame.payload)
                frames.append((offset, offset + length, frame))
                offset += length
    if parser.stats.bytes_discarded or parser.stats.crc_errors:
        raise RuntimeError(f"the link was not clean ({parser.stats}); byte offsets unknown")
    return received, frames, decoded


def _event_frames(frames: list, decoded: list):
    """(first byte, end, EventBlock, host seconds) of every EVENTS frame, in order."""
    blocks = iter(decoded)
    for start, end, frame in frames:
        if frame.type == FrameType.EVENTS:
            block, host_s = next(blocks)
            if block.seq != frame.seq:
                raise RuntimeError("the host's decoder and the frame parser disagree")
            yield start, end, block, host_s


def format_result(result: LatencyResult) -> str:
    """A small table: median, p99, max of each part in milliseconds."""
    lines = [f"{result.config.describe()} over {result.link} ({result.model}): "
             f"{result.matched} of {result.events} events matched to {result.true_spikes} "
             f"true spikes; the detector dropped {result.lost} of the {result.decided} events "
             "it decided (its queue or buffer full)"]
    lines.append(f"  {'part':<12} {'median ms':>10} {'p99 ms':>10} {'max ms':>10}")
    for name, stats in result.summary().items():
        lines.append(f"  {name:<12} {stats['median']:>10.3f} {stats['p99']:>10.3f} "
                     f"{stats['max']:>10.3f}")
    if result.split:
        lines.append("  device, split by the golden models:")
        for name, values in result.split.items():
            stats = _stats_ms(values)
            lines.append(f"    {name:<10} {stats['median']:>10.3f} {stats['p99']:>10.3f} "
                         f"{stats['max']:>10.3f}")
    if len(result.frames_ahead):
        ahead, burst = result.frames_ahead, result.burst
        lines.append(f"  EVENTS frames an event waited behind: median {np.median(ahead):g}, "
                     f"max {ahead.max()}; events decided within a sweep of it (itself "
                     f"included): median {np.median(burst):g}, max {burst.max()}")
        alone = ahead == 0
        if alone.any():
            stats = _stats_ms(result.device_and_link_s[alone])
            lines.append(f"  device+link of the {int(alone.sum())} events with no frame ahead: "
                         f"median {stats['median']:.3f}, max {stats['max']:.3f} ms; each "
                         f"frame ahead adds {1e3 * result.event_frame_s:.3f} ms (its bytes "
                         "on the link)")
    return "\n".join(lines + [f"  note: {n}" for n in result.notes])


# -- the command ------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    """``spikeforge bench latency`` options."""
    parser.add_argument("--channels", type=int, default=32, help="default 32")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="device time simulated per configuration (default 1)")
    parser.add_argument("--baud", type=int, default=3_000_000,
                        help="the UART's rate (default 3000000, from a 12 MHz clock)")
    parser.add_argument("--mode", choices=("events", "raw"), default="events",
                        help="events: an events-only stream (default, what a closed loop "
                             "records); raw: DATA frames too, events wait behind them")
    parser.add_argument("--bit-level", action="store_true",
                        help="the board's clock and bit-serial UART (slower; same figures)")
    parser.add_argument("--target-ms", type=float, default=1.0,
                        help="device+link p99 the run must stay under (default 1 ms)")


def run(args) -> int:
    """Measure the closed-loop detector and the default one; exit 1 if the closed-loop
    device+link p99 misses ``--target-ms``."""
    from spikeforge.host.errors import ExitCode

    results = []
    for closed_loop in (True, False):
        config = latency_config(args.channels, baud=args.baud, closed_loop=closed_loop)
        label = ("closed-loop detector (align 4, snippet 4+1+2)" if closed_loop
                 else "default detector (align 8, snippet 8+1+16)")
        result = measure_latency(config, seconds=args.seconds, mode=args.mode,
                                 bit_level=args.bit_level)
        results.append(result)
        print(f"{label}, {args.mode} stream:")
        print(format_result(result), flush=True)
        print()
    print("device: trough at the ADC to the EVENTS frame's first byte leaving the device; "
          "link: to its last byte at the host's end of the UART (both simulated time); "
          "host: this machine's decoder, from the socket read to the event (wall time). "
          "The device part's split (golden models): decision (trough to the detector's "
          "decision), snippet (to its last post sample), copier (to its first word "
          "readable), serializer (to its frame's first byte: the EVENTS frames of earlier "
          "events ahead of it on the link; the test source's spikes coincide on many "
          "channels). Gigabit UDP: not measured by this bench (docs/recording.md, "
          "\"Closed-loop latency\").")
    closed = results[0]
    p99 = closed.summary()["device+link"]["p99"]
    verdict = "meets" if p99 < args.target_ms else "MISSES"
    print(f"closed-loop device+link p99 {p99:.3f} ms {verdict} the {args.target_ms:g} ms "
          f"target, with {closed.lost} of {closed.decided} decided events dropped at the "
          "detector (its queue or buffer full)")
    return ExitCode.OK if p99 < args.target_ms else ExitCode.FAILURE
