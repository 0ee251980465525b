"""Compressor: lossless adaptive Golomb-Rice coder, channel-serial, one sample per clock."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.compression import (
    RAW_BITS,
    U_CAP,
    WORD_BITS,
    initial_rice_sum,
)
from spikeforge.firmware.config import SystemConfig

from .fifo import StreamFifo
from .layouts import SampleLayout

__all__ = ["Compressor", "CompressedWordLayout", "CompressorState"]


class CompressedWordLayout(data.StructLayout):
    """One 16-bit word of a compressed block; ``last`` marks the block's final word. A final
    word with ``damaged`` set ends a block that lost words to an output overflow: its
    consumer must discard the whole block (the word itself carries no data)."""

    def __init__(self):
        super().__init__({"data": WORD_BITS, "last": 1, "damaged": 1})


class CompressorState(data.StructLayout):
    """One channel's coder state: the last three symbols, the Rice sum and (adaptive
    predictor only) the four predictor costs."""

    def __init__(self, config: SystemConfig):
        codec = config.codec
        fields = {
            "h1": signed(16), "h2": signed(16), "h3": signed(16),
            "rice_sum": unsigned(16 + codec.rice_shift),
        }
        if codec.fixed_order is None:
            for j in range(4):
                fields[f"cost{j}"] = unsigned(16 + codec.select_shift)
        super().__init__(fields)


def _bit_length(m: Module, value, width: int, name: str) -> Signal:
    """``value.bit_length()`` as a priority encoder."""
    out = Signal(range(width + 1), name=name)
    result = Const(0, out.shape())
    for bit in range(width):
        result = Mux(value[bit], bit + 1, result)
    m.d.comb += out.eq(result)
    return out


class Compressor(wiring.Component):
    """The lossless coder of ``docs/compression.md``, bit exact with
    :func:`spikeforge.sim.models.compressor.encode`.

    Ports
    -----
    i : stream of :class:`SampleLayout` in
        Always ready: the coder never stalls its source. Samples before the first one
        marked ``first`` are ignored; from it on, every ``block_sweeps`` sweeps form a block.
    o : stream of :class:`CompressedWordLayout` out
        The words of each block in order, ``last`` on its final word. Back-pressure is
        absorbed by a FIFO of ``fifo_entries`` packer entries (each 1..4 words).
    overflows : out
        Packer entries lost because the FIFO was full. Zero when the sink keeps up (below).
    blocks_damaged : out
        Blocks that lost entries. Each still ends with exactly one ``last`` word, marked
        ``damaged``, so a consumer counts blocks correctly and never passes on a corrupt
        one: entries are only admitted while one FIFO slot stays free for such a marker, a
        damaged block drops all its later entries, and while a marker waits for space every
        new entry is dropped (those blocks are damaged too), so markers keep block order.
    codebook_addr, codebook_data, codebook_write : in (``codec.codebook`` only)
        Load the code -> value table (``2**codebook_bits`` int16 entries).
    codebook_base, codebook_multiplier, codebook_shift : in (``codec.codebook`` only)
        The reciprocal map value -> code (:class:`~spikeforge.firmware.compression.Codebook`).
        In the system they are registers (``CODEBOOK_*``, loaded over the control path;
        :class:`~spikeforge.hdl.top.AcquisitionSystem` keeps them still while blocks that
        may be sent are coded).
    codebook_read_addr : in; codebook_read_data : out (``codec.codebook`` only)
        Read-back of the table: ``codebook_read_data`` shows ``table[codebook_read_addr]``.
        The table's one read port serves the samples; it reads ``codebook_read_addr`` in
        every cycle without an incoming sample, and ``codebook_read_data`` takes that entry
        two cycles later, so it is current within a sample period of a change.
    block_start : out (``codec.codebook`` only)
        High in the cycle the first sample of a block is accepted (the table, base,
        multiplier and shift are used for a sample in the cycle it is accepted).

    Pipeline: a sample accepted in cycle t has its channel state (and codebook entry) read
    in t, its code computed and its state written in t+1, is packed (its FIFO entry written)
    in t+2; its words can leave from t+3. Samples of one channel may come in consecutive
    cycles (the state memory is read transparently to its write port).

    Per-channel state: :class:`CompressorState`, 48 + 16 + rice_shift bits, plus
    4 x (16 + select_shift) bits with the adaptive predictor, in one memory of ``channels``
    words. Logic does not depend on the channel count. (A plain block-RAM memory rather than
    :class:`~spikeforge.hdl.channel_memory.ChannelMemory`: its SPRAM option holds at most 32
    bits per channel, and the transparent read is what lets one channel run back to back.)

    Throughput: one sample per cycle in; one word per cycle out when ``o`` is ready. A
    sample's code is at most ``escape_threshold + 16`` bits, so a sweep adds at most
    ``channels`` entries and ``worst_case_words`` per sweep; with a sink that takes a word
    every cycle and ``cycles_per_sample >= channels * (escape_threshold + 16) / 16 + 4``
    every sweep drains before the next and a FIFO of ``channels`` entries never overflows
    (the default depth is twice that).
    """

    def __init__(self, config: SystemConfig, *, fifo_entries: int | None = None):
        self._config = config
        self.fifo_entries = fifo_entries or max(16, 2 * config.channels)
        codec = config.codec
        ports = {
            "i": In(stream.Signature(SampleLayout(config))),
            "o": Out(stream.Signature(CompressedWordLayout())),
            "overflows": Out(32),
            "blocks_damaged": Out(32),
        }
        if codec.codebook:
            ports.update({
                "codebook_addr": In(codec.codebook_bits),
                "codebook_data": In(signed(16)),
                "codebook_write": In(1),
                "codebook_base": In(signed(16)),
                "codebook_multiplier": In(16),
                "codebook_shift": In(5),
                "codebook_read_addr": In(codec.codebook_bits),
                "codebook_read_data": Out(signed(16)),
                "block_start": Out(1),
            })
        super().__init__(ports)

    def elaborate(self, platform):
        config = self._config
        codec = config.codec
        channels = config.channels
        block_sweeps = codec.block_sweeps
        q_limit = codec.escape_threshold
        rice_shift = codec.rice_shift
        select_shift = codec.select_shift
        adaptive = codec.fixed_order is None
        max_bits = codec.max_sample_bits
        m = Module()

        layout = CompressorState(config)
        m.submodules.state = state_mem = memory.Memory(shape=layout, depth=channels, init=[])
        state_wr = state_mem.write_port()
        state_rd = state_mem.read_port(transparent_for=(state_wr,))

        # -- stage A: accept, block position, read state, value -> code ---------------------
        sample = self.i.payload
        m.d.comb += self.i.ready.eq(1)
        started = Signal()
        sweep_index = Signal(range(block_sweeps))
        current_index = Signal(range(block_sweeps))
        with m.If(sample.first):
            m.d.comb += current_index.eq(
                Mux(started & (sweep_index != block_sweeps - 1), sweep_index + 1, 0))
        with m.Else():
            m.d.comb += current_index.eq(sweep_index)
        accept = Signal()
        m.d.comb += accept.eq(self.i.valid & (started | sample.first))
        with m.If(accept):
            m.d.sync += [started.eq(1), sweep_index.eq(current_index)]

        m.d.comb += [state_rd.addr.eq(sample.channel), state_rd.en.eq(1)]

        b_valid = Signal()
        b_channel = Signal.like(sample.channel)
        b_value = Signal(signed(16))
        b_raw = Signal()            # first sweep of a block: sent raw, state reset
        b_block_end = Signal()      # last sample of a block
        m.d.sync += [
            b_valid.eq(accept),
            b_channel.eq(sample.channel),
            b_value.eq(sample.value),
            b_raw.eq(current_index == 0),
            b_block_end.eq((current_index == block_sweeps - 1) &
                           (sample.channel == channels - 1)),
        ]

        b_symbol = Signal(signed(17))
        b_off_grid = Signal()
        if codec.codebook:
            m.d.comb += self.block_start.eq(accept & sample.first & (current_index == 0))
            code_max = (1 << codec.codebook_bits) - 1
            m.submodules.codebook = book = memory.Memory(
                shape=signed(16), depth=1 << codec.codebook_bits, init=[])
            book_wr = book.write_port()
            book_rd = book.read_port()
            m.d.comb += [
                book_wr.addr.eq(self.codebook_addr), book_wr.data.eq(self.codebook_data),
                book_wr.en.eq(self.codebook_write),
            ]
            product = Signal(signed(34))
            scaled = Signal(signed(34))
            code = Signal(codec.codebook_bits)
            m.d.comb += [
                product.eq((sample.value - self.codebook_base) * self.codebook_multiplier),
                scaled.eq(product >> self.codebook_shift),
            ]
            with m.If(scaled < 0):
                m.d.comb += code.eq(0)
            with m.Elif(scaled > code_max):
                m.d.comb += code.eq(code_max)
            with m.Else():
                m.d.comb += code.eq(scaled)
            b_code = Signal.like(code)
            m.d.sync += b_code.eq(code)
            # The read port serves the read-back in cycles without a sample.
            read_back = Signal()
            m.d.sync += read_back.eq(~self.i.valid)
            with m.If(read_back):
                m.d.sync += self.codebook_read_data.eq(book_rd.data)
            m.d.comb += [
                book_rd.addr.eq(Mux(self.i.valid, code, self.codebook_read_addr)),
                book_rd.en.eq(1),
                b_symbol.eq(b_code),
                b_off_grid.eq(book_rd.data != b_value),
            ]
        else:
            m.d.comb += b_symbol.eq(b_value)

        # -- stage B: predict, select, Rice code, update state ------------------------------
        state = data.View(layout, state_rd.data)
        h1, h2, h3 = state.h1, state.h2, state.h3
        predictions = [Signal(signed(20), name=f"prediction{j}") for j in range(4)]
        m.d.comb += [
            predictions[0].eq(0),
            predictions[1].eq(h1),
            predictions[2].eq(2 * h1 - h2),
            predictions[3].eq(3 * h1 - 3 * h2 + h3),
        ]
        residuals = [Signal(signed(21), name=f"residual{j}") for j in range(4)]
        for j in range(4):
            m.d.comb += residuals[j].eq(b_symbol - predictions[j])

        residual = Signal(signed(21))
        if adaptive:
            costs = [state[f"cost{j}"] for j in range(4)]
            # The cheapest predictor; ties go to order 1, 2, 3, 0 (SELECT_TIE_ORDER).
            best_cost = costs[1]
            chosen = residuals[1]
            for j in (2, 3, 0):
                better = costs[j] < best_cost
                chosen = Mux(better, residuals[j], chosen)
                best_cost = Mux(better, costs[j], best_cost)
            m.d.comb += residual.eq(chosen)
        else:
            m.d.comb += residual.eq(residuals[codec.fixed_order])

        zigzag = Signal(21)
        m.d.comb += zigzag.eq(Mux(residual >= 0, residual << 1, (-residual << 1) - 1))
        rice_sum = state.rice_sum
        k = _bit_length(m, rice_sum >> (rice_shift + 1), 15, "rice_k")
        quotient = Signal(21)
        m.d.comb += quotient.eq(zigzag >> k)
        escape = Signal()
        m.d.comb += escape.eq(b_off_grid | (quotient >= q_limit))

        code_bits = Signal(max_bits)
        code_length = Signal(range(max_bits + 1))
        raw = Signal(RAW_BITS)
        m.d.comb += raw.eq(b_value)
        with m.If(b_raw):
            if codec.codebook:
                # A flag, then the code (on the grid) or the raw value (off the grid).
                with m.If(b_off_grid):
                    m.d.comb += [code_bits.eq(Cat(Const(1, 1), raw)),
                                 code_length.eq(1 + RAW_BITS)]
                with m.Else():
                    m.d.comb += [code_bits.eq(Cat(Const(0, 1), b_symbol[:codec.codebook_bits])),
                                 code_length.eq(1 + codec.codebook_bits)]
            else:
                m.d.comb += [code_bits.eq(raw), code_length.eq(RAW_BITS)]
        with m.Elif(escape):
            m.d.comb += [code_bits.eq(Cat(Const((1 << q_limit) - 1, q_limit), raw)),
                         code_length.eq(q_limit + RAW_BITS)]
        with m.Else():
            ones = Signal(max_bits)
            remainder = Signal(16)
            m.d.comb += [
                ones.eq((Const(1, max_bits + 1) << quotient[:6]) - 1),
                remainder.eq(zigzag & ((Const(1, 17) << k) - 1)),
                code_bits.eq(ones | (remainder << (quotient[:6] + 1))),
                code_length.eq(quotient[:6] + 1 + k),
            ]

        def saturated(value):
            return Mux(value > U_CAP, U_CAP, value)

        new_state = Signal(layout)
        with m.If(b_raw):
            m.d.comb += [
                new_state.h1.eq(b_symbol), new_state.h2.eq(b_symbol),
                new_state.h3.eq(b_symbol), new_state.rice_sum.eq(initial_rice_sum(codec)),
            ]
            # costs reset to zero (new_state's default)
        with m.Else():
            m.d.comb += [
                new_state.h1.eq(b_symbol), new_state.h2.eq(h1), new_state.h3.eq(h2),
                new_state.rice_sum.eq(rice_sum + saturated(zigzag) - (rice_sum >> rice_shift)),
            ]
            if adaptive:
                for j in range(4):
                    magnitude = Mux(residuals[j] >= 0, residuals[j], -residuals[j])
                    cost = state[f"cost{j}"]
                    m.d.comb += new_state[f"cost{j}"].eq(
                        cost + saturated(magnitude) - (cost >> select_shift))
        m.d.comb += [
            state_wr.addr.eq(b_channel), state_wr.data.eq(new_state),
            state_wr.en.eq(b_valid),
        ]

        c_valid = Signal()
        c_bits = Signal(max_bits)
        c_length = Signal.like(code_length)
        c_block_end = Signal()
        m.d.sync += [
            c_valid.eq(b_valid), c_bits.eq(code_bits), c_length.eq(code_length),
            c_block_end.eq(b_block_end),
        ]

        # -- stage C: bit packer -> FIFO of 1..4-word entries --------------------------------
        entry_layout = data.StructLayout(
            {"data": 4 * WORD_BITS, "words": 3, "last": 1, "damaged": 1})
        m.submodules.fifo = fifo = StreamFifo(entry_layout, self.fifo_entries)
        acc = Signal(WORD_BITS - 1)
        fill = Signal(range(WORD_BITS))
        merged = Signal(4 * WORD_BITS)
        merged_fill = Signal(range(4 * WORD_BITS + 1))
        m.d.comb += [
            merged.eq(acc | (c_bits << fill)),
            merged_fill.eq(fill + c_length),
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
        with m.If(c_valid):
            with m.If(c_block_end):
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
                fifo.w.payload.last.eq(c_block_end),
                fifo.w.payload.words.eq(Mux(c_block_end, (merged_fill + WORD_BITS - 1) >> 4,
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

        # -- output: one word per cycle -------------------------------------------------------
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
        return m
