"""Golden model of the framer and the UART link (:class:`spikeforge.hdl.framer.Framer`).

The bytes of a frame are fixed by the wire format; *which* frames are sent is not: when the
link is slower than the data, the framer drops whole frames, deciding at the first sample of
each frame slot from how much of its buffer is still reserved. To predict those decisions
exactly, this model follows the timing of the RTL at the level of events (sample arrivals,
byte hand-overs to the UART), using the latencies each core's docstring states:

* sample (n, c) reaches the framer at cycle ``n * cycles_per_sample + c + SOURCE_LATENCY``
  (cycle 0 is the first cycle out of reset);
* a buffered sample or frame slot can be read one cycle after it was written;
* the serializer leaves IDLE one cycle after it sees a slot, and returns to IDLE one cycle
  after the last CRC byte is taken;
* the UART takes a byte whenever it is ready and a byte is offered, and is ready again
  ``10 * uart_divisor`` cycles later;
* a sample leaves the buffer in the cycle its high byte is taken, freeing its reservation
  from the next cycle.

The channel mask (``config.channel_mask``, the reset mask; the model does not change it at
run time) selects the channels DATA frames carry: a frame holds ``sweeps_per_frame`` x the
enabled channels, and each payload byte waits for its own channel's sample.
"""

from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.wire import (
    CRC_BYTES,
    HEADER_BYTES,
    FrameType,
    build_frame,
    encode_identity,
)
from spikeforge.sim.models.detector import DeviceEvents, EventOutput

__all__ = ["LinkSchedule", "frame_stream", "SOURCE_LATENCY"]

#: Cycles from a sweep's start to its channel 0 sample reaching the framer.
SOURCE_LATENCY = 2


@dataclass
class LinkSchedule:
    """What the framer and UART do over a run.

    ``data`` is the byte stream, ``accept_cycle[i]`` the cycle the UART took byte i (its
    start bit begins the next cycle). ``sent_slots`` and ``dropped_slots`` are the DATA
    frame seq numbers sent and dropped; ``identity_frames`` counts IDENTITY frames.
    """

    data: bytearray = field(default_factory=bytearray)
    accept_cycle: list[int] = field(default_factory=list)
    sent_slots: list[int] = field(default_factory=list)
    dropped_slots: list[int] = field(default_factory=list)
    identity_frames: int = 0

    def bytes_done_by(self, cycle: int, cycles_per_byte: int) -> bytes:
        """The bytes whose stop bit has ended by ``cycle``."""
        count = bisect_left(self.accept_cycle, cycle - cycles_per_byte + 1)
        return bytes(self.data[:count])

    def dropped_before(self, cycle: int, config: SystemConfig) -> int:
        period = config.sweeps_per_frame * config.cycles_per_sample
        return sum(1 for s in self.dropped_slots if s * period + SOURCE_LATENCY < cycle)

    def sent_by(self, cycle: int) -> int:
        """DATA frames whose last byte the UART had taken before ``cycle``."""
        return sum(1 for end in self._data_frame_ends if end < cycle)

    _data_frame_ends: list[int] = field(default_factory=list)
    #: EVENTS frames sent: (event index, cycle the UART took its last byte).
    event_frames: list[tuple[int, int]] = field(default_factory=list)
    event_output: "EventOutput | None" = None

    def event_frames_sent_by(self, cycle: int) -> int:
        return sum(1 for _, end in self.event_frames if end < cycle)


