"""The parts of the framer's golden model, one per part of :class:`~spikeforge.hdl.framer.Framer`.

=======================  ==========================================  ========================
model                    RTL (``spikeforge.hdl.framing``)            job
=======================  ==========================================  ========================
:class:`SlotAdmission`   ``SlotAdmission`` (DATA path, LFP path)     frame slots: fit test,
                                                                     admit, drop, skip
:class:`SampleBuffer`    ``SampleBuffer``                            reservation per frame,
                                                                     freed as samples leave
:class:`BlockAdmission`  ``BlockAdmission`` (with ``BlockBuffer``)   coded blocks: worst-case
                                                                     reservation, commit
:class:`Serializer`      ``Serializer``                              frames as bytes:
                                                                     identity schedule, CRC
:class:`UartLink`        the link core behind the byte stream        when each byte is taken
=======================  ==========================================  ========================

Every part keeps its state in named fields; :class:`~spikeforge.sim.models.framer.FramerModel`
ties them together in time order. The timing rules are in the module docstring of
:mod:`spikeforge.sim.models.framer`.
"""

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.wire import (
    CRC_BYTES,
    HEADER_BYTES,
    BandwidthMode,
    FrameType,
    build_frame,
    encode_identity,
)
from spikeforge.sim.models.detector import EventOutput

if TYPE_CHECKING:
    from spikeforge.sim.models.framer import CoderBlock, LinkSchedule

__all__ = ["ModeTimeline", "UartLink", "SampleBuffer", "SlotAdmission", "PendingFrame",
           "BlockAdmission", "Serializer"]

#: (sweep, channel) -> the cycle that sample reaches the framer, for one path.
Arrival = Callable[[int, int], int]


class ModeTimeline:
    """The bandwidth mode the framer sees in each cycle: RAW until the first change."""

    def __init__(self, changes: list[tuple[int, int]] | None):
        self.changes = sorted(changes or [])
        self.cycles = [cycle for cycle, _ in self.changes]

    def at(self, cycle: int) -> int:
        index = bisect_left(self.cycles, cycle + 1)
        return self.changes[index - 1][1] if index else BandwidthMode.RAW


class UartLink:
    """The link core behind the framer's byte stream: takes a byte whenever one is offered
    and it is ready, and is ready again ``cycles_per_byte`` cycles later. Records each byte
    and the cycle it was taken in ``schedule``."""

    def __init__(self, schedule: "LinkSchedule", cycles_per_byte: int):
        self.schedule = schedule
        self.cycles_per_byte = cycles_per_byte
        self.ready_from = 0

    def send(self, values: bytes, earliest: int) -> None:
        """Offer ``values`` one after the other, the first from cycle ``earliest``."""
        for value in values:
            cycle = max(earliest, self.ready_from)
            self.schedule.data.append(value)
            self.schedule.accept_cycle.append(cycle)
            self.ready_from = cycle + self.cycles_per_byte
            earliest = cycle + 1

    @property
    def last_taken(self) -> int:
        """The cycle the last byte offered was taken."""
        return self.schedule.accept_cycle[-1]


@dataclass
class SampleBuffer:
    """The sample buffer as the slot admissions see it: an admitted frame reserves
    ``frame_samples`` from its decision cycle on; a sample frees its place from the cycle
    after its high byte is taken."""

    capacity: int
    frame_samples: int
    admits: list[int] = field(default_factory=list)     # decision cycles, in order
    pops: list[int] = field(default_factory=list)       # cycles samples left, in order

    def reserved_at(self, cycle: int) -> int:
        return (self.frame_samples * bisect_left(self.admits, cycle)
                - bisect_left(self.pops, cycle))

    def fits(self, cycle: int) -> bool:
        return self.reserved_at(cycle) + self.frame_samples <= self.capacity

    def reserve(self, cycle: int) -> None:
        self.admits.append(cycle)

    def pop(self, cycle: int) -> None:
        self.pops.append(cycle)


@dataclass
class PendingFrame:
    """An admitted slot whose frame the serializer has not started yet."""

    path: "SlotAdmission"
    slot: int
    decided: int


