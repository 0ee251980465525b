"""The v2 lossless coder in the system: samples in, the framer's coded words out."""

from amaranth.hdl import DomainRenamer, Module, Mux, Signal
from amaranth.lib import cdc, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig

from .block_packer import CompressedWordLayout
from .compressor_v2 import loaded_ports
from .compressor_v2_coder import CompressorV2
from .compressor_v2_words import CodedWordsV2
from .layouts import SampleLayout

__all__ = ["LosslessV2", "SAMPLE_FIFO_DEPTH", "WORD_FIFO_DEPTH"]

#: Samples the coder's input FIFO holds: the coder takes one a clock but stalls for an
#: entry of more than two bytes (an escape, a flush, a run of 0xFF), while the source
#: never waits.
SAMPLE_FIFO_DEPTH = 64
#: With the coder in a clock domain of its own: link words on their way back to ``sync``
#: (read every ``sync`` cycle, written at most one a coder cycle; the coder waits when it
#: is full).
WORD_FIFO_DEPTH = 16


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
    grid and prior ports : in (``codec_v2.grid``, ``codec_v2.restart_prior`` builds)
        As :func:`~spikeforge.hdl.compressor_v2.loaded_ports`; the tables' write ports stay
        in ``sync`` whatever the coder's domain.

    Parameters
    ----------
    config :
        The system's configuration (``config.codec_v2`` enabled).
    coder_domain :
        The clock domain the coder runs in. ``"sync"`` (the default): one domain, the sample
        FIFO synchronous. Any other name (a domain the board top makes, e.g. the ULX3S's
        ``coder`` at 36.5625 MHz): the coder and its word serialiser run there, behind an
        asynchronous sample FIFO, their words return through a second one, the grid table is
        written from ``sync`` (a dual-clock block RAM), ``block_start`` crosses as a pulse.
        Every port stays in ``sync``. The grid's held values (base, reciprocal, shift, code
        maximum) enter the coder's domain directly: they change only while the registers'
        lock is off (not lossless, and after the coder's next block), and the framer admits
        v2 blocks only from a sync block after lossless started, so no block it sends is
        coded while they change. The coder's domain must take the source's samples on
        average (1024 channels at 30 kS/s: 30.72 M a second, plus its ~2 % stalls); a sample
        the FIFO cannot take is lost and counted, as in one domain.
    """

    def __init__(self, config: SystemConfig, coder_domain: str = "sync"):
        self._config = config
        self._domain = coder_domain
        super().__init__({
            "i": In(stream.Signature(SampleLayout(config))),
            "o": Out(stream.Signature(CompressedWordLayout(), always_ready=True)),
            "overflows": Out(32),
            "blocks_damaged": Out(32),
            "block_start": Out(1),
            **loaded_ports(config.codec_v2),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        layout = SampleLayout(config)
        domain = self._domain
        crossing = domain != "sync"
        coder = CompressorV2(config.channels, config.codec_v2,
                             grid_write_domain="grid_write" if crossing else "sync")
        words = CodedWordsV2()
        if crossing:
            coder = DomainRenamer({"sync": domain, "grid_write": "sync"})(coder)
            words = DomainRenamer({"sync": domain})(words)
            samples = fifo.AsyncFIFO(width=layout.size, depth=SAMPLE_FIFO_DEPTH,
                                     w_domain="sync", r_domain=domain)
        else:
            samples = fifo.SyncFIFO(width=layout.size, depth=SAMPLE_FIFO_DEPTH)
        m.submodules.samples = samples
        m.submodules.coder = coder
        m.submodules.words = words
        wiring.connect(m, coder.o, words.i)

        lost = Signal()                 # a sample was lost: every block is damaged from now
        m.d.comb += [samples.w_data.eq(self.i.payload.as_value()),
                     samples.w_en.eq(self.i.valid),
                     self.i.ready.eq(samples.w_rdy),
                     coder.i.payload.eq(samples.r_data),
                     coder.i.valid.eq(samples.r_rdy),
                     samples.r_en.eq(coder.i.ready)]
        with m.If(self.i.valid & ~samples.w_rdy):
            m.d.sync += [self.overflows.eq(self.overflows + 1), lost.eq(1)]
        for name in loaded_ports(config.codec_v2):
            m.d.comb += getattr(coder, name).eq(getattr(self, name))
        if crossing:
            block_start = self._block_start_crossing(m, coder)
            out = self._words_crossing(m, words)
        else:
            block_start, out = self._block_start(m, coder, "sync"), words.o
        m.d.comb += self.block_start.eq(block_start)
        self._limit(m, out, lost)
        return m

    def _words_crossing(self, m: Module, words: CodedWordsV2) -> stream.Interface:
        """The serialiser's words back into ``sync`` (the coder waits while the FIFO is
        full; ``sync`` reads one every cycle)."""
        layout = words.o.payload.shape()
        m.submodules.words_out = out = fifo.AsyncFIFO(
            width=layout.size, depth=WORD_FIFO_DEPTH, w_domain=self._domain, r_domain="sync")
        back = stream.Signature(layout).create()
        m.d.comb += [out.w_data.eq(words.o.payload.as_value()),
                     out.w_en.eq(words.o.valid),
                     words.o.ready.eq(out.w_rdy),
                     back.payload.eq(out.r_data),
                     back.valid.eq(out.r_rdy),
                     out.r_en.eq(back.ready)]
        return back

    def _block_start_crossing(self, m: Module, coder: CompressorV2):
        """``block_start`` into ``sync``: a bit the coder's domain flips at each block start,
        synchronised (two flip-flops), its changes taken as the pulse. Blocks are a block's
        samples apart (thousands of cycles in a real build); were two flips closer than
        ``sync`` sees, a pulse would be missed, which only holds the grid registers' lock to a
        later block (never releases it early). (Amaranth's ``PulseSynchronizer`` here is the
        same logic, but with it Yosys 0.70's ``abc9`` fails an assertion on the 85F's full-v2
        build: ``Assert GetSize(conn.first) == GetSize(conn.second)``.)"""
        flip = Signal()
        with m.If(self._block_start(m, coder, self._domain)):
            m.d[self._domain] += flip.eq(~flip)
        seen, before = Signal(), Signal()
        m.submodules.block_start_sync = cdc.FFSynchronizer(flip, seen, o_domain="sync")
        m.d.sync += before.eq(seen)
        return seen ^ before

    def _block_start(self, m: Module, coder: CompressorV2, domain: str):
        """High when the coder (in ``domain``) takes a sweep's first sample at a block
        boundary."""
        block_sweeps = self._config.codec_v2.block_sweeps
        sweep = Signal(range(block_sweeps))
        taken = coder.i.valid & coder.i.ready & coder.i.payload.first
        with m.If(taken):
            m.d[domain] += sweep.eq(Mux(sweep == block_sweeps - 1, 0, sweep + 1))
        return taken & (sweep == 0)

    def _limit(self, m: Module, words: stream.Interface, lost) -> None:
        """The framer's reservation: a block's words beyond it are dropped and the block
        marked damaged."""
        limit = self._config.coded_worst_words
        count = Signal(range(limit + 1))
        over = Signal()
        word = words.payload
        last = word.last
        too_many = count == limit - 1           # one word is kept for the block's end
        m.d.comb += [
            words.ready.eq(1),
            self.o.valid.eq(words.valid & (last | ~(over | too_many))),
            self.o.payload.data.eq(word.data),
            self.o.payload.last.eq(last),
            self.o.payload.empty.eq(word.empty),
            self.o.payload.damaged.eq(last & (over | lost)),
        ]
        with m.If(words.valid):
            with m.If(last):
                m.d.sync += [count.eq(0), over.eq(0)]
                with m.If(over | lost):
                    m.d.sync += self.blocks_damaged.eq(self.blocks_damaged + 1)
            with m.Elif(too_many):
                m.d.sync += over.eq(1)
            with m.Else():
                m.d.sync += count.eq(count + 1)
