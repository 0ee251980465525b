"""The parts :class:`~spikeforge.hdl.framer.Framer` is built from.

=====================  =================================================================
part                   job
=====================  =================================================================
:class:`SlotAdmission`  one path's frame slots (DATA on the source's sweeps, LFP on the
                        decimated sweeps): slot counter, fit test, write enable
:class:`SampleBuffer`   the sample FIFO both slot paths write, with its reservation
:class:`BlockAdmission` the COMPRESSED path: block counter, worst-case reservation, the
                        commit/roll-back :class:`BlockBuffer` and the frame descriptors
:class:`Serializer`     frames as bytes: header, payload, CRC, the identity schedule; a
                        plain byte stream of whole frames to the link core behind it
=====================  =================================================================

Each has a twin of the same name in :mod:`spikeforge.sim.models.framer_parts`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.compression import WORD_BITS
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import EVENT_HEADER_WORDS
from spikeforge.firmware.wire import SYNC, FrameType, encode_identity

from .compressor import CompressedWordLayout
from .crc import crc32_update
from .fifo import StreamFifo
from .layouts import EventWordLayout

__all__ = ["SlotLayout", "BlockLayout", "SlotAdmission", "SampleBuffer", "BlockBuffer",
           "BlockAdmission", "Serializer", "coded_buffer_words", "min_block_words",
           "V2_DESCRIPTORS"]


def coded_buffer_words(config: SystemConfig) -> int:
    """Size of the framer's link buffer for COMPRESSED frames, in 16-bit words: as many words
    as the raw buffer has samples (``link_buffer_samples``), so both modes ride out the same
    link stall in bytes. It must hold two worst-case blocks (one being sent while the next is
    admitted, else every other block is dropped even on a fast link);
    :class:`~spikeforge.hdl.framer.Framer` says so if not."""
    return config.link_buffer_samples


def min_block_words(config: SystemConfig) -> int:
    """The fewest words a coded block can take (first sweep raw or flag + code, then one
    bit per sample): bounds how many blocks the buffer can hold."""
    codec = config.codec
    first = 1 + codec.codebook_bits if codec.codebook else 16
    bits = config.channels * first + (codec.block_sweeps - 1) * config.channels
    return -(-bits // WORD_BITS)


class SlotLayout(data.StructLayout):
    """An admitted frame slot: its ``seq`` and, in LFP builds, whether it is an LFP slot."""

    def __init__(self, lfp: bool):
        super().__init__({"seq": unsigned(32), **({"lfp": unsigned(1)} if lfp else {})})


class BlockLayout(data.StructLayout):
    """A committed coded block: its ``seq`` (block number) and its length in words."""

    def __init__(self):
        super().__init__({"seq": unsigned(32), "words": unsigned(16)})


class SlotAdmission(wiring.Component):
    """Frame slots of one sample path, admitted whole or not at all.

    Every ``sweeps_per_frame`` sweeps on the observed stream (``valid``, ``first``) form a
    slot, numbered from 0 after reset (``seq``, the frame's seq). At the slot's first sample
    the slot is decided in that cycle: admitted (``admit``) if ``wanted`` (streaming on, the
    path's mode in force), ``frame_samples`` more fit beside ``reserved`` in a buffer of
    ``config.link_buffer_samples``, and (``interlock``) no frame of the other path is
    incomplete; dropped (``dropped``, a one-cycle strobe) if wanted but not admitted; else
    skipped. ``write`` is high for each sample of an admitted slot that ``keep`` selects.

    Ports
    -----
    valid, first, keep : in
        The observed sample stream (it is never stalled) and the channel mask bit.
    wanted, reserved, frame_samples : in
        The decision's inputs, as above.
    admit, dropped, write : out
        Strobes of the cycle: slot admitted, slot dropped, sample to buffer.
    seq : unsigned(32), out
        The number of the slot decided next (slots decided so far).
    writing : out
        The last slot decided was admitted (from the cycle after its decision to the next
        slot's decision).
    other_incomplete : in; incomplete : out
        Only with ``interlock``: the buffer is filled by one frame at a time, so a slot is
        refused while the other path's frame is ``incomplete`` (an admitted frame of this
        path still awaits some of its ``sweeps_per_frame`` x ``channels`` samples).
    """

    def __init__(self, config: SystemConfig, *, interlock: bool = False):
        self._sweeps_per_frame = config.sweeps_per_frame
        self._capacity = config.link_buffer_samples
        self._slot_total = config.sweeps_per_frame * config.channels
        self._interlock = interlock
        super().__init__({
            "valid": In(1), "first": In(1), "keep": In(1),
            "wanted": In(1),
            "reserved": In(range(self._capacity + 1)),
            "frame_samples": In(range(config.frame_samples + 1)),
            "admit": Out(1), "dropped": Out(1), "write": Out(1),
            "seq": Out(32),
            "writing": Out(1),
            **({"other_incomplete": In(1), "incomplete": Out(1)} if interlock else {}),
        })

    def elaborate(self, platform):
        m = Module()
        sweeps_per_frame = self._sweeps_per_frame
        sweep_in_slot = Signal(range(sweeps_per_frame))
        slot_start = self.valid & self.first & (sweep_in_slot == 0)
        fits = self.wanted & (self.reserved + self.frame_samples <= self._capacity)
        if self._interlock:
            fits = fits & ~self.other_incomplete
        m.d.comb += [
            self.admit.eq(slot_start & fits),
            self.write.eq(self.valid & ((slot_start & fits) | (~slot_start & self.writing))
                          & self.keep),
        ]
        with m.If(self.valid & self.first):
            m.d.sync += sweep_in_slot.eq((sweep_in_slot + 1) % sweeps_per_frame)
        with m.If(slot_start):
            m.d.sync += [self.seq.eq(self.seq + 1), self.writing.eq(fits)]
            m.d.comb += self.dropped.eq(self.wanted & ~fits)
        if self._interlock:
            left = Signal(range(self._slot_total + 1))   # samples of the frame to come
            m.d.comb += self.incomplete.eq(left != 0)
            with m.If(self.admit):
                m.d.sync += left.eq(self._slot_total - 1)
            with m.Elif(self.valid & (left != 0)):
                m.d.sync += left.eq(left - 1)
        return m


class SampleBuffer(wiring.Component):
    """The samples of admitted frames, in a FIFO in block RAM, with their reservation.

    Ports
    -----
    w : stream of 16-bit samples in
        ``ready`` is always high: a frame reserves its place before its first sample.
    reserve : in
        A frame is admitted in this cycle: ``frame_samples`` more are reserved from the
        next cycle.
    frame_samples : in
    reserved : out
        Places reserved: frames admitted minus samples read out (a sample frees its place
        from the cycle after it is read).
    r : stream of 16-bit samples out
    """

    def __init__(self, config: SystemConfig):
        self._capacity = config.link_buffer_samples
        super().__init__({
            "w": In(stream.Signature(16, always_ready=True)),
            "reserve": In(1),
            "frame_samples": In(range(config.frame_samples + 1)),
            "reserved": Out(range(self._capacity + 1)),
            "r": Out(stream.Signature(16)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = storage = StreamFifo(16, self._capacity)
        m.d.comb += [storage.w.payload.eq(self.w.payload), storage.w.valid.eq(self.w.valid)]
        wiring.connect(m, storage.r, wiring.flipped(self.r))
        pop = self.r.valid & self.r.ready
        m.d.sync += self.reserved.eq(
            self.reserved + Mux(self.reserve, self.frame_samples, 0) - pop)
        return m


class BlockBuffer(wiring.Component):
    """FIFO of 16-bit words in block RAM whose writes become readable only when committed.

    Ports
    -----
    w : stream in; ``ready`` is always high (the writer reserves space beforehand).
    commit : in
        The words written so far, including one written in the same cycle, become readable
        from the next cycle.
    rollback : in
        The words written since the last commit are discarded (takes precedence over a
        write in the same cycle).
    r : stream out; ``valid`` while committed words are unread.
    """

    def __init__(self, depth: int):
        self.depth = 1 << max(1, (depth - 1).bit_length())
        super().__init__({
            "w": In(stream.Signature(WORD_BITS, always_ready=True)),
            "commit": In(1),
            "rollback": In(1),
            "r": Out(stream.Signature(WORD_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = storage = memory.Memory(
            shape=WORD_BITS, depth=self.depth, init=[])
        wr = storage.write_port()
        rd = storage.read_port(transparent_for=(wr,))
        bits = self.depth.bit_length()          # one more bit than the address: full != empty
        write_ptr = Signal(bits)
        commit_ptr = Signal(bits)
        read_ptr = Signal(bits)
        push = self.w.valid & ~self.rollback
        pop = self.r.valid & self.r.ready
        m.d.comb += [
            wr.addr.eq(write_ptr), wr.data.eq(self.w.payload), wr.en.eq(push),
            rd.addr.eq(read_ptr + pop),
            self.r.valid.eq(read_ptr != commit_ptr),
            self.r.payload.eq(rd.data),
        ]
        with m.If(self.rollback):
            m.d.sync += write_ptr.eq(commit_ptr)
        with m.Elif(push):
            m.d.sync += write_ptr.eq(write_ptr + 1)
        with m.If(self.commit & ~self.rollback):
            m.d.sync += commit_ptr.eq(write_ptr + push)
        with m.If(pop):
            m.d.sync += read_ptr.eq(read_ptr + 1)
        return m


class BlockAdmission(wiring.Component):
    """The COMPRESSED path: coded blocks admitted whole against a worst-case reservation.

    At a block's first sample (a sweep a multiple of ``block_sweeps`` on the observed
    stream) the block is admitted if ``wanted`` (streaming on, mode LOSSLESS) and a
    worst-case block (``worst_case_words``) fits in the :func:`coded_buffer_words` buffer,
    else dropped (if wanted) or skipped. An admitted block's words are written as they come
    on ``compressed``; at its ``last`` word the unused reservation is released and the block
    is committed, its descriptor (``seq`` the block number since reset, its length) readable
    on ``blocks`` from the next cycle; a block the coder marks ``damaged`` is rolled back
    whole and counted as dropped.

    Ports
    -----
    valid, first, wanted : in
    compressed : stream of :class:`~spikeforge.hdl.compressor.CompressedWordLayout` in
        ``ready`` is always high.
    words : stream of 16-bit words out
        The committed blocks' words.
    blocks : stream of :class:`BlockLayout` out
    dropped : unsigned(2), out
        Blocks dropped in this cycle (a refused start and a damaged end may coincide).
    started : out
        A block was admitted since ``wanted`` last rose (from the cycle after).
    """

    def __init__(self, config: SystemConfig):
        self._block_sweeps = config.coded_block_sweeps
        self._capacity = coded_buffer_words(config)
        self._worst = config.coded_worst_words
        self._sync_blocks = config.codec_v2.sync_blocks if config.codec_v2.enabled else 0
        self._descriptors = (V2_DESCRIPTORS if self._sync_blocks
                             else self._capacity // min_block_words(config) + 2)
        super().__init__({
            "valid": In(1), "first": In(1), "wanted": In(1),
            "compressed": In(stream.Signature(CompressedWordLayout(), always_ready=True)),
            "words": Out(stream.Signature(WORD_BITS)),
            "blocks": Out(stream.Signature(BlockLayout())),
            "dropped": Out(2),
            "started": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        capacity, worst = self._capacity, self._worst
        m.submodules.coded = coded = BlockBuffer(capacity)
        m.submodules.blocks = blocks = StreamFifo(BlockLayout(), self._descriptors)
        # Admission decisions of blocks whose words have not all come out of the coder yet
        # (the coder's latency is below one block, so two are ever outstanding).
        m.submodules.decisions = decisions = fifo.SyncFIFO(width=34, depth=4)
        wiring.connect(m, coded.r, wiring.flipped(self.words))
        wiring.connect(m, blocks.r, wiring.flipped(self.blocks))

        reserved = Signal(range(capacity + 1))
        sweep_in_block = Signal(range(self._block_sweeps))
        block_seq = Signal(32)
        block_start = self.valid & self.first & (sweep_in_block == 0)
        space = reserved + worst <= capacity
        chain = _BlockChain(m, self._sync_blocks, self._descriptors, block_start,
                            self.wanted, space, blocks)
        fits = self.wanted & space & chain.allowed
        admit = block_start & fits
        with m.If(self.valid & self.first):
            m.d.sync += sweep_in_block.eq((sweep_in_block + 1) % self._block_sweeps)
        with m.If(block_start):
            m.d.sync += block_seq.eq(block_seq + 1)
        m.d.comb += [
            decisions.w_data.eq(Cat(block_seq, fits, chain.sync)),
            decisions.w_en.eq(block_start),
        ]

        word = self.compressed.payload
        keep = decisions.r_data[32]
        arriving = self.compressed.valid
        words_in_block = Signal(16)
        end = arriving & word.last
        # a v2 block after a damaged one (up to the next sync block) is damaged too
        damaged = word.damaged | chain.poisoned(decisions.r_data[33])
        release = Signal(range(worst + 1))
        data_word = ~word.empty if self._sync_blocks else 1
        m.d.comb += [
            coded.w.payload.eq(word.data),
            coded.w.valid.eq(arriving & keep & ~damaged & data_word),
            decisions.r_en.eq(end),
            blocks.w.payload.seq.eq(decisions.r_data[:32]),
            blocks.w.payload.words.eq(words_in_block + data_word),
        ]
        with m.If(arriving):
            m.d.sync += words_in_block.eq(Mux(word.last, 0, words_in_block + 1))
        with m.If(end & keep):
            with m.If(damaged):
                m.d.comb += [coded.rollback.eq(1), release.eq(worst)]
            with m.Else():
                m.d.comb += [coded.commit.eq(1), blocks.w.valid.eq(1),
                             release.eq(worst - words_in_block - data_word)]
        chain.ended(end & keep, damaged, decisions.r_data[33])
        # a block admitted since ``wanted`` rose (v2: the framer's DATA slots stop)
        with m.If(~self.wanted):
            m.d.sync += self.started.eq(0)
        with m.Elif(admit):
            m.d.sync += self.started.eq(1)
        m.d.comb += self.dropped.eq((block_start & chain.counted(space))
                                    + (end & keep & damaged))
        pop = coded.r.valid & coded.r.ready
        m.d.sync += reserved.eq(reserved + Mux(admit, worst, 0) - release - pop)
        return m


#: Descriptor FIFO depth of a v2 framer (a v2 block may carry no word, so the buffer's size
#: does not bound how many blocks it holds: admission also waits for a free descriptor).
V2_DESCRIPTORS = 32


class _BlockChain:
    """v2 admission rules (``sync_blocks`` > 0; without, every rule is a constant): a block
    is admitted only at a sync block or after an admitted one, and while a descriptor is
    free; a damaged block poisons the blocks after it up to the next sync block's end.
    ``counted(space)``: a wanted block refused counts as dropped when space ran out or the
    chain broke (not while lossless waits for its first sync block)."""

    def __init__(self, m: Module, sync_blocks: int, descriptors: int, block_start, wanted,
                 space, blocks):
        self._m, self._on = m, sync_blocks > 0
        self._wanted = wanted
        if not self._on:
            self.sync, self.allowed = Const(0), Const(1)
            return
        to_sync = Signal(range(sync_blocks), name="blocks_to_sync")
        chained = Signal(name="chain_admitted")     # the block before was admitted
        self.broken = Signal(name="chain_broken")   # blocks are being lost until a sync
        self._poison = Signal(name="chain_poison")
        outstanding = Signal(range(descriptors + 1), name="blocks_outstanding")
        self.sync = to_sync == 0
        self.allowed = (self.sync | chained) & (outstanding < descriptors - 1)
        admit = block_start & wanted & space & self.allowed
        with m.If(block_start):
            m.d.sync += [to_sync.eq(Mux(to_sync == sync_blocks - 1, 0, to_sync + 1)),
                         chained.eq(admit)]
            with m.If(admit & self.sync):
                m.d.sync += self.broken.eq(0)
            with m.Elif(wanted & ~admit & (~space | chained | self.broken)):
                m.d.sync += self.broken.eq(1)
        self._admit, self._chained = admit, chained
        self._outstanding = outstanding
        self._popped = blocks.r.valid & blocks.r.ready

    def poisoned(self, block_is_sync):
        return self._poison & ~block_is_sync if self._on else Const(0)

    def ended(self, end, damaged, block_is_sync) -> None:
        """A kept block's last word arrived (``damaged``: it is rolled back)."""
        if not self._on:
            return
        m = self._m
        with m.If(end & damaged):
            m.d.sync += [self._poison.eq(1), self.broken.eq(1)]
            # no later block continues this chain (one already admitted is poisoned)
            m.d.sync += self._chained.eq(0)
        with m.Elif(end & block_is_sync):
            m.d.sync += self._poison.eq(0)
        m.d.sync += self._outstanding.eq(self._outstanding + self._admit
                                         - (end & damaged) - self._popped)

    def counted(self, space):
        if not self._on:
            return self._wanted & ~space
        return self._wanted & ~self._admit & (~space | self._chained | self.broken)


class Serializer(wiring.Component):
    """Frames as bytes: header, payload and CRC-32 (:mod:`spikeforge.firmware.wire`), whole
    frames one after the other on ``o``, a plain byte stream for the link core behind it.

    When idle it starts, in this order of priority, the frame of the slot at the head of
    ``slots`` (DATA, or LFP if its ``lfp`` bit is set; ``frame_samples`` samples from
    ``samples``), the block at the head of ``blocks`` (COMPRESSED, its words from
    ``words``), or the event record at the head of ``events`` (EVENTS; its first word holds
    the snippet lengths, so the frame length is known). A slot's or block's descriptor is
    taken in the cycle after the frame's last payload word (a registered pop, while the CRC
    goes out: the link's ready never reaches the descriptor FIFO's read address in one
    cycle); an IDENTITY frame's descriptor is not taken.

    Identity schedule: an IDENTITY frame carrying the configuration goes before the first
    frame from ``slots`` or ``blocks`` and before the first one whose key reaches the last
    identity frame's key + ``identity_interval_frames``. A DATA frame's key is its seq; an
    LFP or COMPRESSED frame's is ``slot_count`` (the DATA slots decided so far).

    Ports
    -----
    slots : stream of :class:`SlotLayout` in; samples : stream of 16-bit samples in
    blocks : stream of :class:`BlockLayout` in; words : stream of 16-bit words in
        Only with ``config.coded``.
    events : stream of :class:`EventWordLayout` in
    slot_count : unsigned(32), in
    frame_samples : in
        Samples in a DATA or LFP frame (its length is 2 x this).
    o : stream of bytes out
    frame_sent : out
        A DATA, LFP or COMPRESSED frame's last byte was taken in this cycle.
    event_frames_sent : unsigned(32), out
        EVENTS frames whose last byte was taken.

    ``identity``: the configuration IDENTITY frames report (default ``config``; the same
    channels). A virtual board that runs the design on a faster clock reports its board's.
    """

    def __init__(self, config: SystemConfig, *, identity: SystemConfig | None = None):
        self._config = config
        self._identity = config if identity is None else identity
        self._lfp = config.lfp is not None
        self._coded = config.coded
        super().__init__({
            "slots": In(stream.Signature(SlotLayout(self._lfp))),
            "samples": In(stream.Signature(16)),
            **({"blocks": In(stream.Signature(BlockLayout())),
                "words": In(stream.Signature(WORD_BITS))} if self._coded else {}),
            "events": In(stream.Signature(EventWordLayout())),
            "slot_count": In(32),
            "frame_samples": In(range(config.frame_samples + 1)),
            "o": Out(stream.Signature(8)),
            "frame_sent": Out(1),
            "event_frames_sent": Out(32),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        identity = encode_identity(self._identity)
        frame = _FrameRegisters(config, len(identity))
        accepted = self.o.valid & self.o.ready
        m.d.comb += [self.o.payload.eq(frame.byte), self.slots.ready.eq(frame.pop_slot)]
        m.d.sync += frame.pop_slot.eq(0)
        if self._coded:
            m.d.comb += self.blocks.ready.eq(frame.pop_block)
            m.d.sync += frame.pop_block.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                self._idle(m, frame, identity)
            with m.State("HEADER"):
                self._header(m, frame, accepted)
            with m.State("PAYLOAD"):
                self._payload(m, frame, identity, accepted)
            with m.State("TRAILER"):
                self._trailer(m, frame, accepted)
        return m

    # Frames from ``slots``: DATA, or LFP in LFP builds. Their identity keys (and a block's)
    # go by the DATA slot count only where another kind of frame exists.
    @property
    def _keyed(self) -> bool:
        return self._coded or self._lfp

    def _slot_frame(self):
        """(frame type, key) of the frame at the head of ``slots``."""
        if not self._lfp:
            return FrameType.DATA, self.slots.payload.seq
        is_lfp = self.slots.payload.lfp
        return (Mux(is_lfp, FrameType.LFP, FrameType.DATA),
                Mux(is_lfp, self.slot_count, self.slots.payload.seq))

    def _start(self, m: Module, frame: "_FrameRegisters", kind, seq, length) -> None:
        m.d.sync += [
            frame.type.eq(kind), frame.seq.eq(seq), frame.length.eq(length),
            frame.is_identity.eq(kind == FrameType.IDENTITY),
            frame.is_events.eq(kind == FrameType.EVENTS),
            frame.is_compressed.eq(kind == FrameType.COMPRESSED),
            frame.index.eq(0), frame.high_byte.eq(0),
            frame.samples_left.eq(self.frame_samples),
            frame.crc.eq(0xFFFFFFFF),
        ]

    def _start_identity(self, m: Module, frame: "_FrameRegisters", length: int) -> None:
        self._start(m, frame, FrameType.IDENTITY, frame.identity_count, length)
        m.d.sync += frame.identity_count.eq(frame.identity_count + 1)

    def _idle(self, m: Module, frame: "_FrameRegisters", identity: bytes) -> None:
        slot_type, slot_key = self._slot_frame()
        with m.If(self.slots.valid):
            if self._keyed:
                m.d.sync += [frame.identity_key.eq(slot_key),
                             frame.identity_before_block.eq(0)]
            with m.If(slot_key >= frame.next_identity_slot):
                self._start_identity(m, frame, len(identity))
            with m.Else():
                self._start(m, frame, slot_type, self.slots.payload.seq,
                            2 * self.frame_samples)
            m.next = "HEADER"
        if self._coded:
            with m.Elif(self.blocks.valid):
                block = self.blocks.payload
                # Identity is due by the slot count (slots pass in every mode).
                m.d.sync += [frame.identity_key.eq(self.slot_count),
                             frame.coded_left.eq(block.words),
                             frame.identity_before_block.eq(1)]
                with m.If(self.slot_count >= frame.next_identity_slot):
                    self._start_identity(m, frame, len(identity))
                with m.Else():
                    self._start(m, frame, FrameType.COMPRESSED, block.seq, block.words * 2)
                m.next = "HEADER"
        with m.Elif(self.events.valid):
            head = self.events.payload.data
            words = EVENT_HEADER_WORDS + 1 + head[0:8] + head[8:16]
            self._start(m, frame, FrameType.EVENTS, frame.events_seq, words * 2)
            m.d.sync += [frame.event_words_left.eq(words),
                         frame.events_seq.eq(frame.events_seq + 1)]
            m.next = "HEADER"

    def _header(self, m: Module, frame: "_FrameRegisters", accepted) -> None:
        seq, length = frame.seq, frame.length
        header = [SYNC[0], SYNC[1], frame.type, seq[0:8], seq[8:16], seq[16:24], seq[24:32],
                  length[0:8], length[8:16]]
        with m.Switch(frame.index):
            for position, value in enumerate(header):
                with m.Case(position):
                    m.d.comb += frame.byte.eq(value)
        m.d.comb += self.o.valid.eq(1)
        with m.If(accepted):
            with m.If(frame.index >= len(SYNC)):
                m.d.sync += frame.crc.eq(crc32_update(frame.crc, frame.byte))
            m.d.sync += frame.index.eq(frame.index + 1)
            with m.If(frame.index == len(header) - 1):
                m.d.sync += frame.index.eq(0)
                m.next = "PAYLOAD"
                if self._coded:         # a v2 block with no word: no payload
                    with m.If(frame.is_compressed & (frame.coded_left == 0)):
                        m.next = "TRAILER"
                        m.d.sync += frame.pop_block.eq(1)

    def _payload(self, m: Module, frame: "_FrameRegisters", identity: bytes,
                 accepted) -> None:
        with m.If(frame.is_identity):
            with m.Switch(frame.index):
                for position, value in enumerate(identity):
                    with m.Case(position):
                        m.d.comb += frame.byte.eq(value)
            m.d.comb += self.o.valid.eq(1)
            with m.If(accepted):
                m.d.sync += frame.index.eq(frame.index + 1)
                with m.If(frame.index == len(identity) - 1):
                    m.d.sync += frame.index.eq(0)
                    m.next = "TRAILER"
        with m.Elif(frame.is_events):
            self._send_words(m, frame, self.events, self.events.payload.data,
                             frame.event_words_left, accepted)
        if self._coded:
            with m.Elif(frame.is_compressed):
                self._send_words(m, frame, self.words, self.words.payload, frame.coded_left,
                                 accepted, pop=frame.pop_block)
        with m.Else():
            self._send_words(m, frame, self.samples, self.samples.payload,
                             frame.samples_left, accepted, pop=frame.pop_slot)
        with m.If(accepted):
            m.d.sync += frame.crc.eq(crc32_update(frame.crc, frame.byte))

    def _send_words(self, m: Module, frame: "_FrameRegisters", source, word, words_left,
                    accepted, pop: Signal | None = None) -> None:
        """Payload of 16-bit words from a stream, low byte first; a word is taken with its
        high byte; TRAILER follows the last word, and ``pop`` (the frame's descriptor is
        taken) is high in the cycle after it."""
        m.d.comb += [
            frame.byte.eq(word.word_select(frame.high_byte, 8)),
            self.o.valid.eq(source.valid),
            source.ready.eq(accepted & frame.high_byte),
        ]
        with m.If(accepted):
            m.d.sync += frame.high_byte.eq(~frame.high_byte)
            with m.If(frame.high_byte):
                m.d.sync += words_left.eq(words_left - 1)
                with m.If(words_left == 1):
                    m.next = "TRAILER"
                    if pop is not None:
                        m.d.sync += pop.eq(1)

    def _trailer(self, m: Module, frame: "_FrameRegisters", accepted) -> None:
        m.d.comb += [
            frame.byte.eq((~frame.crc).word_select(frame.index[:2], 8)),
            self.o.valid.eq(1),
        ]
        with m.If(accepted):
            m.d.sync += frame.index.eq(frame.index + 1)   # a next frame's start resets it
            with m.If(frame.index == 3):
                self._frame_done(m, frame)

    def _frame_done(self, m: Module, frame: "_FrameRegisters") -> None:
        """The last CRC byte is taken: after an IDENTITY frame the frame it preceded
        starts; otherwise the serializer idles (the descriptor was taken as the CRC began)."""
        slot_type, _ = self._slot_frame()
        keyed = self._keyed
        with m.If(frame.is_identity):
            m.d.sync += frame.next_identity_slot.eq(
                (frame.identity_key if keyed else self.slots.payload.seq)
                + self._config.identity_interval_frames)
            with m.If(~frame.identity_before_block if keyed else 1):
                self._start(m, frame, slot_type, self.slots.payload.seq,
                            2 * self.frame_samples)
            if self._coded:
                with m.Else():
                    self._start(m, frame, FrameType.COMPRESSED, self.blocks.payload.seq,
                                self.blocks.payload.words * 2)
            m.next = "HEADER"
        with m.Elif(frame.is_events):
            m.d.sync += self.event_frames_sent.eq(self.event_frames_sent + 1)
            m.next = "IDLE"
        with m.Else():                  # the descriptor was taken as the CRC started
            m.d.comb += self.frame_sent.eq(1)
            m.next = "IDLE"


class _FrameRegisters:
    """The serializer's registers for the frame it sends, and its identity schedule."""

    def __init__(self, config: SystemConfig, identity_bytes: int):
        self.type = Signal(8, name="frame_type")
        self.seq = Signal(32, name="frame_seq")
        self.length = Signal(16, name="frame_len")
        self.is_identity = Signal()
        self.is_events = Signal()
        self.is_compressed = Signal()
        self.index = Signal(range(max(identity_bytes, 9)))
        self.high_byte = Signal()
        self.samples_left = Signal(range(config.frame_samples + 1))
        self.coded_left = Signal(16)
        self.event_words_left = Signal(range(EVENT_HEADER_WORDS + 2 * 255 + 2))
        self.events_seq = Signal(32)
        self.crc = Signal(32)
        self.byte = Signal(8)
        self.identity_count = Signal(32)
        self.next_identity_slot = Signal(32)
        self.identity_key = Signal(32)            # slot number the next identity is due from
        self.identity_before_block = Signal()     # the identity precedes a COMPRESSED frame
        self.pop_slot = Signal()      # take the slot descriptor (the cycle after the last word)
        self.pop_block = Signal()     # take the block descriptor