def frame_stream(config: SystemConfig, samples: np.ndarray, *, enable: bool = True,
                 events: DeviceEvents | None = None) -> LinkSchedule:
    """The link's behaviour for ``samples`` (shape (sweeps, channels)) from reset on.

    Slots whose first sample is in ``samples`` are decided; a frame is only complete when
    all of its sweeps are given, so pass whole frames (trailing sweeps are ignored).
    ``events`` are the detector's (see :func:`~spikeforge.sim.models.detector.device_events`);
    without them no EVENTS frame is sent.

    The serializer is followed frame by frame in time order: whenever it is idle, every
    slot decision and event admission up to that cycle is made first (all buffer pops
    before it are known by then), then it starts a DATA frame if a slot waits, else an
    EVENTS frame if an event's first word is readable, else it waits for the next of those.
    """
    cps = config.cycles_per_sample
    spf = config.sweeps_per_frame
    enabled = list(config.enabled_channels)  # channel mask
    frame_samples = config.sweeps_per_frame * len(enabled)  # channel mask
    capacity = config.link_buffer_samples
    T = config.cycles_per_byte
    slots = samples.shape[0] // spf
    identity_payload = encode_identity(config)
    event_side = EventOutput(config, events if events is not None else DeviceEvents.none())

    out = LinkSchedule()
    out.event_output = event_side
    pops: list[int] = []
    admits: list[int] = []
    uart_ready = 0
    identity_count = 0
    next_identity_slot = 0
    waiting: list[tuple[int, int]] = []   # admitted slots not yet sent: (slot, decided at)
    next_slot = 0
    next_event = 0                        # position in event_side.kept to send next
    events_seq = 0

    def send(byte_values: bytes, earliest: int) -> None:
        nonlocal uart_ready
        for value in byte_values:
            cycle = max(earliest, uart_ready)
            out.data.append(value)
            out.accept_cycle.append(cycle)
            uart_ready = cycle + T
            earliest = cycle + 1

    def decide_slots(until: int) -> None:
        nonlocal next_slot
        while next_slot < slots and next_slot * spf * cps + SOURCE_LATENCY <= until:
            slot = next_slot
            next_slot += 1
            t_decide = slot * spf * cps + SOURCE_LATENCY
            reserved = (frame_samples * bisect_left(admits, t_decide)
                        - bisect_left(pops, t_decide))
            if not enable:
                continue
            if reserved + frame_samples > capacity:
                out.dropped_slots.append(slot)
                continue
            admits.append(t_decide)
            out.sent_slots.append(slot)
            waiting.append((slot, t_decide))

    def send_data(slot: int, t_decide: int, start: int) -> None:
        nonlocal identity_count, next_identity_slot
        if slot >= next_identity_slot:
            send(build_frame(FrameType.IDENTITY, identity_count, identity_payload), start)
            identity_count += 1
            next_identity_slot = slot + config.identity_interval_frames
            start = out.accept_cycle[-1] + 1
        block = samples[slot * spf:(slot + 1) * spf][:, enabled]  # channel mask
        frame = build_frame(FrameType.DATA, slot, block.astype("<i2").tobytes())
        send(frame[:HEADER_BYTES], start)
        payload = frame[HEADER_BYTES:-CRC_BYTES]
        for j in range(frame_samples):
            sweep, position = divmod(j, len(enabled))
            channel = enabled[position]  # channel mask: the sample's real channel
            arrival = t_decide + sweep * cps + channel
            send(payload[2 * j:2 * j + 1], arrival + 1)
            send(payload[2 * j + 1:2 * j + 2], 0)
            pops.append(out.accept_cycle[-1])
        send(frame[-CRC_BYTES:], 0)
        out._data_frame_ends.append(out.accept_cycle[-1])

    def send_events(position: int, start: int) -> None:
        nonlocal events_seq
        words = event_side.words[event_side.kept[position]]
        payload = b"".join(w.to_bytes(2, "little") for w in words)
        frame = build_frame(FrameType.EVENTS, events_seq, payload)
        events_seq += 1
        send(frame[:HEADER_BYTES], start)
        for j in range(len(words)):
            send(payload[2 * j:2 * j + 1], event_side.word_readable(position, j))
            send(payload[2 * j + 1:2 * j + 2], 0)
            event_side.pop(out.accept_cycle[-1])
        send(frame[-CRC_BYTES:], 0)
        out.event_frames.append((event_side.kept[position], out.accept_cycle[-1]))

    idle = 0  # first cycle the serializer is in IDLE
    t = 0
    while True:
        decide_slots(t)
        event_side.decide_until(t)
        if waiting and waiting[0][1] + 1 <= t:
            slot, t_decide = waiting.pop(0)
            send_data(slot, t_decide, t + 1)
        elif next_event < len(event_side.kept) and event_side.word_readable(next_event, 0) <= t:
            send_events(next_event, t + 1)
            next_event += 1
        else:
            candidates = []
            if waiting:
                candidates.append(waiting[0][1] + 1)
            if next_slot < slots:
                candidates.append(next_slot * spf * cps + SOURCE_LATENCY)
            if next_event < len(event_side.kept):
                candidates.append(event_side.word_readable(next_event, 0))
            emission = event_side.next_emission()
            if emission is not None:
                candidates.append(emission)
            if not candidates:
                break
            t = max(t + 1, min(candidates))
            continue
        idle = out.accept_cycle[-1] + 1
        t = idle

    out.identity_frames = identity_count
    return out
