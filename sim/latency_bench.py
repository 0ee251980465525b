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

On the Gigabit UDP board (``link="udp"``: ``main_eth.cpp``, which simulates the 125 MHz link
clock too, about 1/60 of real time) the board writes a capture (``--pcap``) stamping each
frame with the simulated time of its last byte on the wire; the bench receives the
datagrams on a UDP socket on loopback (after the command that sets the mode, from which
the board learns the host), finds each in the capture by its bytes, and takes: device, to
the frame's first byte (preamble) on the GMII wire (so the Ethernet core's headers and
clock crossing are in the serializer part); link, its bytes on the wire (preamble, SFD,
frame, FCS; 8 ns each); host, from the datagram's ``recvfrom`` to the decoded EventBlock.
Not included: PHY, switch, NIC and kernel.
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
           "format_result", "add_arguments", "run", "CLOSED_LOOP_DETECTOR", "LINKS",
           "DEFAULT_SECONDS"]

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
                   clock_hz: int = 12_000_000, closed_loop: bool = True,
                   link: str = "uart") -> SystemConfig:
    """The board the bench measures by default: the test source, the detector built
    (:data:`CLOSED_LOOP_DETECTOR`, or with ``closed_loop=False`` the default detector), a
    ``clock_hz`` board clock and ``link``: "uart" (a UART at ``baud``) or "udp" (Gigabit
    Ethernet, UDP; ``baud`` is then unused)."""
    from spikeforge.firmware.errors import ConfigError

    if link not in LINKS:
        raise ConfigError(f"link must be one of {', '.join(LINKS)}, not {link!r}")
    detector = CLOSED_LOOP_DETECTOR if closed_loop else DetectorConfig(enabled=True)
    return SystemConfig(channels=channels, clock_hz=clock_hz, baud=baud, detector=detector,
                        link="ethernet" if link == "udp" else "uart")


#: The links the bench measures (``--link``).
LINKS = ("uart", "udp")
#: Device time simulated per configuration when ``--seconds`` is not given: the UDP board
#: simulates the 125 MHz link clock too and runs about 1/60 of real time.
DEFAULT_SECONDS = {"uart": 1.0, "udp": 0.3}


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
    """Run the virtual board of ``config`` (test source, detector built; UART or Ethernet
    link) for ``seconds`` of device time and measure every detected spike's latency (module
    docstring). ``mode``: "events" (events-only stream) or "raw" (DATA frames too: events
    wait behind them). ``bit_level`` (UART): the board's clock and bit-serial UART."""
    from spikeforge.firmware.errors import ConfigError
    from spikeforge.sim.virtual_board import design_config

    if config.source != "test" or not config.detector.enabled:
        raise ConfigError("the latency bench measures a board with the test source and "
                          "the detector built (detector.enabled)")
    if mode not in ("events", "raw"):
        raise ConfigError(f"mode must be events or raw, not {mode!r}")
    if config.link == "ethernet":
        design = config
        timed = _run_udp(config, seconds, mode)
    else:
        design = design_config(config, bit_level=bit_level)
        timed = _run_uart(config, design, seconds, mode, bit_level)
    result = _score(config, design, seconds, timed)
    result.link = "Gigabit UDP" if config.link == "ethernet" else "UART"
    result.model = ("Ethernet board (125 MHz GMII)" if config.link == "ethernet"
                    else "direct-link board" if design is not config else "bit-level board")
    return result


def _run_uart(config: SystemConfig, design: SystemConfig, seconds: float, mode: str,
              bit_level: bool) -> list:
    """The UART board: (departure, arrival, last byte leaving, EventBlock, host seconds) of
    every EVENTS frame, times in the design's cycles, from the harness's byte log."""
    from spikeforge.sim.virtual_board import VirtualBoard

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
    return [(float(arrivals[start] - byte_cycles), float(arrivals[end - 1]),
             float(arrivals[end - 1] - byte_cycles), block, host)
            for start, end, block, host in _event_frames(frames, host_s)]