@dataclass
class SlotAdmission:
    """One path's frame slots (DATA: the source's sweeps; LFP: the decimated sweeps).

    Slot ``s`` is the ``sweeps_per_frame`` sweeps from ``s * sweeps_per_frame`` on,
    decided when its first sample (channel 0) arrives: skipped unless streaming is enabled
    and the mode is ``wanted``; dropped (and counted) if the frame does not fit in the
    buffer or a frame of the ``other`` path is still being filled; else admitted.
    """

    kind: int                   #: FrameType.DATA or FrameType.LFP
    wanted: int                 #: the BandwidthMode the path sends in
    values: np.ndarray          #: (sweeps, channels) the path carries
    arrival: Arrival
    sweeps_per_frame: int
    other: "SlotAdmission | None" = None
    next_slot: int = 0
    sent: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    drop_cycles: list[int] = field(default_factory=list)
    #: (decision cycle, cycle of its last sample) of the last admitted frame.
    filling: tuple[int, int] | None = None

    @property
    def slots(self) -> int:
        return self.values.shape[0] // self.sweeps_per_frame

    def next_decision(self) -> int | None:
        """The cycle the next slot is decided in (None: no further whole slot)."""
        if self.next_slot >= self.slots:
            return None
        return self.arrival(self.next_slot * self.sweeps_per_frame, 0)

    def is_filling(self, cycle: int) -> bool:
        """Whether an admitted frame of this path still awaits samples in ``cycle``."""
        return self.filling is not None and self.filling[0] < cycle <= self.filling[1]

    def decide(self, buffer: SampleBuffer, enable: bool,
               modes: ModeTimeline) -> PendingFrame | None:
        """Decide the next slot; returns it if admitted."""
        slot, decided = self.next_slot, self.next_decision()
        assert decided is not None
        self.next_slot += 1
        if not enable or modes.at(decided) != self.wanted:
            return None
        other_filling = self.other is not None and self.other.is_filling(decided)
        if not buffer.fits(decided) or other_filling:
            self.dropped.append(slot)
            self.drop_cycles.append(decided)
            return None
        buffer.reserve(decided)
        spf = self.sweeps_per_frame
        self.filling = (decided, self.arrival(slot * spf + spf - 1, self.values.shape[1] - 1))
        self.sent.append(slot)
        return PendingFrame(self, slot, decided)


@dataclass
class BlockAdmission:
    """The COMPRESSED path: block ``b`` is decided at its first sample
    (``block_start(b)``), admitted in LOSSLESS mode if a worst-case block fits in the coded
    buffer (else dropped and counted); at its last word the unused reservation is freed and
    its frame becomes readable the cycle after."""

    coded: list["CoderBlock"]
    worst: int
    capacity: int
    block_start: Callable[[int], int]
    next_block: int = 0
    admits: list[int] = field(default_factory=list)
    releases: list[tuple[int, int]] = field(default_factory=list)  # (last word, freed)
    pops: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)      # admitted blocks not yet sent
    sent: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    drop_cycles: list[int] = field(default_factory=list)

    def next_decision(self) -> int | None:
        if self.next_block >= len(self.coded):
            return None
        return self.block_start(self.next_block)

    def reserved_at(self, cycle: int) -> int:
        return (self.worst * bisect_left(self.admits, cycle)
                - sum(freed for end, freed in self.releases if end < cycle)
                - bisect_left(self.pops, cycle))

    def decide_until(self, until: int, enable: bool, modes: ModeTimeline) -> None:
        while (decided := self.next_decision()) is not None and decided <= until:
            block = self.next_block
            self.next_block += 1
            if not enable or modes.at(decided) != BandwidthMode.LOSSLESS:
                continue
            if self.reserved_at(decided) + self.worst > self.capacity:
                self.dropped.append(block)
                self.drop_cycles.append(decided)
                continue
            self.admits.append(decided)
            self.releases.append((self.coded[block].last_word_cycle,
                                  self.worst - self.coded[block].words))
            self.sent.append(block)
            self.ready.append(block)

    def next_readable(self) -> int | None:
        """The cycle the oldest committed block's frame becomes readable."""
        return self.coded[self.ready[0]].last_word_cycle + 1 if self.ready else None

    def pop(self, cycle: int) -> None:
        self.pops.append(cycle)


