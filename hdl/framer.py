"""Framer: packs the channel-serial sample stream into frames of the wire format."""

from amaranth.hdl import Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.wire import BandwidthMode

from .compressor import CompressedWordLayout
from .fifo import StreamFifo
from .framer_parts import (
    BlockAdmission,
    BlockBuffer,
    SampleBuffer,
    Serializer,
    SlotAdmission,
    SlotLayout,
    coded_buffer_words,
    min_block_words,
)
from .layouts import EventWordLayout, SampleLayout

__all__ = ["Framer", "BlockBuffer", "coded_buffer_words", "min_block_words"]


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
    With a coder (``config.coded``), ``compressed`` carries the
    :class:`~spikeforge.hdl.compressor.Compressor`'s words of every block; at a block's first
    sample (sweep a multiple of ``block_sweeps``) the framer admits the block if the mode is
    LOSSLESS and a worst-case block (``worst_case_words``) fits in the coded buffer
    (:func:`coded_buffer_words` words, space reserved per block), else drops it whole and
    counts it (mode LOSSLESS) or skips it (other modes). An admitted block's words are
    written as they come; at its ``last`` word the unused reservation is released and the
    block is committed as one COMPRESSED frame, ``seq`` the block number since reset (first
    sweep ``seq * block_sweeps``), its header going out once the whole block is buffered. A
    block the coder marks ``damaged`` is rolled back whole and counted in ``frames_dropped``.
    With the v2 coder (``config.codec_v2``) the blocks form a chain from each sync block
    (``codec_v2.sync_blocks``): a block is admitted only at a sync block or after an
    admitted one, so once one is dropped or damaged the rest up to the next sync block are
    dropped too (each counted: the host could not decode them); a v2 block may carry no
    word (``empty``), which is a COMPRESSED frame with no payload. Until the first v2 block
    is admitted after the mode became LOSSLESS, DATA slots are admitted as in RAW mode, so
    the sweeps before the chain's first sync block leave as DATA (the last such slot may
    overlap the first block: a host keeps those sweeps once).
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

    Parts (:mod:`spikeforge.hdl.framer_parts`): a :class:`SlotAdmission` per slot path
    (DATA; LFP in LFP builds) writing one :class:`SampleBuffer` and one FIFO of slot
    descriptors; a :class:`BlockAdmission` (codec builds); a :class:`Serializer` whose byte
    stream is ``o``. The byte stream and the drop decisions are modelled cycle-exactly by
    :mod:`spikeforge.sim.models.framer`, built from the same parts.

    Ports
    -----
    i : stream of :class:`SampleLayout` in
        ``ready`` is always high (``always_ready``): the framer never stalls the source.
    o : stream of bytes out
        Whole wire frames back to back, for the link core (UART, Ethernet).
    events : stream of :class:`EventWordLayout` in
        Event records from the detector, whole records back to back.
    enable : in
        Stream enable (register ``STREAM_ENABLE``): gates DATA and COMPRESSED frames.
    mode : unsigned(2), in
        Bandwidth mode (:class:`~spikeforge.firmware.wire.BandwidthMode`).
    compressed : stream of :class:`~spikeforge.hdl.compressor.CompressedWordLayout` in
        Only with ``config.coded``. ``ready`` is always high (``always_ready``).
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
        decimated sweeps, ``first`` on channel 0. ``ready`` is always high
        (``always_ready``).
    lfp_keep : in
        Only with ``config.lfp``: whether the sample on ``lfp`` in this cycle goes into the
        LFP frame (the channel mask, as ``keep``). Tied high when not driven.
    """

    def __init__(self, config: SystemConfig, *, identity: SystemConfig | None = None):
        """``identity``: what IDENTITY frames report (default ``config``), see
        :class:`~.framer_parts.Serializer`."""
        self._config = config
        self._identity = identity
        super().__init__({
            "i": In(stream.Signature(SampleLayout(config), always_ready=True)),
            "events": In(stream.Signature(EventWordLayout())),
            "o": Out(stream.Signature(8)),
            "enable": In(1),
            "mode": In(2),
            "frames_sent": Out(32),
            "frames_dropped": Out(32),
            "event_frames_sent": Out(32),
            **({"compressed": In(stream.Signature(CompressedWordLayout(), always_ready=True))}
               if config.coded else {}),
            "keep": In(1, init=1),
            "frame_samples": In(range(config.frame_samples + 1), init=config.frame_samples),
            "idle": Out(1),
            # -- LFP (bandwidth mode 3) --
            **({"lfp": In(stream.Signature(SampleLayout(config), always_ready=True)),
                "lfp_keep": In(1, init=1)}
               if config.lfp is not None else {}),
        })
        if config.coded:
            worst = config.coded_worst_words
            if 2 * worst > coded_buffer_words(config):
                raise ConfigError(
                    f"the link buffer ({config.link_buffer_samples} words) cannot hold two "
                    f"worst-case coded blocks ({worst} words each: {config.channels} channels "
                    f"x {config.coded_block_sweeps} sweeps), one being sent while the next is "
                    f"admitted; raise link_buffer_samples to at least {2 * worst} or lower "
                    "the codec's block_sweeps")

    def elaborate(self, platform):
        config = self._config
        m = Module()
        lfp_build = config.lfp is not None
        m.submodules.buffer = buffer = SampleBuffer(config)
        # channel mask: as many slots as frames of one channel fit
        m.submodules.slots = slots = StreamFifo(
            SlotLayout(lfp_build), config.link_buffer_samples // config.sweeps_per_frame + 1)
        m.submodules.serializer = serializer = Serializer(config, identity=self._identity)

        # -- DATA slots, and LFP slots into the same buffer and slot FIFO ---------------------
        # v2: DATA slots go on in lossless mode until the coder's chain starts (at a sync
        # block), so a switch to lossless leaves no sweep in neither stream
        v2_waiting = Signal()
        m.submodules.data_slots = data = self._slot_path(
            m, self.i, self.keep, BandwidthMode.RAW, buffer,
            also=(self.mode == BandwidthMode.LOSSLESS) & v2_waiting)
        m.d.comb += [
            buffer.w.payload.eq(self.i.payload.value),
            buffer.w.valid.eq(data.write),
            slots.w.payload.seq.eq(data.seq),
            slots.w.valid.eq(data.admit),
            self.idle.eq(~data.writing & ~slots.r.valid),  # channel mask: may change now
        ]
        dropped = [data.dropped]
        if lfp_build:
            m.submodules.lfp_slots = lfp = self._slot_path(
                m, self.lfp, self.lfp_keep, BandwidthMode.EVENTS_LFP, buffer)
            # never two frames filling the buffer at once
            m.d.comb += [data.other_incomplete.eq(lfp.incomplete),
                         lfp.other_incomplete.eq(data.incomplete)]
            with m.If(lfp.write):
                m.d.comb += [buffer.w.payload.eq(self.lfp.payload.value), buffer.w.valid.eq(1)]
            with m.If(lfp.admit):
                m.d.comb += [slots.w.payload.seq.eq(lfp.seq), slots.w.payload.lfp.eq(1),
                             slots.w.valid.eq(1)]

        m.d.comb += buffer.reserve.eq(data.admit | lfp.admit if lfp_build else data.admit)

        # -- COMPRESSED path: one block per frame, admitted whole at the block's start -------
        if config.coded:
            m.submodules.blocks = blocks = BlockAdmission(config)
            m.d.comb += [
                blocks.valid.eq(self.i.valid),
                blocks.first.eq(self.i.payload.first),
                blocks.wanted.eq(self.enable & (self.mode == BandwidthMode.LOSSLESS)),
            ]
            wiring.connect(m, wiring.flipped(self.compressed), blocks.compressed)
            wiring.connect(m, blocks.blocks, serializer.blocks)
            wiring.connect(m, blocks.words, serializer.words)
            dropped.insert(1, blocks.dropped)
            if config.codec_v2.enabled:
                m.d.comb += v2_waiting.eq(~blocks.started)
        if lfp_build:
            dropped.append(lfp.dropped)

        # -- serializer: the byte stream to the link ------------------------------------------
        wiring.connect(m, slots.r, serializer.slots)
        wiring.connect(m, buffer.r, serializer.samples)
        wiring.connect(m, wiring.flipped(self.events), serializer.events)
        wiring.connect(m, serializer.o, wiring.flipped(self.o))
        m.d.comb += [
            serializer.slot_count.eq(data.seq),
            serializer.frame_samples.eq(self.frame_samples),
            buffer.frame_samples.eq(self.frame_samples),
            self.event_frames_sent.eq(serializer.event_frames_sent),
        ]

        # FRAMES_SENT counts a frame one cycle after its last byte left (the count is
        # registered first): the frame-end decision depends on the UART's ready and is the
        # ECP5's longest path at 1024 channels without the 32-bit add behind it.
        sent = Signal()
        m.d.sync += [
            self.frames_dropped.eq(sum(dropped, self.frames_dropped)),
            sent.eq(serializer.frame_sent),
            self.frames_sent.eq(self.frames_sent + sent),
        ]
        return m

    def _slot_path(self, m: Module, samples, keep, mode: int,
                   buffer: SampleBuffer, *, also=None) -> SlotAdmission:
        """A slot admission observing ``samples``, sending in bandwidth mode ``mode`` (and
        while ``also``)."""
        path = SlotAdmission(self._config, interlock=self._config.lfp is not None)
        m.d.comb += [
            path.valid.eq(samples.valid),
            path.first.eq(samples.payload.first),
            path.keep.eq(keep),
            path.wanted.eq(self.enable & ((self.mode == mode) | (Const(0) if also is None
                                                                 else also))),
            path.reserved.eq(buffer.reserved),
            path.frame_samples.eq(self.frame_samples),
        ]
        return path