def _run_udp(config: SystemConfig, seconds: float, mode: str) -> list:
    """The Ethernet board: (departure, arrival, last byte leaving, EventBlock, host seconds)
    of every EVENTS frame in the board's cycles, from the capture (``--pcap``: each frame
    stamped with the simulated time of its last byte on the wire). Departure: the frame's
    first byte (preamble) going on the wire; arrival: the end of its last byte (FCS), so the
    link part is its bytes on the wire at 8 ns each (:func:`_board_datagrams`)."""
    from spikeforge.sim.virtual_board import VirtualBoard

    cycles = int(seconds * config.clock_hz)
    with tempfile.TemporaryDirectory() as folder:
        capture = Path(folder) / "link.pcap"
        board = VirtualBoard.start(config, cycles=cycles, pcap=capture, realtime=False)
        try:
            datagrams = _udp_host_side(board, mode)
        finally:
            board.stop(timeout_s=30)
        on_wire = _board_datagrams(capture, config.ethernet.ip)
    cycle_per_ns = config.clock_hz / 1e9
    parser = FrameParser()
    timed = []
    for payload, blocks in datagrams:
        if payload not in on_wire:
            raise RuntimeError("a datagram the host received is not in the board's capture")
        first_ns, last_ns, end_ns = on_wire[payload]
        events = [frame for frame in parser.feed(payload) if frame.type == FrameType.EVENTS]
        if len(events) != len(blocks):
            raise RuntimeError("the host's decoder and the frame parser disagree")
        for frame, (block, host_s) in zip(events, blocks, strict=True):
            if block.seq != frame.seq:
                raise RuntimeError("the host's decoder and the frame parser disagree")
            timed.append((first_ns * cycle_per_ns, end_ns * cycle_per_ns,
                          last_ns * cycle_per_ns, block, host_s))
    if parser.stats.bytes_discarded or parser.stats.crc_errors:
        raise RuntimeError(f"the link was not clean ({parser.stats})")
    return timed


def _udp_host_side(board, mode: str) -> list[tuple[bytes, list[tuple[EventBlock, float]]]]:
    """Open a UDP socket on loopback like the host's transport, set the mode with the first
    command (the board learns this host from it), receive datagrams until the board has
    ended and the socket is empty; (payload, [(EventBlock, host seconds)]) per datagram, the
    host seconds from the datagram's ``recvfrom`` returning to the decoder's EventBlock."""
    host, port = board.url.removeprefix("udp://").rsplit(":", 1)
    decoder = StreamDecoder()
    out: list[tuple[bytes, list[tuple[EventBlock, float]]]] = []
    code = BandwidthMode.EVENTS if mode == "events" else BandwidthMode.RAW
    command = encode_command(1, register("BANDWIDTH_MODE").address, CommandOp.WRITE, int(code))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        client.bind(("127.0.0.1", 0))
        client.settimeout(0.2)
        client.sendto(command, (host, int(port)))
        while True:
            try:
                payload = client.recv(1 << 16)
            except TimeoutError:
                if board.process.poll() is not None:
                    break
                continue
            read_at = time.perf_counter()
            items = decoder.feed(payload)
            done = time.perf_counter()
            out.append((payload, [(item, done - read_at) for item in items
                                  if isinstance(item, EventBlock)]))
    return out


def _board_datagrams(capture: Path, board_ip: int) -> dict[bytes, tuple[float, float, float]]:
    """UDP payload -> (ns its first frame's first byte went on the wire, ns its last frame's
    last byte did, ns that byte ended) of every datagram the board sent in ``capture``
    (classic pcap, nanosecond stamps of each frame's last byte, Ethernet, FCS stripped).
    A frame is preamble + SFD, the captured bytes and the FCS on the wire, a byte per 8 ns;
    IPv4 fragments are put together (first byte of the first, last of the last)."""
    import struct

    from spikeforge.firmware.ethernet import FCS_BYTES, LINK_CLOCK_HZ, PREAMBLE_SFD

    ns_per_byte = 1e9 / LINK_CLOCK_HZ
    data = capture.read_bytes()
    if data[:4] != (0xA1B23C4D).to_bytes(4, "little"):
        raise RuntimeError(f"{capture} is not a nanosecond pcap file")
    out: dict[bytes, tuple[float, float, float]] = {}
    pending: dict[int, list] = {}
    offset = 24
    while offset + 16 <= len(data):
        seconds, nanoseconds, length, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16:offset + 16 + length]
        offset += 16 + length
        last_ns = seconds * 1e9 + nanoseconds
        first_ns = last_ns - (len(PREAMBLE_SFD) + length + FCS_BYTES - 1) * ns_per_byte
        if frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ip = frame[14:]
        if int.from_bytes(ip[12:16], "big") != board_ip:
            continue
        header = (ip[0] & 0x0F) * 4
        total = int.from_bytes(ip[2:4], "big")
        flags = int.from_bytes(ip[6:8], "big")
        parts = pending.setdefault(int.from_bytes(ip[4:6], "big"), [])
        parts.append(((flags & 0x1FFF) * 8, ip[header:total], first_ns))
        if flags & 0x2000:
            continue
        del pending[int.from_bytes(ip[4:6], "big")]
        udp = b"".join(part for _, part, _ in sorted(parts, key=lambda p: p[0]))
        out[udp[8:int.from_bytes(udp[4:6], "big")]] = (min(p[2] for p in parts), last_ns,
                                                      last_ns + ns_per_byte)
    return out


