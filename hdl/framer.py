"""Framer: packs the channel-serial sample stream into frames of the wire format."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import EVENT_HEADER_WORDS
from spikeforge.firmware.wire import SYNC, FrameType, encode_identity

from .crc import crc32_update
from .fifo import StreamFifo
from .layouts import EventWordLayout, SampleLayout

__all__ = ["Framer"]


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
        Stream enable (register ``STREAM_ENABLE``).
    frames_sent, frames_dropped : unsigned(32), out
        DATA frames fully sent, and DATA frames dropped for lack of buffer space.
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
    """

    def __init__(self, config: SystemConfig):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(SampleLayout(config))),
            "events": In(stream.Signature(EventWordLayout())),
            "o": Out(stream.Signature(8)),
            "enable": In(1),
            "frames_sent": Out(32),
            "frames_dropped": Out(32),
            "event_frames_sent": Out(32),
            # -- channel mask (branch mask) --
            "keep": In(1, init=1),
            "frame_samples": In(range(config.frame_samples + 1), init=config.frame_samples),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        frame_samples = self.frame_samples  # channel mask: run-time, enabled x spf
        capacity = config.link_buffer_samples
        identity = encode_identity(config)

        m.submodules.samples = samples = StreamFifo(16, capacity)
        # channel mask: as many slots as frames of one channel fit
        m.submodules.slots = slots = StreamFifo(32, capacity // config.sweeps_per_frame + 1)

        # -- admission: whole frames or nothing ---------------------------------------------
        reserved = Signal(range(capacity + 1))
        sweep_in_slot = Signal(range(config.sweeps_per_frame))
        slot_seq = Signal(32)
        writing = Signal()

        slot_start = self.i.valid & self.i.payload.first & (sweep_in_slot == 0)
        fits = self.enable & (reserved + frame_samples <= capacity)
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
        with m.If(self.i.valid & self.i.payload.first):
            m.d.sync += sweep_in_slot.eq(
                (sweep_in_slot + 1) % config.sweeps_per_frame)
        with m.If(slot_start):
            m.d.sync += [slot_seq.eq(slot_seq + 1), writing.eq(fits)]
            with m.If(self.enable & ~fits):
                m.d.sync += self.frames_dropped.eq(self.frames_dropped + 1)

        sample_pop = samples.r.valid & samples.r.ready
        m.d.sync += reserved.eq(reserved + Mux(admit, frame_samples, 0) - sample_pop)

        # -- serializer ------------------------------------------------------------------------
        frame_type = Signal(8)
        frame_seq = Signal(32)
        frame_len = Signal(16)
        is_identity = Signal()
        is_events = Signal()
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

        m.d.comb += self.o.payload.eq(byte)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(slots.r.valid):
                    with m.If(slots.r.payload >= next_identity_slot):
                        start_frame(FrameType.IDENTITY, identity_count, len(identity))
                        m.d.sync += identity_count.eq(identity_count + 1)
                    with m.Else():
                        start_frame(FrameType.DATA, slots.r.payload, 2 * frame_samples)  # mask
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
                                slots.r.payload + config.identity_interval_frames)
                            start_frame(FrameType.DATA, slots.r.payload,
                                        2 * frame_samples)  # channel mask
                            m.next = "HEADER"
                        with m.Elif(is_events):
                            m.d.sync += self.event_frames_sent.eq(self.event_frames_sent + 1)
                            m.next = "IDLE"
                        with m.Else():
                            m.d.comb += slots.r.ready.eq(1)
                            m.d.sync += self.frames_sent.eq(self.frames_sent + 1)
                            m.next = "IDLE"
        return m