class Serializer:
    """Frames as bytes onto the link: header, payload, CRC, and the IDENTITY frame that
    precedes the first frame whose identity key reaches ``next_identity_slot``."""

    def __init__(self, config: SystemConfig, link: UartLink,
                 slots_started_before: Callable[[int], int]):
        self.link = link
        self.schedule = link.schedule
        self.identity_interval = config.identity_interval_frames
        self.identity_payload = encode_identity(config)
        self.enabled = list(config.enabled_channels)          # channel mask
        self.slots_started_before = slots_started_before
        self.identity_count = 0
        self.next_identity_slot = 0
        self.events_seq = 0

    def _identity_if_due(self, key: int, start: int) -> int:
        """Send the IDENTITY frame if due by ``key``; returns the next frame's first cycle."""
        if key < self.next_identity_slot:
            return start
        self.link.send(build_frame(FrameType.IDENTITY, self.identity_count,
                                   self.identity_payload), start)
        self.identity_count += 1
        self.next_identity_slot = key + self.identity_interval
        return self.link.last_taken + 1

    def send_slot_frame(self, frame: PendingFrame, start: int, buffer: SampleBuffer) -> None:
        """A DATA or LFP frame leaving IDLE in ``start - 1``. Each payload byte pair waits
        for its sample; an LFP frame's identity is due by the DATA slots started before the
        serializer left IDLE (the RTL's slot counter), a DATA frame's by its own slot."""
        path, slot = frame.path, frame.slot
        data = path.kind == FrameType.DATA
        start = self._identity_if_due(slot if data else self.slots_started_before(start - 1),
                                      start)
        spf = path.sweeps_per_frame
        block = path.values[slot * spf:(slot + 1) * spf][:, self.enabled]  # channel mask
        self.schedule.sent_frames.append((path.kind, slot))
        wire = build_frame(path.kind, slot, block.astype("<i2").tobytes())
        self.link.send(wire[:HEADER_BYTES], start)
        payload = wire[HEADER_BYTES:-CRC_BYTES]
        for j in range(buffer.frame_samples):
            sweep, position = divmod(j, len(self.enabled))
            arrival = path.arrival(slot * spf + sweep, self.enabled[position])
            self.link.send(payload[2 * j:2 * j + 1], arrival + 1)
            self.link.send(payload[2 * j + 1:2 * j + 2], 0)
            buffer.pop(self.link.last_taken)
        self.link.send(wire[-CRC_BYTES:], 0)
        self.schedule._data_frame_ends.append(self.link.last_taken)

    def send_compressed(self, blocks: BlockAdmission, idle_cycle: int) -> None:
        """The oldest committed block as a COMPRESSED frame; identity due by the slot
        count."""
        block = blocks.ready.pop(0)
        start = self._identity_if_due(self.slots_started_before(idle_cycle), idle_cycle + 1)
        payload = blocks.coded[block].payload
        self.schedule.sent_frames.append((FrameType.COMPRESSED, block))
        wire = build_frame(FrameType.COMPRESSED, block, payload)
        self.link.send(wire[:HEADER_BYTES], start)
        for j in range(len(payload) // 2):
            self.link.send(payload[2 * j:2 * j + 2], 0)
            blocks.pop(self.link.last_taken)
        self.link.send(wire[-CRC_BYTES:], 0)
        self.schedule._data_frame_ends.append(self.link.last_taken)

    def send_events(self, event_side: EventOutput, position: int, start: int) -> None:
        """The ``position``-th kept event record as one EVENTS frame; each word waits until
        the detector's buffer makes it readable."""
        words = event_side.words[event_side.kept[position]]
        payload = b"".join(w.to_bytes(2, "little") for w in words)
        wire = build_frame(FrameType.EVENTS, self.events_seq, payload)
        self.events_seq += 1
        self.link.send(wire[:HEADER_BYTES], start)
        for j in range(len(words)):
            self.link.send(payload[2 * j:2 * j + 1], event_side.word_readable(position, j))
            self.link.send(payload[2 * j + 1:2 * j + 2], 0)
            event_side.pop(self.link.last_taken)
        self.link.send(wire[-CRC_BYTES:], 0)
        self.schedule.event_frames.append((event_side.kept[position], self.link.last_taken))