def _score(config: SystemConfig, design: SystemConfig, seconds: float,
           timed: list) -> LatencyResult:
    """Match each received event to a true spike and split its latency. ``timed``: per
    EVENTS frame (departure, arrival, its last byte leaving, EventBlock, host seconds), times
    in ``design``'s cycles."""
    from spikeforge.hdl.source import TestSource
    from spikeforge.sim.models.source import source_signal

    sweeps = int(seconds * config.sample_rate_hz) + 1
    # the harness runs whole batches of cycles past ``cycles``: the truth covers them
    truth = source_signal(config, sweeps + sweeps // 8 + 64)
    cycles_per_sample = design.cycles_per_sample
    timing = _ModelTiming(design, truth.samples, [block for *_, block, _ in timed])
    last_byte = np.array([left for _, _, left, _, _ in timed])
    device, link, host = [], [], []
    split: dict[str, list[float]] = {name: [] for name in SPLIT_PARTS}
    frames_ahead, burst = [], []
    events = matched = 0
    first_scored = int(WARM_UP_S * config.sample_rate_hz)
    for position, (departure, arrival, _, block, host_latency) in enumerate(timed):
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
    result = LatencyResult(config, "", "", np.array(device), np.array(link),
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
    parser.add_argument("--link", choices=(*LINKS, "both"), default="both",
                        help="uart (3 Mbaud, direct-link board), udp (Gigabit Ethernet "
                             "board, ~1/60 real time) or both (default)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="device time simulated per configuration (default 1 on the "
                             "UART, 0.3 on UDP)")
    parser.add_argument("--baud", type=int, default=3_000_000,
                        help="the UART's rate (default 3000000, from a 12 MHz clock)")
    parser.add_argument("--mode", choices=("events", "raw"), default="events",
                        help="events: an events-only stream (default, what a closed loop "
                             "records); raw: DATA frames too, events wait behind them")
    parser.add_argument("--bit-level", action="store_true",
                        help="UART: the board's clock and bit-serial UART (slower; same "
                             "figures)")
    parser.add_argument("--target-ms", type=float, default=1.0,
                        help="device+link p99 the closed-loop detector must stay under on "
                             "every link measured (default 1 ms)")


_LINK_PART = {
    "uart": "link: to its last byte at the host's end of the UART",
    "udp": "link: to the end of its last byte (FCS) on the Gigabit wire, from the board's "
           "capture (pcap: each frame's last byte on the wire)",
}
_NOT_INCLUDED = {"uart": "", "udp": " Not included: the PHY, a switch, the NIC and the "
                                    "kernel's delivery to the socket."}


def run(args) -> int:
    """Measure the closed-loop detector and the default one on each link; exit 1 if the
    closed-loop device+link p99 misses ``--target-ms`` on any link measured."""
    from spikeforge.host.errors import ExitCode

    links = LINKS if args.link == "both" else (args.link,)
    verdicts = []
    for link in links:
        seconds = args.seconds if args.seconds is not None else DEFAULT_SECONDS[link]
        results = []
        for closed_loop in (True, False):
            config = latency_config(args.channels, baud=args.baud, closed_loop=closed_loop,
                                    link=link)
            label = ("closed-loop detector (align 4, snippet 4+1+2)" if closed_loop
                     else "default detector (align 8, snippet 8+1+16)")
            result = measure_latency(config, seconds=seconds, mode=args.mode,
                                     bit_level=args.bit_level and link == "uart")
            results.append(result)
            print(f"{label}, {args.mode} stream, {seconds:g} s of device time:")
            print(format_result(result), flush=True)
            print()
        print(f"device: trough at the ADC to the EVENTS frame's first byte leaving the device; "
              f"{_LINK_PART[link]} (both simulated time); host: this machine's decoder, from "
              "the socket read to the event (wall time). The device part's split (golden "
              "models): decision (trough to the detector's decision), snippet (to its last "
              "post sample), copier (to its first word readable), serializer (to its "
              "frame's first byte: the EVENTS frames of earlier events ahead of it on the "
              "link, and on UDP the Ethernet core's headers; the test source's spikes "
              f"coincide on many channels).{_NOT_INCLUDED[link]}")
        closed = results[0]
        p99 = closed.summary()["device+link"]["p99"]
        verdicts.append((closed.link, p99, closed))
        print()
    for name, p99, closed in verdicts:
        verdict = "meets" if p99 < args.target_ms else "MISSES"
        print(f"{name}: closed-loop device+link p99 {p99:.3f} ms {verdict} the "
              f"{args.target_ms:g} ms target, with {closed.lost} of {closed.decided} decided "
              "events dropped at the detector (its queue or buffer full)")
    ok = all(p99 < args.target_ms for _, p99, _ in verdicts)
    return ExitCode.OK if ok else ExitCode.FAILURE
