"""The v2 lossless coder in the system: samples in, the framer's coded words out."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig

from .block_packer import CompressedWordLayout
from .compressor_v2 import grid_ports
from .compressor_v2_coder import CompressorV2
from .compressor_v2_words import CodedWordsV2
from .layouts import SampleLayout

__all__ = ["LosslessV2", "SAMPLE_FIFO_DEPTH"]

#: Samples the coder's input FIFO holds: the coder takes one a clock but stalls for an
#: entry of more than two bytes (an escape, a flush, a run of 0xFF), while the source
#: never waits.
SAMPLE_FIFO_DEPTH = 64


class LosslessV2(wiring.Component):
    """:class:`~spikeforge.hdl.compressor_v2_coder.CompressorV2` and
    :class:`~spikeforge.hdl.compressor_v2_words.CodedWordsV2` as the framer's coder
    (``config.codec_v2``), in the place of v1's :class:`~spikeforge.hdl.compressor.Compressor`.

    Ports
    -----
    i : stream of :class:`SampleLayout` in
        Every sample of the source; ``ready`` is ignored (the source never waits): a
        sample that finds the input FIFO full is lost, counted in ``overflows``.
    o : stream of :class:`CompressedWordLayout` out (always ready)
        Each block's words, ``last`` on its final one (``empty`` when it carries none).
        A block is marked ``damaged`` (its words dropped, the last one kept) when it would
        exceed ``config.coded_worst_words``, the reservation the framer made for it; and
        once a sample was lost, every block's last word is marked damaged (the coder's
        blocks would no longer be the framer's), so the framer sends no more COMPRESSED
        frames until reset.
    overflows : out
        Samples lost at the input FIFO. Only a source at one sample every clock fills it
        (the coder stalls on ~2 % of N1-like samples: the ``lossless_v2`` bench's overflow
        case); a system has ``cycles_per_sample`` > 1 (1.46 at 1024 channels on the 85F).
    blocks_damaged : out
        Blocks marked damaged.
    block_start : out
        High in the cycle the coder takes a block's first sample (the grid registers'
        lock, as v1's codebook's).
    grid ports : in (``codec_v2.grid`` builds)
        As :func:`~spikeforge.hdl.compressor_v2.grid_ports`.
    """

    def __init__(self, config: SystemConfig):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(SampleLayout(config))),
            "o": Out(stream.Signature(CompressedWordLayout(), always_ready=True)),
            "overflows": Out(32),
            "blocks_damaged": Out(32),
            "block_start": Out(1),
            **grid_ports(config.codec_v2),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        layout = SampleLayout(config)
        m.submodules.samples = samples = fifo.SyncFIFO(width=layout.size,
                                                      depth=SAMPLE_FIFO_DEPTH)
        m.submodules.coder = coder = CompressorV2(config.channels, config.codec_v2)
        m.submodules.words = words = CodedWordsV2()
        wiring.connect(m, coder.o, words.i)
        for name in grid_ports(config.codec_v2):
            m.d.comb += getattr(coder, name).eq(getattr(self, name))

        lost = Signal()                 # a sample was lost: every block is damaged from now
        m.d.comb += [samples.w_data.eq(self.i.payload.as_value()),
                     samples.w_en.eq(self.i.valid),
                     self.i.ready.eq(samples.w_rdy),
                     coder.i.payload.eq(samples.r_data),
                     coder.i.valid.eq(samples.r_rdy),
                     samples.r_en.eq(coder.i.ready)]
        with m.If(self.i.valid & ~samples.w_rdy):
            m.d.sync += [self.overflows.eq(self.overflows + 1), lost.eq(1)]
        self._block_start(m, coder)
        self._limit(m, words, lost)
        return m

    def _block_start(self, m: Module, coder: CompressorV2) -> None:
        """``block_start``: the coder takes a sweep's first sample at a block boundary."""
        block_sweeps = self._config.codec_v2.block_sweeps
        sweep = Signal(range(block_sweeps))
        taken = coder.i.valid & coder.i.ready & coder.i.payload.first
        m.d.comb += self.block_start.eq(taken & (sweep == 0))
        with m.If(taken):
            m.d.sync += sweep.eq(Mux(sweep == block_sweeps - 1, 0, sweep + 1))

    def _limit(self, m: Module, words: CodedWordsV2, lost) -> None:
        """The framer's reservation: a block's words beyond it are dropped and the block
        marked damaged."""
        limit = self._config.coded_worst_words
        count = Signal(range(limit + 1))
        over = Signal()
        word = words.o.payload
        last = word.last
        too_many = count == limit - 1           # one word is kept for the block's end
        m.d.comb += [
            words.o.ready.eq(1),
            self.o.valid.eq(words.o.valid & (last | ~(over | too_many))),
            self.o.payload.data.eq(word.data),
            self.o.payload.last.eq(last),
            self.o.payload.empty.eq(word.empty),
            self.o.payload.damaged.eq(last & (over | lost)),
        ]
        with m.If(words.o.valid):
            with m.If(last):
                m.d.sync += [count.eq(0), over.eq(0)]
                with m.If(over | lost):
                    m.d.sync += self.blocks_damaged.eq(self.blocks_damaged + 1)
            with m.Elif(too_many):
                m.d.sync += over.eq(1)
            with m.Else():
                m.d.sync += count.eq(count + 1)
