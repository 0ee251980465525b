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
from spikeforge.firmware.wire import BandwidthMode, FrameType
from spikeforge.hdl.compressor import PACK_LATENCY as CODER_PACK_LATENCY  # (ctime)
from spikeforge.sim.models.detector import DeviceEvents, EventOutput
from spikeforge.sim.models.framer_parts import (
    BlockAdmission,
    ModeTimeline,
    PendingFrame,
    SampleBuffer,
    Serializer,
    SlotAdmission,
    UartLink,
)

__all__ = ["LinkSchedule", "frame_stream", "FramerModel", "SOURCE_LATENCY", "CoderBlock",
           "coder_blocks", "ModelLimit", "LFP_LATENCY", "lfp_arrival"]


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
    """
    return FramerModel(config, samples, enable=enable, events=events, modes=modes,
                       codebook=codebook).run()


class FramerModel:
    """The framer's parts (:mod:`spikeforge.sim.models.framer_parts`) wired as in the RTL.

    The serializer is followed frame by frame in time order: whenever it is idle, every
    slot and block decision and event admission up to that cycle is made first (all buffer
    pops before it are known by then), then it starts a DATA or LFP frame if a slot waits,
    else a COMPRESSED frame if a block is committed, else an EVENTS frame if an event's
    first word is readable, else it waits for the next of those.
    """

    def __init__(self, config: SystemConfig, samples: np.ndarray, *, enable: bool = True,
                 events: DeviceEvents | None = None,
                 modes: list[tuple[int, int]] | None = None,
                 codebook: Codebook | None = None):
        self.config = config
        self.enable = enable
        self.modes = ModeTimeline(modes)
        self.schedule = LinkSchedule()
        self.events = EventOutput(config, events if events is not None else DeviceEvents.none())
        self.schedule.event_output = self.events
        self.link = UartLink(self.schedule, config.cycles_per_byte)
        self.serializer = Serializer(config, self.link, self._slots_started_before)
        spf = config.sweeps_per_frame
        self.buffer = SampleBuffer(config.link_buffer_samples,
                                   spf * len(config.enabled_channels))   # channel mask
        self.data = SlotAdmission(FrameType.DATA, BandwidthMode.RAW, samples,
                                  self._sample_arrival, spf)
        self.paths = [self.data]
        if config.lfp is not None:
            from spikeforge.sim.models.decimator import decimate

            self.schedule.lfp_samples = decimate(config.lfp, samples)
            lfp = SlotAdmission(FrameType.LFP, BandwidthMode.EVENTS_LFP,
                                self.schedule.lfp_samples, self._lfp_arrival, spf,
                                other=self.data)
            self.data.other = lfp
            self.paths.append(lfp)
        self.blocks = None
        if config.codec.enabled:
            codec = config.codec
            self.blocks = BlockAdmission(
                coder_blocks(config, samples, codebook),
                worst_case_words(config.channels, codec.block_sweeps, codec),
                config.link_buffer_samples, self._block_start)
        self.waiting: list[PendingFrame] = []     # admitted slots, in order
        self.next_event = 0                       # position in events.kept to send next

    def _sample_arrival(self, sweep: int, channel: int) -> int:
        return sweep * self.config.cycles_per_sample + channel + SOURCE_LATENCY

    def _lfp_arrival(self, sweep: int, channel: int) -> int:
        return lfp_arrival(self.config, sweep, channel)

    def _block_start(self, block: int) -> int:
        return self._sample_arrival(block * self.config.codec.block_sweeps, 0)

    def _slots_started_before(self, cycle: int) -> int:
        period = self.config.sweeps_per_frame * self.config.cycles_per_sample
        return max(0, -(-(cycle - SOURCE_LATENCY) // period))

    def _decide_slots(self, until: int) -> None:
        """Every slot decision up to ``until``, in time order (DATA first in a tie)."""
        while True:
            due = [(cycle, index) for index, path in enumerate(self.paths)
                   if (cycle := path.next_decision()) is not None and cycle <= until]
            if not due:
                return
            admitted = self.paths[min(due)[1]].decide(self.buffer, self.enable, self.modes)
            if admitted is not None:
                self.waiting.append(admitted)

    def _event_readable(self) -> int | None:
        if self.next_event >= len(self.events.kept):
            return None
        return self.events.word_readable(self.next_event, 0)

    def _next_wake(self) -> int | None:
        """The first cycle something may change while the serializer is idle."""
        candidates = [path.next_decision() for path in self.paths]
        if self.waiting:
            candidates.append(self.waiting[0].decided + 1)
        if self.blocks is not None:
            candidates += [self.blocks.next_readable(), self.blocks.next_decision()]
        candidates += [self._event_readable(), self.events.next_emission()]
        known = [cycle for cycle in candidates if cycle is not None]
        return min(known) if known else None

    def _start_frame(self, t: int) -> bool:
        """The serializer, idle in ``t``: sends the frame it picks; False if none."""
        blocks = self.blocks
        if self.waiting and self.waiting[0].decided + 1 <= t:
            self.serializer.send_slot_frame(self.waiting.pop(0), t + 1, self.buffer)
        elif blocks is not None and (readable := blocks.next_readable()) is not None \
                and readable <= t:
            self.serializer.send_compressed(blocks, t)
        elif (readable := self._event_readable()) is not None and readable <= t:
            self.serializer.send_events(self.events, self.next_event, t + 1)
            self.next_event += 1
        else:
            return False
        return True

    def run(self) -> LinkSchedule:
        t = 0                     # a cycle the serializer is in IDLE
        while True:
            self._decide_slots(t)
            if self.blocks is not None:
                self.blocks.decide_until(t, self.enable, self.modes)
            self.events.decide_until(t)
            if self._start_frame(t):
                t = self.link.last_taken + 1
                continue
            wake = self._next_wake()
            if wake is None:
                break
            t = max(t + 1, wake)
        return self._result()

    def _result(self) -> LinkSchedule:
        out = self.schedule
        out.identity_frames = self.serializer.identity_count
        out.sent_slots, out.dropped_slots = self.data.sent, self.data.dropped
        if len(self.paths) > 1:
            lfp = self.paths[1]
            out.sent_lfp_slots, out.dropped_lfp_slots = lfp.sent, lfp.dropped
            out._lfp_drop_cycles = lfp.drop_cycles
        if self.blocks is not None:
            out.sent_blocks, out.dropped_blocks = self.blocks.sent, self.blocks.dropped
            out._block_drop_cycles = self.blocks.drop_cycles
        return out
