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

Bandwidth modes (``modes``): the DATA path reads the mode at each slot's first sample, the
COMPRESSED path at each coder block's first sample. The coder's words are timed by
:func:`coder_blocks` from the coder's pipeline (``Compressor`` docstring): sample arriving
in cycle a has its packer entry written in a + PACK_LATENCY (5), readable from the next
cycle, and the coder's output FIFO gives one word per cycle; an admitted block is committed
at its last word L, its frame descriptor readable from L+1 and its unused reservation freed
from L+1.

The channel mask (``config.channel_mask``, the reset mask; the model does not change it at
run time) selects the channels DATA frames carry: a frame holds ``sweeps_per_frame`` x the
enabled channels, and each payload byte waits for its own channel's sample.

LFP builds (``config.lfp``): the decimator (``Decimator`` docstring) takes the framer's input
samples and emits decimated sweep d, channel c at cycle
``((d + 1) * factor - 1) * cycles_per_sample + c + SOURCE_LATENCY + LFP_LATENCY``; its
values are :func:`~spikeforge.sim.models.decimator.decimate`'s. LFP slots (``sweeps_per_frame``
decimated sweeps) are decided at their first sample like DATA slots, in mode EVENTS_LFP,
from the same buffer; a slot of either kind is refused (dropped, counted) while a frame of
the other kind is still being filled, and an LFP frame's identity is due by the DATA slot
count (as a COMPRESSED frame's).
"""

from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np

from spikeforge.firmware.compression import WORD_BITS, Codebook, worst_case_words
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.firmware.wire import (
    CRC_BYTES,
    HEADER_BYTES,
    BandwidthMode,
    FrameType,
    build_frame,
    encode_identity,
)
from spikeforge.hdl.compressor import PACK_LATENCY as CODER_PACK_LATENCY  # (ctime)
from spikeforge.sim.models.detector import DeviceEvents, EventOutput

__all__ = ["LinkSchedule", "frame_stream", "SOURCE_LATENCY", "CoderBlock", "coder_blocks",
           "ModelLimit", "LFP_LATENCY", "lfp_arrival"]


class ModelLimit(SpikeforgeError):
    """The run goes where the model does not follow the RTL (a coder output overflow)."""


@dataclass(frozen=True)
class CoderBlock:
    """One block as the coder emits it: its bytes and the cycle its last word comes out."""

    payload: bytes
    last_word_cycle: int

    @property
    def words(self) -> int:
        return len(self.payload) // 2


def coder_blocks(config: SystemConfig, samples: np.ndarray,
                 codebook: Codebook | None = None) -> list[CoderBlock]:
    """The coder's blocks for ``samples`` (whole blocks only) and when their last words leave
    the :class:`~spikeforge.hdl.compressor.Compressor` in the system (its sink, the framer,
    is always ready). Raises :class:`ModelLimit` if its output FIFO would overflow.

    ``codebook``: the table a ``codec.codebook`` build was loaded with (None: the reset
    table). Blocks the device coded before the load are modelled with it too: they are
    never sent (the device takes a table only outside lossless mode), and the coder's
    output drains within every sweep, so their lengths do not move later blocks."""
    from spikeforge.sim.models.compressor import code_lengths, encode

    codec = config.codec
    cps = config.cycles_per_sample
    channels = config.channels
    block_sweeps = codec.block_sweeps
    count = samples.shape[0] // block_sweeps
    samples = samples[:count * block_sweeps]
    if codec.codebook and codebook is None:
        from spikeforge.firmware.compression import RESET_CODEBOOK

        codebook = RESET_CODEBOOK
    payloads = encode(samples, codec, codebook)
    lengths = code_lengths(samples, codec, codebook)
    entries = max(16, 2 * channels)
    depth = 1 << max(1, (entries - 1).bit_length())
    written: list[int] = []      # entry write cycles
    popped: list[int] = []       # cycle each entry's final word left
    last_word = -1
    out: list[CoderBlock] = []
    fill = 0
    for n in range(samples.shape[0]):
        block_end = n % block_sweeps == block_sweeps - 1
        for c in range(channels):
            arrival = n * cps + c + SOURCE_LATENCY
            total = fill + int(lengths[n, c])
            if block_end and c == channels - 1:
                words, fill = -(-total // WORD_BITS), 0
            else:
                words, fill = total // WORD_BITS, total % WORD_BITS
            if words == 0:
                continue
            write = arrival + CODER_PACK_LATENCY  # (ctime) coder pipeline depth
            level = len(written) - bisect_left(popped, write)
            if level >= depth - 1:
                raise ModelLimit(f"the coder's output FIFO overflows at cycle {write}; the "
                                 "framer model does not follow damaged blocks")
            written.append(write)
            last_word = max(write + 1, last_word + 1) + words - 1
            popped.append(last_word)
            if block_end and c == channels - 1:
                out.append(CoderBlock(payloads[len(out)], last_word))
    return out

#: Cycles from a sweep's start to its channel 0 sample reaching the framer.
SOURCE_LATENCY = 2
#: Cycles the decimator adds between a source sample and its decimated sample (its
#: ``LATENCY``; the framer always takes the decimator's output, so it never stalls).
LFP_LATENCY = 3


def lfp_arrival(config: SystemConfig, sweep: int, channel: int) -> int:
    """Cycle in which decimated sweep ``sweep``'s sample of ``channel`` reaches the framer."""
    assert config.lfp is not None
    source_sweep = (sweep + 1) * config.lfp.factor - 1
    return source_sweep * config.cycles_per_sample + channel + SOURCE_LATENCY + LFP_LATENCY


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
    #: COMPRESSED frames: block numbers sent and dropped, and the cycles of the drops.
    sent_blocks: list[int] = field(default_factory=list)
    dropped_blocks: list[int] = field(default_factory=list)
    _block_drop_cycles: list[int] = field(default_factory=list)
    #: DATA, COMPRESSED and LFP frames in the order they went out: (FrameType, seq).
    sent_frames: list[tuple[int, int]] = field(default_factory=list)
    #: LFP frames: slot numbers sent and dropped, and the cycles of the drops.
    sent_lfp_slots: list[int] = field(default_factory=list)
    dropped_lfp_slots: list[int] = field(default_factory=list)
    _lfp_drop_cycles: list[int] = field(default_factory=list)
    #: The decimated samples (sweeps, channels) the LFP frames carry (LFP builds).
    lfp_samples: "np.ndarray | None" = None

    def bytes_done_by(self, cycle: int, cycles_per_byte: int) -> bytes:
        """The bytes whose stop bit has ended by ``cycle``."""
        count = bisect_left(self.accept_cycle, cycle - cycles_per_byte + 1)
        return bytes(self.data[:count])

    def dropped_before(self, cycle: int, config: SystemConfig) -> int:
        period = config.sweeps_per_frame * config.cycles_per_sample
        return (sum(1 for s in self.dropped_slots if s * period + SOURCE_LATENCY < cycle)
                + sum(1 for d in self._block_drop_cycles if d < cycle)
                + sum(1 for d in self._lfp_drop_cycles if d < cycle))

    def sent_by(self, cycle: int) -> int:
        """DATA and COMPRESSED frames whose last byte the UART had taken before
        ``cycle - 1`` (FRAMES_SENT is registered once more before it counts)."""
        return sum(1 for end in self._data_frame_ends if end + 1 < cycle)

    _data_frame_ends: list[int] = field(default_factory=list)
    #: EVENTS frames sent: (event index, cycle the UART took its last byte).
    event_frames: list[tuple[int, int]] = field(default_factory=list)
    event_output: "EventOutput | None" = None

    def event_frames_sent_by(self, cycle: int) -> int:
        return sum(1 for _, end in self.event_frames if end < cycle)


def frame_stream(config: SystemConfig, samples: np.ndarray, *, enable: bool = True,
                 events: DeviceEvents | None = None,
                 modes: list[tuple[int, int]] | None = None,
                 codebook: Codebook | None = None) -> LinkSchedule:
    """The link's behaviour for ``samples`` (shape (sweeps, channels)) from reset on.

    ``modes`` lists ``(cycle, mode)``: the bandwidth mode the framer sees from that cycle on
    (a register write in cycle w is seen from w + 1); RAW before the first entry.

    Slots whose first sample is in ``samples`` are decided; a frame is only complete when
    all of its sweeps are given, so pass whole frames (trailing sweeps are ignored).
    ``events`` are the detector's (see :func:`~spikeforge.sim.models.detector.device_events`);
    without them no EVENTS frame is sent. ``codebook``: the coder's loaded table
    (``codec.codebook`` builds; see :func:`coder_blocks`).

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
    # admitted slots not yet sent: (slot, decided at, FrameType.DATA or LFP)
    waiting: list[tuple[int, int, int]] = []
    next_slot = 0
    next_event = 0                        # position in event_side.kept to send next
    events_seq = 0
    mode_changes = sorted(modes or [])
    mode_cycles = [cycle for cycle, _ in mode_changes]

    def mode_at(cycle: int) -> int:
        index = bisect_left(mode_cycles, cycle + 1)
        return mode_changes[index - 1][1] if index else BandwidthMode.RAW

    # COMPRESSED path (codec builds): decisions at block starts, descriptors at block ends.
    coded = coder_blocks(config, samples, codebook) if config.codec.enabled else []
    block_period = config.codec.block_sweeps * cps
    worst = (worst_case_words(config.channels, config.codec.block_sweeps, config.codec)
             if config.codec.enabled else 0)
    coded_capacity = config.link_buffer_samples
    block_admits: list[int] = []
    block_releases: list[tuple[int, int]] = []   # (cycle of the last word, words freed)
    coded_pops: list[int] = []
    ready_blocks: list[int] = []                  # admitted blocks, in order
    next_block = 0

    def send(byte_values: bytes, earliest: int) -> None:
        nonlocal uart_ready
        for value in byte_values:
            cycle = max(earliest, uart_ready)
            out.data.append(value)
            out.accept_cycle.append(cycle)
            uart_ready = cycle + T
            earliest = cycle + 1

    # LFP path (LFP builds): decimated sweeps, decided like DATA slots from the same buffer.
    lfp_values = None
    lfp_slots = 0
    next_lfp = 0
    if config.lfp is not None:
        from spikeforge.sim.models.decimator import decimate

        lfp_values = out.lfp_samples = decimate(config.lfp, samples)
        lfp_slots = lfp_values.shape[0] // spf
    last_channel = config.channels - 1
    # The last admitted frame of each kind: (decided, its last sample's cycle).
    filling: dict[int, tuple[int, int]] = {}

    def data_decision(slot: int) -> int:
        return slot * spf * cps + SOURCE_LATENCY

    def lfp_decision(slot: int) -> int:
        return lfp_arrival(config, slot * spf, 0)

    def decide_slots(until: int) -> None:
        nonlocal next_slot, next_lfp
        while True:
            t_data = data_decision(next_slot) if next_slot < slots else None
            t_lfp = lfp_decision(next_lfp) if next_lfp < lfp_slots else None
            if t_data is not None and t_data <= until and (t_lfp is None or t_data <= t_lfp):
                kind, slot, t_decide, wanted = FrameType.DATA, next_slot, t_data, \
                    BandwidthMode.RAW
                next_slot += 1
                last = t_decide + (spf - 1) * cps + last_channel
            elif t_lfp is not None and t_lfp <= until:
                kind, slot, t_decide, wanted = FrameType.LFP, next_lfp, t_lfp, \
                    BandwidthMode.EVENTS_LFP
                next_lfp += 1
                last = lfp_arrival(config, slot * spf + spf - 1, last_channel)
            else:
                return
            reserved = (frame_samples * bisect_left(admits, t_decide)
                        - bisect_left(pops, t_decide))
            if not enable or mode_at(t_decide) != wanted:
                continue
            # One frame fills the buffer at a time (LFP builds only have two kinds).
            other_filling = any(k != kind and a < t_decide <= end
                                for k, (a, end) in filling.items())
            if reserved + frame_samples > capacity or other_filling:
                if kind == FrameType.DATA:
                    out.dropped_slots.append(slot)
                else:
                    out.dropped_lfp_slots.append(slot)
                    out._lfp_drop_cycles.append(t_decide)
                continue
            admits.append(t_decide)
            filling[kind] = (t_decide, last)
            (out.sent_slots if kind == FrameType.DATA else out.sent_lfp_slots).append(slot)
            waiting.append((slot, t_decide, kind))

    def send_data(slot: int, t_decide: int, start: int, kind: int = FrameType.DATA) -> None:
        nonlocal identity_count, next_identity_slot
        # An LFP frame's identity is due by the DATA slots started before the serializer
        # left IDLE (the RTL's slot counter), a DATA frame's by its own slot.
        key = slot if kind == FrameType.DATA else slots_started_before(start - 1)
        if key >= next_identity_slot:
            send(build_frame(FrameType.IDENTITY, identity_count, identity_payload), start)
            identity_count += 1
            next_identity_slot = key + config.identity_interval_frames
            start = out.accept_cycle[-1] + 1
        values = samples if kind == FrameType.DATA else lfp_values
        block = values[slot * spf:(slot + 1) * spf][:, enabled]  # channel mask
        out.sent_frames.append((kind, slot))
        frame = build_frame(kind, slot, block.astype("<i2").tobytes())
        send(frame[:HEADER_BYTES], start)
        payload = frame[HEADER_BYTES:-CRC_BYTES]
        for j in range(frame_samples):
            sweep, position = divmod(j, len(enabled))
            channel = enabled[position]  # channel mask: the sample's real channel
            if kind == FrameType.DATA:
                arrival = t_decide + sweep * cps + channel
            else:
                arrival = lfp_arrival(config, slot * spf + sweep, channel)
            send(payload[2 * j:2 * j + 1], arrival + 1)
            send(payload[2 * j + 1:2 * j + 2], 0)
            pops.append(out.accept_cycle[-1])
        send(frame[-CRC_BYTES:], 0)
        out._data_frame_ends.append(out.accept_cycle[-1])

    def decide_blocks(until: int) -> None:
        nonlocal next_block
        while next_block < len(coded) and next_block * block_period + SOURCE_LATENCY <= until:
            block = next_block
            next_block += 1
            t_decide = block * block_period + SOURCE_LATENCY
            if not enable or mode_at(t_decide) != BandwidthMode.LOSSLESS:
                continue
            reserved = (worst * bisect_left(block_admits, t_decide)
                        - sum(freed for end, freed in block_releases if end < t_decide)
                        - bisect_left(coded_pops, t_decide))
            if reserved + worst > coded_capacity:
                out.dropped_blocks.append(block)
                out._block_drop_cycles.append(t_decide)
                continue
            block_admits.append(t_decide)
            block_releases.append((coded[block].last_word_cycle, worst - coded[block].words))
            out.sent_blocks.append(block)
            ready_blocks.append(block)

    def slots_started_before(cycle: int) -> int:
        period = spf * cps
        return max(0, -(-(cycle - SOURCE_LATENCY) // period))

    def send_compressed(block: int, idle_cycle: int) -> None:
        nonlocal identity_count, next_identity_slot
        start = idle_cycle + 1
        key = slots_started_before(idle_cycle)
        if key >= next_identity_slot:
            send(build_frame(FrameType.IDENTITY, identity_count, identity_payload), start)
            identity_count += 1
            next_identity_slot = key + config.identity_interval_frames
            start = out.accept_cycle[-1] + 1
        payload = coded[block].payload
        out.sent_frames.append((FrameType.COMPRESSED, block))
        frame = build_frame(FrameType.COMPRESSED, block, payload)
        send(frame[:HEADER_BYTES], start)
        for j in range(len(payload) // 2):
            send(payload[2 * j:2 * j + 2], 0)
            coded_pops.append(out.accept_cycle[-1])
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
        decide_blocks(t)
        event_side.decide_until(t)
        if waiting and waiting[0][1] + 1 <= t:
            slot, t_decide, kind = waiting.pop(0)
            send_data(slot, t_decide, t + 1, kind)
        elif ready_blocks and coded[ready_blocks[0]].last_word_cycle + 1 <= t:
            send_compressed(ready_blocks.pop(0), t)
        elif next_event < len(event_side.kept) and event_side.word_readable(next_event, 0) <= t:
            send_events(next_event, t + 1)
            next_event += 1
        else:
            candidates = []
            if waiting:
                candidates.append(waiting[0][1] + 1)
            if next_slot < slots:
                candidates.append(next_slot * spf * cps + SOURCE_LATENCY)
            if next_lfp < lfp_slots:
                candidates.append(lfp_decision(next_lfp))
            if ready_blocks:
                candidates.append(coded[ready_blocks[0]].last_word_cycle + 1)
            if next_block < len(coded):
                candidates.append(next_block * block_period + SOURCE_LATENCY)
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
