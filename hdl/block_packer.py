"""BlockPacker: the compressor's last stage, variable-length codes -> 16-bit block words."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.compression import WORD_BITS

from .fifo import StreamFifo

__all__ = ["BlockPacker", "CodeLayout", "CompressedWordLayout"]


class CompressedWordLayout(data.StructLayout):
    """One 16-bit word of a compressed block; ``last`` marks the block's final word. A final
    word with ``damaged`` set ends a block that lost words to an output overflow: its
    consumer must discard the whole block (the word itself carries no data). A final word
    with ``empty`` set ends a block that carries no word (the v2 coder's; no data either)."""

    def __init__(self):
        super().__init__({"data": WORD_BITS, "last": 1, "damaged": 1, "empty": 1})


class CodeLayout(data.StructLayout):
    """One sample's code: ``length`` bits of ``bits``, LSB first; ``block_end`` marks the
    last sample of a block."""

    def __init__(self, max_bits: int):
        super().__init__({
            "bits": max_bits, "length": range(max_bits + 1), "block_end": 1,
        })


class BlockPacker(wiring.Component):
    """Packs codes into 16-bit words and hands them out one per cycle, whole blocks only.

    Ports
    -----
    i : stream of :class:`CodeLayout` in
        Always taken (``ready`` is ignored): one code per cycle at most, up to ``max_bits``
        bits; with the 15 bits the accumulator may hold they must fit four words. The bits
        left over when a block ends are padded with zeros to a whole word, so every block
        starts word-aligned.
    o : stream of :class:`CompressedWordLayout` out
        The words of each block in order, ``last`` on its final word.
    overflows : out
        FIFO entries lost because the FIFO was full.
    blocks_damaged : out
        Blocks that lost entries. Each still ends with exactly one ``last`` word, marked
        ``damaged``: entries are only admitted while one FIFO slot stays free for such a
        marker, a damaged block drops all its later entries, and while a marker waits for
        space every new entry is dropped (those blocks are damaged too), so markers keep
        block order.

    Latency: a code taken in cycle t is written to the FIFO in t (as an entry of the words
    it completes, 1..4; a code completing no word only fills the accumulator); its first
    word can leave in t+1. Throughput: one code per cycle in, one word per cycle out.

    State: a 15-bit accumulator and its fill level, the damage bookkeeping (a flag and
    an 8-bit count of owed markers), and a FIFO of ``fifo_entries`` entries of 64 + 5 bits.
    """

    def __init__(self, max_bits: int, fifo_entries: int):
        self.max_bits = max_bits
        self.fifo_entries = fifo_entries
        super().__init__({
            "i": In(stream.Signature(CodeLayout(max_bits))),
            "o": Out(stream.Signature(CompressedWordLayout())),
            "overflows": Out(32),
            "blocks_damaged": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        entry_layout = data.StructLayout(
            {"data": 4 * WORD_BITS, "words": 3, "last": 1, "damaged": 1})
        m.submodules.fifo = fifo = StreamFifo(entry_layout, self.fifo_entries)
        self._pack(m, fifo)
        self._serialise(m, fifo)
        return m

    def _pack(self, m: Module, fifo: StreamFifo) -> None:
        """Codes -> FIFO entries of the words they complete; damage bookkeeping."""
        p_valid = self.i.valid
        p_bits = self.i.payload.bits
        p_length = self.i.payload.length
        p_block_end = self.i.payload.block_end
        acc = Signal(WORD_BITS - 1)
        fill = Signal(range(WORD_BITS))
        merged = Signal(4 * WORD_BITS)
        merged_fill = Signal(range(4 * WORD_BITS + 1))
        m.d.comb += [
            merged.eq(acc | (p_bits << fill)),
            merged_fill.eq(fill + p_length),
        ]
        full_words = Signal(3)
        m.d.comb += full_words.eq(merged_fill >> 4)

        dropping = Signal()       # this block lost an entry
        owed = Signal(8)          # damaged-block markers waiting for FIFO space
        admit = Signal()          # a data entry may enter: one slot stays free for a marker
        m.d.comb += admit.eq(~dropping & (owed == 0) & (fifo.level < fifo.depth - 1))
        push_entry = Signal()
        push_marker = Signal()
        new_damage = Signal()     # a block ends damaged in this cycle
        lost_entry = Signal()
        with m.If(p_valid):
            with m.If(p_block_end):
                m.d.sync += [acc.eq(0), fill.eq(0), dropping.eq(0)]
                with m.If(admit):
                    m.d.comb += push_entry.eq(1)
                with m.Else():
                    m.d.comb += [new_damage.eq(1), lost_entry.eq(1)]
            with m.Else():
                m.d.sync += fill.eq(merged_fill[:4])
                with m.Switch(full_words):
                    for words in range(4):
                        with m.Case(words):
                            m.d.sync += acc.eq(merged >> (WORD_BITS * words))
                with m.If(full_words != 0):
                    with m.If(admit):
                        m.d.comb += push_entry.eq(1)
                    with m.Else():
                        m.d.sync += dropping.eq(1)
                        m.d.comb += lost_entry.eq(1)
        # A marker goes in as soon as there is space, the oldest first (same cycle as its
        # block's end when nothing is owed).
        m.d.comb += push_marker.eq(~push_entry & fifo.w.ready & ((owed != 0) | new_damage))
        m.d.sync += owed.eq(owed + new_damage - push_marker)
        with m.If(push_entry):
            m.d.comb += [
                fifo.w.payload.data.eq(merged),
                fifo.w.payload.last.eq(p_block_end),
                fifo.w.payload.words.eq(Mux(p_block_end, (merged_fill + WORD_BITS - 1) >> 4,
                                            full_words)),
            ]
        with m.Else():
            m.d.comb += [fifo.w.payload.words.eq(1), fifo.w.payload.last.eq(1),
                         fifo.w.payload.damaged.eq(1)]
        m.d.comb += fifo.w.valid.eq(push_entry | push_marker)
        with m.If(lost_entry):
            m.d.sync += self.overflows.eq(self.overflows + 1)
        with m.If(new_damage):
            m.d.sync += self.blocks_damaged.eq(self.blocks_damaged + 1)

    def _serialise(self, m: Module, fifo: StreamFifo) -> None:
        """FIFO entries -> one word per cycle on ``o``."""
        word_index = Signal(2)
        head = fifo.r.payload
        final_word = Signal()
        m.d.comb += [
            final_word.eq(word_index == head.words - 1),
            self.o.valid.eq(fifo.r.valid),
            self.o.payload.data.eq(head.data.word_select(word_index, WORD_BITS)),
            self.o.payload.last.eq(head.last & final_word),
            self.o.payload.damaged.eq(head.damaged),
            fifo.r.ready.eq(self.o.ready & final_word),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += word_index.eq(Mux(final_word, 0, word_index + 1))
