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


def frame_stream(config: SystemConfig, samples: np.ndarray, *, enable: bool = True
                 ) -> LinkSchedule:
    """The link's behaviour for ``samples`` (shape (sweeps, channels)) from reset on.

    Slots whose first sample is in ``samples`` are decided; a frame is only complete when
    all of its sweeps are given, so pass whole frames (trailing sweeps are ignored).
    """
    cps = config.cycles_per_sample
    spf = config.sweeps_per_frame
    frame_samples = config.frame_samples
    capacity = config.link_buffer_samples
    T = config.cycles_per_byte
    slots = samples.shape[0] // spf
    identity_payload = encode_identity(config)

    out = LinkSchedule()
    pops: list[int] = []
    admits: list[int] = []
    uart_ready = 0
    idle_since = 0
    identity_count = 0
    next_identity_slot = 0

    def send(byte_values: bytes, earliest: int) -> None:
        nonlocal uart_ready
        for value in byte_values:
            cycle = max(earliest, uart_ready)
            out.data.append(value)
            out.accept_cycle.append(cycle)
            uart_ready = cycle + T
            earliest = cycle + 1

    for slot in range(slots):
        t_decide = slot * spf * cps + SOURCE_LATENCY
        reserved = frame_samples * bisect_left(admits, t_decide) - bisect_left(pops, t_decide)
        if not enable:
            continue
        if reserved + frame_samples > capacity:
            out.dropped_slots.append(slot)
            continue
        admits.append(t_decide)
        out.sent_slots.append(slot)

        # The serializer picks the slot up once idle and once the slot is readable.
        start = max(idle_since, t_decide + 1) + 1
        if slot >= next_identity_slot:
            send(build_frame(FrameType.IDENTITY, identity_count, identity_payload), start)
            identity_count += 1
            next_identity_slot = slot + config.identity_interval_frames
            start = out.accept_cycle[-1] + 1
        block = samples[slot * spf:(slot + 1) * spf]
        frame = build_frame(FrameType.DATA, slot, block.astype("<i2").tobytes())
        send(frame[:HEADER_BYTES], start)
        payload = frame[HEADER_BYTES:-CRC_BYTES]
        first_arrival = t_decide
        for j in range(frame_samples):
            sweep, channel = divmod(j, config.channels)
            arrival = first_arrival + sweep * cps + channel
            send(payload[2 * j:2 * j + 1], arrival + 1)
            send(payload[2 * j + 1:2 * j + 2], 0)
            pops.append(out.accept_cycle[-1])
        send(frame[-CRC_BYTES:], 0)
        out._data_frame_ends.append(out.accept_cycle[-1])
        idle_since = out.accept_cycle[-1] + 1

    out.identity_frames = identity_count
    return out
