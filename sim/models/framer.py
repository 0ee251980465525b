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
from collections import deque
from dataclasses import dataclass

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
    frame seq numbers sent and dropped; ``identity_frames`` counts IDENTITY frames;
    ``data_frame_ends`` the cycle each sent DATA frame's last byte was taken.
    """

    data: bytes
    accept_cycle: np.ndarray
    sent_slots: list[int]
    dropped_slots: list[int]
    identity_frames: int
    data_frame_ends: list[int]

    def dropped_before(self, cycle: int, config: SystemConfig) -> int:
        period = config.sweeps_per_frame * config.cycles_per_sample
        return sum(1 for s in self.dropped_slots if s * period + SOURCE_LATENCY < cycle)

    def sent_by(self, cycle: int) -> int:
        """DATA frames whose last byte the UART had taken before ``cycle``."""
        return bisect_left(self.data_frame_ends, cycle)


class _Uart:
    """The UART's hand-over times for a sequence of bytes, in order."""

    def __init__(self, cycles_per_byte: int):
        self.cycles_per_byte = cycles_per_byte
        self.ready = 0
        self.data: list[bytes] = []
        self.cycles: list[np.ndarray] = []

    @property
    def last(self) -> int:
        return self.ready - self.cycles_per_byte

    def send(self, values: bytes, earliest: int) -> None:
        """Bytes offered from cycle ``earliest`` on, each as soon as the previous is taken."""
        first = max(earliest, self.ready)
        cycles = first + self.cycles_per_byte * np.arange(len(values), dtype=np.int64)
        self._take(values, cycles)

    def send_samples(self, payload: bytes, arrivals: np.ndarray) -> np.ndarray:
        """A frame's payload: the low byte of sample j is offered from ``arrivals[j] + 1``
        (the cycle after it was buffered), its high byte right after. Returns the cycles the
        high bytes were taken (when each sample leaves the buffer).

        The low-byte times follow a(j) = max(a(j-1) + 2T, arrival(j) + 1), whose closed form
        is 2Tj + max(ready, cummax(arrival(i) + 1 - 2Ti)).
        """
        two_t = 2 * self.cycles_per_byte
        steps = two_t * np.arange(len(arrivals), dtype=np.int64)
        low = steps + np.maximum(self.ready, np.maximum.accumulate(arrivals + 1 - steps))
        high = low + self.cycles_per_byte
        self._take(payload, np.column_stack([low, high]).reshape(-1))
        return high

    def _take(self, values: bytes, cycles: np.ndarray) -> None:
        self.data.append(values)
        self.cycles.append(cycles)
        self.ready = int(cycles[-1]) + self.cycles_per_byte


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
    slots = samples.shape[0] // spf
    identity_payload = encode_identity(config)
    # Arrival of sample j of a frame, relative to the frame's first sample.
    sweep, channel = np.divmod(np.arange(frame_samples, dtype=np.int64), config.channels)
    arrival_offsets = sweep * cps + channel

    uart = _Uart(config.cycles_per_byte)
    sent_slots: list[int] = []
    dropped_slots: list[int] = []
    data_frame_ends: list[int] = []
    admitted = 0
    released = 0          # samples whose high byte was taken before the current decision
    pending_pops: deque[np.ndarray] = deque()
    idle_since = 0
    identity_count = 0
    next_identity_slot = 0

    for slot in range(slots):
        t_decide = slot * spf * cps + SOURCE_LATENCY
        while pending_pops:
            taken = int(np.searchsorted(pending_pops[0], t_decide))
            released += taken
            if taken < len(pending_pops[0]):
                pending_pops[0] = pending_pops[0][taken:]
                break
            pending_pops.popleft()
        if not enable:
            continue
        if frame_samples * admitted - released + frame_samples > capacity:
            dropped_slots.append(slot)
            continue
        admitted += 1
        sent_slots.append(slot)

        # The serializer picks the slot up once idle and once the slot is readable.
        start = max(idle_since, t_decide + 1) + 1
        if slot >= next_identity_slot:
            uart.send(build_frame(FrameType.IDENTITY, identity_count, identity_payload), start)
            identity_count += 1
            next_identity_slot = slot + config.identity_interval_frames
            start = uart.last + 1
        block = samples[slot * spf:(slot + 1) * spf]
        frame = build_frame(FrameType.DATA, slot, block.astype("<i2").tobytes())
        uart.send(frame[:HEADER_BYTES], start)
        pending_pops.append(uart.send_samples(frame[HEADER_BYTES:-CRC_BYTES],
                                              t_decide + arrival_offsets))
        uart.send(frame[-CRC_BYTES:], 0)
        data_frame_ends.append(uart.last)
        idle_since = uart.last + 1

    return LinkSchedule(
        data=b"".join(uart.data),
        accept_cycle=(np.concatenate(uart.cycles) if uart.cycles
                      else np.zeros(0, dtype=np.int64)),
        sent_slots=sent_slots, dropped_slots=dropped_slots, identity_frames=identity_count,
        data_frame_ends=data_frame_ends,
    )
