"""The v2 coder's byte tokens -> the 16-bit words of the link, cut into blocks."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .compressor_v2_coder import SLOTS, CodedTokensLayout

__all__ = ["CodedWordLayoutV2", "CodedWordsV2"]

#: Bytes the accumulator holds: what stays after a word leaves (up to 6) plus the most a
#: chunk brings (SLOTS bytes and a flush's pad byte).
_BUFFER_BYTES = 16
_RUN_BITS = 32


class CodedWordLayoutV2(data.StructLayout):
    """One 16-bit word of the v2 coded stream: ``data`` holds two of the stream's bytes,
    the first in the low byte (the framer sends a payload word low byte first, so the link
    carries the bytes in their order); ``last`` marks a block's final transfer; ``empty``
    (with ``last``): the block has no word, ``data`` is meaningless."""

    def __init__(self):
        super().__init__({"data": 16, "last": 1, "empty": 1})


class CodedWordsV2(wiring.Component):
    """Serialises :class:`~spikeforge.hdl.compressor_v2_coder.RangeCoderV2`'s entries into
    16-bit words, cut into blocks as :func:`~spikeforge.firmware.compression_v2.cut_words`
    defines (golden model: :func:`spikeforge.sim.models.compressor_v2_words.words_of_tokens`).

    Ports
    -----
    i : stream of :class:`~spikeforge.hdl.compressor_v2_coder.CodedTokensLayout` in
        One entry: up to SLOTS tokens, a valid token being its byte (none when ``skip``)
        then ``run`` bytes of 0xFF (0x00 when ``carry``). ``ready`` may be low
        (back-pressure).
    o : stream of :class:`CodedWordLayoutV2` out
        A block's whole words, the final one with ``last``; a block with no word: one
        transfer with ``last`` and ``empty``. A byte that completes no word by the block's
        end goes with the next block; a flush that leaves an odd byte count is followed by a
        0x00 pad byte.

    Blocks: an entry with ``flush`` ends one (its bytes and pad are the block's); an entry
    with ``block_end`` and no ``flush`` ends one unless the next entry is a flush, which
    joins that block (the coder's flush follows the last sample of the block it ends). So
    that block's ``last`` waits for the next entry to arrive (in the coder's stream: 1 to 2
    cycles; the stream's end always brings the flush).

    Throughput: an entry per clock while it has at most 2 bytes and no run (with ``o``
    ready), and 2 bytes (one word) per clock out. An entry with runs takes a cycle for the
    bytes up to each run, ceil(run / 2) for the run, and one for the rest. A block end waits
    until the previous block's last word has left (one cycle or a few per block). Entries
    with up to SLOTS bytes pass in one cycle while the accumulator has room (it drains a
    word a clock).

    Pipeline (lockstep, all stages advance when the accumulator takes a chunk or its stage
    is empty): I holds the entry and splits it into chunks (the whole entry, or the bytes up
    to a token with a run, then the run two bytes a clock); C registers a chunk (byte lanes,
    a mask, the block flags); P the lanes' compacted positions (a prefix count); D the
    compacted bytes (lanes 0..n-1); A appends them to a 16-byte accumulator and puts out a
    word when the accumulator holds two (so a word is known not to be its block's last) or
    the block has ended. Latency from ``i`` to the first word: 5 cycles.
    """

    i: In(stream.Signature(CodedTokensLayout()))
    o: Out(stream.Signature(CodedWordLayoutV2()))

    def elaborate(self, platform):
        m = Module()
        advance = Signal()          # every pipeline stage moves

        # -- I: the entry and the splitter ---------------------------------------------------
        i_valid = Signal()
        entry = Signal(CodedTokensLayout())
        has_run = Signal(SLOTS)         # a valid token with a run (registered with the entry)
        close_before = Signal()         # the block before this entry ends (its first chunk)
        previous_end = Signal()         # the last loaded entry ended a block, no flush
        done = Signal(SLOTS)            # tokens whose byte (and run) are sent
        in_run = Signal()
        run_left = Signal(_RUN_BITS)
        run_byte = Signal(8)
        first_chunk = Signal()

        remaining_runs = Signal(SLOTS)
        m.d.comb += remaining_runs.eq(has_run & ~done)
        # up_to[j]: no remaining run token before j (token j is in the chunk)
        up_to = Signal(SLOTS)
        seen = Const(0, 1)
        for j in range(SLOTS):
            m.d.comb += up_to[j].eq(~seen)
            seen = seen | remaining_runs[j]
        present = Signal(SLOTS)
        m.d.comb += present.eq(Cat(t.valid & ~t.skip for t in entry.tokens))
        the_run = Signal(SLOTS)         # one-hot: the first remaining token with a run
        m.d.comb += the_run.eq(remaining_runs & up_to)
        first_run = Signal(_RUN_BITS)
        first_carry = Signal()
        runs = [Mux(the_run[j], entry.tokens[j].run, 0) for j in range(SLOTS)]
        carries = [the_run[j] & entry.tokens[j].carry for j in range(SLOTS)]
        m.d.comb += [first_run.eq(_or_tree(runs)), first_carry.eq(_or_tree(carries))]
        finishing = Signal()            # this cycle's chunk is the entry's last
        m.d.comb += finishing.eq(i_valid & ~in_run & ~remaining_runs.any())

        chunk_mask = Signal(SLOTS)
        chunk_bytes = Signal(8 * SLOTS)
        chunk_flush = Signal()
        chunk_close_after = Signal()
        with m.If(in_run):
            m.d.comb += [chunk_mask.eq(Mux(run_left >= 2, 0b11, 0b01)),
                         chunk_bytes.eq(Cat(run_byte, run_byte))]
        with m.Else():
            m.d.comb += [chunk_mask.eq(present & ~done & up_to),
                         chunk_bytes.eq(Cat(t.byte for t in entry.tokens)),
                         chunk_flush.eq(finishing & entry.flush),
                         chunk_close_after.eq(finishing & entry.flush)]

        m.d.comb += self.i.ready.eq(advance & (~i_valid | finishing))
        with m.If(advance & i_valid):
            m.d.sync += first_chunk.eq(0)
            with m.If(in_run):
                m.d.sync += run_left.eq(run_left - 2)
                with m.If(run_left <= 2):
                    m.d.sync += in_run.eq(0)
            with m.Elif(~finishing):
                m.d.sync += [done.eq(done | up_to), in_run.eq(1), run_left.eq(first_run),
                             run_byte.eq(Mux(first_carry, 0x00, 0xFF))]
        with m.If(self.i.valid & self.i.ready):
            flush_in = self.i.payload.flush
            m.d.sync += [
                entry.eq(self.i.payload), done.eq(0), in_run.eq(0), first_chunk.eq(1),
                has_run.eq(Cat(t.valid & (t.run != 0) for t in self.i.payload.tokens)),
                close_before.eq(previous_end & ~flush_in),
                previous_end.eq(self.i.payload.block_end & ~flush_in),
            ]
        with m.If(self.i.ready):
            m.d.sync += i_valid.eq(self.i.valid)

        # -- C: the chunk --------------------------------------------------------------------
        c_valid = Signal()
        c_mask = Signal(SLOTS)
        c_bytes = Signal(8 * SLOTS)
        c_flush = Signal()
        c_before = Signal()
        c_after = Signal()
        with m.If(advance):
            m.d.sync += [c_valid.eq(i_valid), c_mask.eq(chunk_mask), c_bytes.eq(chunk_bytes),
                         c_flush.eq(chunk_flush), c_before.eq(first_chunk & close_before),
                         c_after.eq(chunk_close_after)]

        # -- P: each lane's place among the chunk's bytes, and their count -----------------
        position_bits = range(SLOTS + 1)
        p_valid = Signal()
        p_mask = Signal(SLOTS)
        p_bytes = Signal(8 * SLOTS)
        p_positions = [Signal(position_bits, name=f"p_position{j}") for j in range(SLOTS)]
        p_count = Signal(position_bits)
        p_flush = Signal()
        p_before = Signal()
        p_after = Signal()
        with m.If(advance):
            m.d.sync += [p_valid.eq(c_valid), p_mask.eq(c_mask), p_bytes.eq(c_bytes),
                         p_flush.eq(c_flush), p_before.eq(c_before), p_after.eq(c_after),
                         p_count.eq(_popcount(c_mask))]
            for j in range(SLOTS):
                m.d.sync += p_positions[j].eq(_popcount(c_mask[:j]) if j else 0)

        # -- D: the compacted bytes (lanes 0..count-1; the lanes above are 0) -------------
        d_valid = Signal()
        d_lanes = [Signal(8, name=f"d_lane{k}") for k in range(SLOTS)]
        d_count = Signal(position_bits)
        d_flush = Signal()
        d_before = Signal()
        d_after = Signal()
        with m.If(advance):
            m.d.sync += [d_valid.eq(p_valid), d_count.eq(p_count), d_flush.eq(p_flush),
                         d_before.eq(p_before), d_after.eq(p_after)]
            for k in range(SLOTS):
                terms = [Mux(p_mask[j] & (p_positions[j] == k), p_bytes.word_select(j, 8), 0)
                         for j in range(k, SLOTS)]
                m.d.sync += d_lanes[k].eq(_or_tree(terms))

        # -- A: the accumulator and the output word --------------------------------------------
        buffer = [Signal(8, name=f"buffer{p}") for p in range(_BUFFER_BYTES)]
        fill = Signal(range(_BUFFER_BYTES + 1))
        closing = Signal()          # a block has ended; its last words are at the head
        close_words = Signal(range(_BUFFER_BYTES // 2 + 1))
        empty_pending = Signal()    # a block ended with no word: send the marker

        can_send = Signal()
        m.d.comb += can_send.eq(~self.o.valid | self.o.ready)
        send_word = Signal()        # the head word leaves the buffer this cycle
        send_empty = Signal()
        m.d.comb += [
            send_empty.eq(can_send & empty_pending),
            send_word.eq(can_send & ~empty_pending &
                         Mux(closing, close_words != 0, fill >= 4)),
        ]
        with m.If(send_word | send_empty):
            m.d.sync += [self.o.valid.eq(1),
                         self.o.payload.data.eq(Cat(buffer[0], buffer[1])),
                         self.o.payload.last.eq(send_empty | (closing & (close_words == 1))),
                         self.o.payload.empty.eq(send_empty)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        kept = Signal(range(_BUFFER_BYTES + 1))         # bytes left after the word leaves
        m.d.comb += kept.eq(fill - Mux(send_word, 2, 0))
        pad = Signal()
        m.d.comb += pad.eq(d_flush & (fill[0] ^ d_count[0]))      # kept has fill's parity
        added = Signal(range(SLOTS + 2))
        m.d.comb += added.eq(d_count + pad)
        closes = Signal()
        m.d.comb += closes.eq(d_before | d_after)
        # The accumulator takes D's chunk if it fits without the word leaving now: ``take``
        # (so the whole pipeline's advance, and ``i.ready``) never waits on ``o.ready``.
        take = Signal()
        m.d.comb += [
            take.eq(d_valid & (fill + added <= _BUFFER_BYTES) &
                    ~(closes & (closing | empty_pending))),
            advance.eq(~d_valid | take),
        ]
        new_fill = Signal(range(_BUFFER_BYTES + 1))
        m.d.comb += new_fill.eq(Mux(take, kept + added, kept))
        # The buffer: kept bytes move down by the word that left, the chunk's lanes go in
        # above them (lane SLOTS is 0: the pad byte).
        lanes = [*d_lanes, Const(0, 8)]
        for p in range(_BUFFER_BYTES):
            with m.If(p < kept):
                if p + 2 < _BUFFER_BYTES:
                    m.d.sync += buffer[p].eq(Mux(send_word, buffer[p + 2], buffer[p]))
            with m.Elif(take):
                with m.Switch(p - kept):
                    for k in range(min(len(lanes), p + 1)):
                        with m.Case(k):
                            m.d.sync += buffer[p].eq(lanes[k])
        m.d.sync += fill.eq(new_fill)

        # The block's end: its words are the whole words in the buffer before (d_before)
        # or after (d_after) the chunk goes in.
        block_words = Signal(range(_BUFFER_BYTES // 2 + 1))
        m.d.comb += block_words.eq(Mux(d_before, kept, new_fill) >> 1)
        with m.If(take & closes):
            with m.If(block_words == 0):
                m.d.sync += empty_pending.eq(1)
            with m.Else():
                m.d.sync += [closing.eq(1), close_words.eq(block_words)]
        with m.Else():
            with m.If(send_empty):
                m.d.sync += empty_pending.eq(0)
            with m.If(send_word & closing):
                m.d.sync += close_words.eq(close_words - 1)
                with m.If(close_words == 1):
                    m.d.sync += closing.eq(0)
        return m


def _or_tree(values: list):
    """OR of ``values`` as a balanced tree."""
    while len(values) > 1:
        values = [values[i] | values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def _popcount(bits) -> object:
    """Ones in ``bits`` as a sum of one-bit terms (a small adder tree)."""
    terms = [bits[j] for j in range(len(bits))]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
