"""Framer: packs the channel-serial sample stream into frames of the wire format."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.compression import WORD_BITS, worst_case_words
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import EVENT_HEADER_WORDS
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.wire import SYNC, BandwidthMode, FrameType, encode_identity

from .compressor import CompressedWordLayout
from .crc import crc32_update
from .fifo import StreamFifo
from .layouts import EventWordLayout, SampleLayout

__all__ = ["Framer", "BlockBuffer", "coded_buffer_words", "min_block_words"]


def coded_buffer_words(config: SystemConfig) -> int:
    """Size of the framer's link buffer for COMPRESSED frames, in 16-bit words: as many words
    as the raw buffer has samples (``link_buffer_samples``), so both modes ride out the same
    link stall in bytes. It must hold two worst-case blocks (one being sent while the next is
    admitted, else every other block is dropped even on a fast link); :class:`Framer` says
    so if not."""
    return config.link_buffer_samples


def min_block_words(config: SystemConfig) -> int:
    """The fewest words a coded block can take (first sweep raw or flag + code, then one
    bit per sample): bounds how many blocks the buffer can hold."""
    codec = config.codec
    first = 1 + codec.codebook_bits if codec.codebook else 16
    bits = config.channels * first + (codec.block_sweeps - 1) * config.channels
    return -(-bits // WORD_BITS)


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
            "w": In(stream.Signature(WORD_BITS)),
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
            self.w.ready.eq(1),
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


class Framer(wiring.Component):
    """Turns sweeps of samples into DATA frames (and IDENTITY frames) as bytes for the link.

    Frame slots: every ``sweeps_per_frame`` sweeps form one slot, numbered from 0 after
    reset; the slot number is the frame's ``seq``. At the first sample of a slot the framer
    decides, in that cycle, whether the whole frame fits in the link buffer
    (``config.link_buffer_samples`` samples, space reserved per frame, freed as bytes leave):

    * it fits and ``enable`` is high: every sample of the slot is buffered and the frame is
      sent;
    * it does not fit: the whole frame is dropped and ``frames_dropped`` counts it — never a
      part of a frame;
    * ``enable`` is low: the slot is skipped (not counted as a drop).

    The serializer sends each buffered frame as header, payload and CRC-32
    (:mod:`spikeforge.firmware.wire`). Before the first data frame, and before the first one
    sent once ``identity_interval_frames`` slots have passed since the last identity frame,
    it sends an IDENTITY frame carrying the configuration.

    Events: when the serializer is idle and no DATA slot waits, an event record at the head
    of ``events`` (its first word holds the snippet lengths, so the frame length is known)
    is sent as one EVENTS frame (:mod:`spikeforge.firmware.wire`), seq counting EVENTS
    frames. Whole events are admitted or dropped upstream, in the detector's buffer, which
    counts its drops; the framer never drops or splits an event.

    Bandwidth modes (``mode``, register ``BANDWIDTH_MODE``): each path reads the mode at its
    own boundary, so no frame is ever half one mode, half another. A DATA slot is admitted
    only if the mode at its first sample is RAW (otherwise skipped, not counted as a drop).
    With a coder (``config.codec.enabled``), ``compressed`` carries the
    :class:`~spikeforge.hdl.compressor.Compressor`'s words of every block; at a block's first
    sample (sweep a multiple of ``block_sweeps``) the framer admits the block if the mode is
    LOSSLESS and a worst-case block (``worst_case_words``) fits in the coded buffer
    (:func:`coded_buffer_words` words, space reserved per block), else drops it whole and
    counts it (mode LOSSLESS) or skips it (other modes). An admitted block's words are
    written as they come; at its ``last`` word the unused reservation is released and the
    block is committed as one COMPRESSED frame, ``seq`` the block number since reset (first
    sweep ``seq * block_sweeps``), its header going out once the whole block is buffered. A
    block the coder marks ``damaged`` is rolled back whole and counted in ``frames_dropped``.
    Events are sent in every mode, when the serializer is idle and no frame waits.

    LFP (``config.lfp``, mode EVENTS_LFP): the decimated sweeps on ``lfp`` take the DATA
    path. LFP slots of ``sweeps_per_frame`` decimated sweeps are numbered from reset and
    decided at their first sample like DATA slots (admitted if the mode is EVENTS_LFP and a
    frame fits, else dropped and counted, or skipped in other modes), into the same sample
    buffer, reservation and slot FIFO (a bit marks LFP slots), and sent as LFP frames
    (``seq`` the LFP slot number) in slot order with the DATA frames. The buffer is filled
    by one frame at a time: a slot of either kind that starts while an admitted frame of
    the other kind still awaits samples is dropped and counted (only around a raw <->
    events+lfp switch). An LFP frame's identity schedule goes by the DATA slot count, as a
    COMPRESSED frame's does.

    The byte stream and the drop decisions are modelled cycle-exactly by
    :mod:`spikeforge.sim.models.framer`.

    Ports
    -----
    i : stream of :class:`SampleLayout` in
        ``ready`` is always high: the framer never stalls the sample source.
    o : stream of bytes out, to the UART.
    events : stream of :class:`EventWordLayout` in
        Event records from the detector, whole records back to back.
    enable : in
        Stream enable (register ``STREAM_ENABLE``): gates DATA and COMPRESSED frames.
    mode : unsigned(2), in
        Bandwidth mode (:class:`~spikeforge.firmware.wire.BandwidthMode`).
    compressed : stream of :class:`~spikeforge.hdl.compressor.CompressedWordLayout` in
        Only with ``config.codec.enabled``. ``ready`` is always high.
    frames_sent, frames_dropped : unsigned(32), out
        DATA and COMPRESSED frames fully sent, and those dropped whole (no buffer space, or
        a damaged block).
    event_frames_sent : unsigned(32), out
        EVENTS frames fully sent.
    keep : in
        Channel mask (:class:`~spikeforge.hdl.channel_mask.ChannelMask`): whether the sample
        on ``i`` in this cycle goes into the DATA frame. Masked samples are not buffered;
        the slot decision is still made at channel 0's sample of the slot's first sweep.
        Tied high (every channel) when not driven.
    frame_samples : in
        Samples in a DATA frame, enabled channels x ``sweeps_per_frame``; must only change
        while ``idle`` is high and ``enable`` low (the DATA frame length is 2 x this).
    idle : out
        No DATA frame is being filled or waits to be sent.
    lfp : stream of :class:`SampleLayout` in
        Only with ``config.lfp``: the :class:`~spikeforge.hdl.decimator.Decimator`'s
        decimated sweeps, ``first`` on channel 0. ``ready`` is always high.
    lfp_keep : in
        Only with ``config.lfp``: whether the sample on ``lfp`` in this cycle goes into the
        LFP frame (the channel mask, as ``keep``). Tied high when not driven.
    """

    def __init__(self, config: SystemConfig):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(SampleLayout(config))),
            "events": In(stream.Signature(EventWordLayout())),
            "o": Out(stream.Signature(8)),
            "enable": In(1),
            "mode": In(2),
            "frames_sent": Out(32),
            "frames_dropped": Out(32),
            "event_frames_sent": Out(32),
            **({"compressed": In(stream.Signature(CompressedWordLayout()))}
               if config.codec.enabled else {}),
            "keep": In(1, init=1),
            "frame_samples": In(range(config.frame_samples + 1), init=config.frame_samples),
            "idle": Out(1),
            # -- LFP (bandwidth mode 3) --
            **({"lfp": In(stream.Signature(SampleLayout(config))), "lfp_keep": In(1, init=1)}
               if config.lfp is not None else {}),
        })
        if config.codec.enabled:
            worst = worst_case_words(config.channels, config.codec.block_sweeps, config.codec)
            if 2 * worst > coded_buffer_words(config):
                raise ConfigError(
                    f"the link buffer ({config.link_buffer_samples} words) cannot hold two "
                    f"worst-case coded blocks ({worst} words each: {config.channels} channels "
                    f"x {config.codec.block_sweeps} sweeps), one being sent while the next is "
                    f"admitted; raise link_buffer_samples to at least {2 * worst} or lower "
                    "codec.block_sweeps")

    def elaborate(self, platform):
        config = self._config
        m = Module()
        frame_samples = self.frame_samples  # channel mask: run-time, enabled x spf
        capacity = config.link_buffer_samples
        identity = encode_identity(config)

        m.submodules.samples = samples = StreamFifo(16, capacity)
        # channel mask: as many slots as frames of one channel fit
        # LFP builds: bit 32 marks an LFP slot (seq counting LFP slots) in the same FIFO.
        m.submodules.slots = slots = StreamFifo(32 + (config.lfp is not None),
                                                capacity // config.sweeps_per_frame + 1)
        lfp_dropped = Signal()        # an LFP slot is dropped in this cycle

        data_dropped = Signal()       # a DATA slot is dropped in this cycle
        block_dropped = Signal(2)     # coded blocks dropped (refused, rolled back) this cycle
        data_sent = Signal()
        block_sent = Signal()
        dropped_total = self.frames_dropped + data_dropped + block_dropped
        if config.lfp is not None:
            dropped_total = dropped_total + lfp_dropped
        # FRAMES_SENT counts a frame one cycle after its last byte left (the count is
        # registered first): the frame-end decision depends on the UART's ready and is the
        # ECP5's longest path at 1024 channels without the 32-bit add behind it.
        sent = Signal(2)
        m.d.sync += [
            self.frames_dropped.eq(dropped_total),
            sent.eq(data_sent + block_sent),
            self.frames_sent.eq(self.frames_sent + sent),
        ]

        # -- admission: whole frames or nothing ---------------------------------------------
        reserved = Signal(range(capacity + 1))
        sweep_in_slot = Signal(range(config.sweeps_per_frame))
        slot_seq = Signal(32)
        writing = Signal()

        slot_start = self.i.valid & self.i.payload.first & (sweep_in_slot == 0)
        fits = (self.enable & (self.mode == BandwidthMode.RAW)
                & (reserved + frame_samples <= capacity))
        lfp_path = None
        if config.lfp is not None:
            lfp_path = self._lfp_path(m, reserved, frame_samples, capacity, lfp_dropped)
            fits = fits & lfp_path["idle"]   # never two frames filling the buffer at once
        admit = slot_start & fits
        write = self.i.valid & ((slot_start & fits) | (~slot_start & writing))
        write = write & self.keep  # channel mask: masked samples are not buffered

        m.d.comb += [
            self.i.ready.eq(1),
            samples.w.payload.eq(self.i.payload.value),
            samples.w.valid.eq(write),
            slots.w.payload.eq(slot_seq),
            slots.w.valid.eq(admit),
            self.idle.eq(~writing & ~slots.r.valid),  # channel mask: may change now
        ]
        if lfp_path is not None:
            self._lfp_admission(m, lfp_path, admit, samples, slots)
        admitted = admit if lfp_path is None else admit | lfp_path["admit"]
        with m.If(self.i.valid & self.i.payload.first):
            m.d.sync += sweep_in_slot.eq(
                (sweep_in_slot + 1) % config.sweeps_per_frame)
        with m.If(slot_start):
            m.d.sync += [slot_seq.eq(slot_seq + 1), writing.eq(fits)]
            m.d.comb += data_dropped.eq(self.enable & (self.mode == BandwidthMode.RAW) & ~fits)

        sample_pop = samples.r.valid & samples.r.ready
        m.d.sync += reserved.eq(reserved + Mux(admitted, frame_samples, 0) - sample_pop)

        # -- COMPRESSED path: one block per frame, admitted whole at the block's start -------
        coded = blocks = None
        if config.codec.enabled:
            coded, blocks, slot_count = self._compressed_path(m, slot_seq, block_dropped)

        # -- serializer ------------------------------------------------------------------------
        frame_type = Signal(8)
        frame_seq = Signal(32)
        frame_len = Signal(16)
        is_identity = Signal()
        is_events = Signal()
        is_compressed = Signal()
        identity_key = Signal(32)     # slot number the next identity frame is due from
        identity_before_block = Signal()   # the identity frame precedes a COMPRESSED frame
        coded_left = Signal(16)
        event_words_left = Signal(range(EVENT_HEADER_WORDS + 2 * 255 + 2))
        events_seq = Signal(32)
        index = Signal(range(max(len(identity), 9)))
        high_byte = Signal()
        samples_left = Signal(range(config.frame_samples + 1))
        crc = Signal(32)
        identity_count = Signal(32)
        next_identity_slot = Signal(32)

        byte = Signal(8)
        accepted = self.o.valid & self.o.ready

        def start_frame(kind, seq, length):
            m.d.sync += [
                frame_type.eq(kind), frame_seq.eq(seq), frame_len.eq(length),
                is_identity.eq(kind == FrameType.IDENTITY),
                is_events.eq(kind == FrameType.EVENTS),
                is_compressed.eq(kind == FrameType.COMPRESSED),
                index.eq(0), high_byte.eq(0), samples_left.eq(frame_samples),
                crc.eq(0xFFFFFFFF),
            ]

        def send_words(source, word, words_left):
            """Payload of 16-bit words from a stream, low byte first; a word is taken with
            its high byte; TRAILER follows the last word."""
            m.d.comb += [
                byte.eq(word.word_select(high_byte, 8)),
                self.o.valid.eq(source.valid),
                source.ready.eq(accepted & high_byte),
            ]
            with m.If(accepted):
                m.d.sync += high_byte.eq(~high_byte)
                with m.If(high_byte):
                    m.d.sync += words_left.eq(words_left - 1)
                    with m.If(words_left == 1):
                        m.next = "TRAILER"

        # Frames from the slot FIFO: DATA, or LFP in LFP builds. An LFP slot's identity
        # schedule goes by the DATA slot count (slots pass in every mode), as a block's does.
        keyed = config.codec.enabled or config.lfp is not None
        slot_frame_seq = slots.r.payload[:32]
        if config.lfp is None:
            slot_frame_type = FrameType.DATA
            slot_key = slot_frame_seq
        else:
            is_lfp_slot = slots.r.payload[32]
            slot_frame_type = Mux(is_lfp_slot, FrameType.LFP, FrameType.DATA)
            slot_key = Mux(is_lfp_slot, slot_seq, slot_frame_seq)

        m.d.comb += self.o.payload.eq(byte)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(slots.r.valid):
                    if keyed:
                        m.d.sync += [identity_key.eq(slot_key),
                                     identity_before_block.eq(0)]
                    with m.If(slot_key >= next_identity_slot):
                        start_frame(FrameType.IDENTITY, identity_count, len(identity))
                        m.d.sync += identity_count.eq(identity_count + 1)
                    with m.Else():
                        start_frame(slot_frame_type, slot_frame_seq, 2 * frame_samples)
                    m.next = "HEADER"
                if blocks is not None:
                    with m.Elif(blocks.r.valid):
                        block_seq, block_words = blocks.r.payload[:32], blocks.r.payload[32:]
                        # Identity is due by the slot count (slots pass in every mode).
                        m.d.sync += [identity_key.eq(slot_count), coded_left.eq(block_words),
                                     identity_before_block.eq(1)]
                        with m.If(slot_count >= next_identity_slot):
                            start_frame(FrameType.IDENTITY, identity_count, len(identity))
                            m.d.sync += identity_count.eq(identity_count + 1)
                        with m.Else():
                            start_frame(FrameType.COMPRESSED, block_seq, block_words * 2)
                        m.next = "HEADER"
                with m.Elif(self.events.valid):
                    head = self.events.payload.data
                    words = EVENT_HEADER_WORDS + 1 + head[0:8] + head[8:16]
                    start_frame(FrameType.EVENTS, events_seq, words * 2)
                    m.d.sync += [event_words_left.eq(words), events_seq.eq(events_seq + 1)]
                    m.next = "HEADER"

            with m.State("HEADER"):
                header = [SYNC[0], SYNC[1], frame_type,
                          frame_seq[0:8], frame_seq[8:16], frame_seq[16:24], frame_seq[24:32],
                          frame_len[0:8], frame_len[8:16]]
                with m.Switch(index):
                    for position, value in enumerate(header):
                        with m.Case(position):
                            m.d.comb += byte.eq(value)
                m.d.comb += self.o.valid.eq(1)
                with m.If(accepted):
                    with m.If(index >= len(SYNC)):
                        m.d.sync += crc.eq(crc32_update(crc, byte))
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == len(header) - 1):
                        m.d.sync += index.eq(0)
                        m.next = "PAYLOAD"

            with m.State("PAYLOAD"):
                with m.If(is_identity):
                    with m.Switch(index):
                        for position, value in enumerate(identity):
                            with m.Case(position):
                                m.d.comb += byte.eq(value)
                    m.d.comb += self.o.valid.eq(1)
                    with m.If(accepted):
                        m.d.sync += index.eq(index + 1)
                        with m.If(index == len(identity) - 1):
                            m.d.sync += index.eq(0)
                            m.next = "TRAILER"
                with m.Elif(is_events):
                    send_words(self.events, self.events.payload.data, event_words_left)
                if coded is not None:
                    with m.Elif(is_compressed):
                        send_words(coded.r, coded.r.payload, coded_left)
                with m.Else():
                    send_words(samples.r, samples.r.payload, samples_left)
                with m.If(accepted):
                    m.d.sync += crc.eq(crc32_update(crc, byte))

            with m.State("TRAILER"):
                m.d.comb += [
                    byte.eq((~crc).word_select(index[:2], 8)),
                    self.o.valid.eq(1),
                ]
                with m.If(accepted):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == 3):
                        with m.If(is_identity):
                            m.d.sync += next_identity_slot.eq(
                                (identity_key if keyed else slots.r.payload)
                                + config.identity_interval_frames)
                            with m.If(~identity_before_block if keyed else 1):
                                start_frame(slot_frame_type, slot_frame_seq,
                                            2 * frame_samples)
                            if blocks is not None:
                                with m.Else():
                                    start_frame(FrameType.COMPRESSED, blocks.r.payload[:32],
                                                blocks.r.payload[32:] * 2)
                            m.next = "HEADER"
                        with m.Elif(is_events):
                            m.d.sync += self.event_frames_sent.eq(self.event_frames_sent + 1)
                            m.next = "IDLE"
                        if blocks is not None:
                            with m.Elif(is_compressed):
                                m.d.comb += [blocks.r.ready.eq(1), block_sent.eq(1)]
                                m.next = "IDLE"
                        with m.Else():
                            m.d.comb += [slots.r.ready.eq(1), data_sent.eq(1)]
                            m.next = "IDLE"
        return m

    def _compressed_path(self, m: Module, slot_seq: Signal, block_dropped: Signal):
        """Block admission, the coded buffer and its frame descriptors (codec builds only).

        Returns the buffer, the descriptor FIFO (seq | words << 32) and the slot count the
        identity schedule uses."""
        config = self._config
        codec = config.codec
        capacity = coded_buffer_words(config)
        worst = worst_case_words(config.channels, codec.block_sweeps, codec)
        m.submodules.coded = coded = BlockBuffer(capacity)
        m.submodules.blocks = blocks = StreamFifo(48, capacity // min_block_words(config) + 2)
        # Admission decisions of blocks whose words have not all come out of the coder yet
        # (the coder's latency is below one block, so two are ever outstanding).
        m.submodules.decisions = decisions = fifo.SyncFIFO(width=33, depth=4)

        reserved = Signal(range(capacity + 1))
        sweep_in_block = Signal(range(codec.block_sweeps))
        block_seq = Signal(32)
        block_start = self.i.valid & self.i.payload.first & (sweep_in_block == 0)
        lossless = self.enable & (self.mode == BandwidthMode.LOSSLESS)
        fits = lossless & (reserved + worst <= capacity)
        admit = block_start & fits
        with m.If(self.i.valid & self.i.payload.first):
            m.d.sync += sweep_in_block.eq((sweep_in_block + 1) % codec.block_sweeps)
        with m.If(block_start):
            m.d.sync += block_seq.eq(block_seq + 1)
        m.d.comb += [
            decisions.w_data.eq(Cat(block_seq, fits)),
            decisions.w_en.eq(block_start),
        ]

        word = self.compressed.payload
        keep = decisions.r_data[32]
        arriving = self.compressed.valid
        words_in_block = Signal(16)
        end = arriving & word.last
        release = Signal(range(worst + 1))
        m.d.comb += [
            self.compressed.ready.eq(1),
            coded.w.payload.eq(word.data),
            coded.w.valid.eq(arriving & keep & ~word.damaged),
            decisions.r_en.eq(end),
            blocks.w.payload.eq(Cat(decisions.r_data[:32], words_in_block + 1)),
        ]
        with m.If(arriving):
            m.d.sync += words_in_block.eq(Mux(word.last, 0, words_in_block + 1))
        with m.If(end & keep):
            with m.If(word.damaged):
                m.d.comb += [coded.rollback.eq(1), release.eq(worst)]
            with m.Else():
                m.d.comb += [coded.commit.eq(1), blocks.w.valid.eq(1),
                             release.eq(worst - words_in_block - 1)]
        # A refused block start and a damaged block end may fall in the same cycle.
        m.d.comb += block_dropped.eq((block_start & lossless & ~fits)
                                     + (end & keep & word.damaged))
        pop = coded.r.valid & coded.r.ready
        m.d.sync += reserved.eq(reserved + Mux(admit, worst, 0) - release - pop)
        return coded, blocks, slot_seq


    def _lfp_path(self, m: Module, reserved: Signal, frame_samples, capacity: int,
                  lfp_dropped: Signal) -> dict:
        """LFP slot admission (LFP builds only): the DATA path's rule on the decimated
        stream ``lfp``. Returns the signals the DATA path shares with it."""
        config = self._config
        slot_total = config.sweeps_per_frame * config.channels
        # Samples of an admitted frame still to arrive, per path: the buffer is filled by
        # one frame at a time, so a slot of one path is refused (and counted) while a frame
        # of the other is filling (only around a raw <-> events+lfp switch).
        data_left = Signal(range(slot_total + 1))
        lfp_left = Signal(range(slot_total + 1))
        sweep_in_slot = Signal(range(config.sweeps_per_frame))
        lfp_seq = Signal(32)
        lfp = self.lfp
        slot_start = lfp.valid & lfp.payload.first & (sweep_in_slot == 0)
        mode_lfp = self.enable & (self.mode == BandwidthMode.EVENTS_LFP)
        fits = mode_lfp & (reserved + frame_samples <= capacity) & (data_left == 0)
        admit = slot_start & fits
        write = lfp.valid & self.lfp_keep & (admit | (~slot_start & (lfp_left != 0)))
        m.d.comb += lfp.ready.eq(1)
        with m.If(lfp.valid & lfp.payload.first):
            m.d.sync += sweep_in_slot.eq((sweep_in_slot + 1) % config.sweeps_per_frame)
        with m.If(slot_start):
            m.d.sync += lfp_seq.eq(lfp_seq + 1)
            m.d.comb += lfp_dropped.eq(mode_lfp & ~fits)
        with m.If(admit):
            m.d.sync += lfp_left.eq(slot_total - 1)
        with m.Elif(lfp.valid & (lfp_left != 0)):
            m.d.sync += lfp_left.eq(lfp_left - 1)
        return {"idle": lfp_left == 0, "admit": admit, "write": write, "seq": lfp_seq,
                "data_left": data_left, "lfp_left": lfp_left, "total": slot_total}

    def _lfp_admission(self, m: Module, path: dict, data_admit, samples, slots) -> None:
        """The LFP slot's share of the sample buffer and the slot FIFO (LFP builds only)."""
        data_left = path["data_left"]
        with m.If(data_admit):
            m.d.sync += data_left.eq(path["total"] - 1)
        with m.Elif(self.i.valid & (data_left != 0)):
            m.d.sync += data_left.eq(data_left - 1)
        with m.If(path["write"]):
            m.d.comb += [samples.w.payload.eq(self.lfp.payload.value), samples.w.valid.eq(1)]
        with m.If(path["admit"]):
            m.d.comb += [slots.w.payload.eq(Cat(path["seq"], 1)), slots.w.valid.eq(1)]
