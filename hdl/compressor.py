"""Compressor: lossless adaptive Golomb-Rice coder, channel-serial, one sample per clock."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.compression import (
    RAW_BITS,
    U_CAP,
    initial_rice_sum,
)
from spikeforge.firmware.config import SystemConfig

from .block_packer import BlockPacker, CompressedWordLayout
from .layouts import SampleLayout

__all__ = ["Compressor", "CompressedWordLayout", "CompressorState", "PACK_LATENCY",
           "bit_length"]

#: Cycles from a sample's acceptance to the cycle its packer entry is written (readable from
#: the next cycle). The cycle-exact models (sim/models/framer.py) time the coder's words by it.
PACK_LATENCY = 5


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


def bit_length(m: Module, value, width: int, name: str) -> Signal:
    """``value.bit_length()`` of the low ``width`` bits of an unsigned value, as a priority
    encoder (a signal named ``name``)."""
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

    Pipeline (six stages, so the 45 MHz ECP5 build meets timing): a sample accepted in cycle
    t (A) has its channel state read in t (and codebook entry), the state forwarded and its
    four residuals computed in t+1 (B), its predictor chosen and its state written in t+2 (C),
    its quotient and remainder in t+3 (D), its code in t+4 (E), and it is packed (its FIFO
    entry written) in t+5 (F); its words can leave from t+6 (:data:`PACK_LATENCY` = 5).
    Stages A-E are the methods ``_accept``, ``_predict``, ``_update``, ``_split`` and
    ``_code``; F is a :class:`~spikeforge.hdl.block_packer.BlockPacker`.
    Samples of one channel may come in consecutive cycles: the state read misses the writes
    of the two samples ahead, so stage B takes the newest of those instead when it is the
    same channel's (the state being written in C, or the one written in the cycle before).

    Per-channel state: :class:`CompressorState`, 48 + 16 + rice_shift bits, plus
    4 x (16 + select_shift) bits with the adaptive predictor, in one memory of ``channels``
    words. Logic does not depend on the channel count. (A plain block-RAM memory rather than
    :class:`~spikeforge.hdl.channel_memory.ChannelMemory`: its SPRAM option holds at most 32
    bits per channel.) The read port is not transparent: stage B forwards the writes it
    misses, from registers, which keeps the memory's output path short.

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
        m = Module()
        layout = CompressorState(config)
        m.submodules.state = state_mem = memory.Memory(
            shape=layout, depth=config.channels, init=[])
        state_wr = state_mem.write_port()
        state_rd = state_mem.read_port()
        # Stage C's state (computed and written in C) and the one it wrote in the cycle
        # before (held in D): stage B forwards them.
        written = SimpleNamespace(
            new_state=Signal(layout, name="new_state"), valid=Signal(name="w_valid"),
            channel=Signal.like(self.i.payload.channel, name="w_channel"),
            state=Signal(layout, name="w_state"))

        b = self._accept(m, state_rd)
        c = self._predict(m, b, state_rd.data, written)
        d = self._update(m, c, state_wr, written)
        e = self._split(m, d)
        m.submodules.packer = packer = BlockPacker(config.codec.max_sample_bits,
                                                   self.fifo_entries)
        self._code(m, e, packer.i)
        wiring.connect(m, packer.o, wiring.flipped(self.o))
        m.d.comb += [self.overflows.eq(packer.overflows),
                     self.blocks_damaged.eq(packer.blocks_damaged)]
        return m

    def _accept(self, m: Module, state_rd) -> SimpleNamespace:
        """Stage A: take a sample, place it in its block, read its channel's state (and, with
        a codebook, its table entry); returns stage B's registers."""
        config = self._config
        codec = config.codec
        block_sweeps = codec.block_sweeps
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
                           (sample.channel == config.channels - 1)),
        ]
        b_symbol = Signal(signed(17))
        b_off_grid = Signal()
        if codec.codebook:
            m.d.comb += self.block_start.eq(accept & sample.first & (current_index == 0))
            b_code, entry = self._codebook(m)
            m.d.comb += [b_symbol.eq(b_code), b_off_grid.eq(entry != b_value)]
        else:
            m.d.comb += b_symbol.eq(b_value)
        return SimpleNamespace(valid=b_valid, channel=b_channel, value=b_value, raw=b_raw,
                               block_end=b_block_end, symbol=b_symbol, off_grid=b_off_grid)

    def _codebook(self, m: Module) -> tuple[Signal, Signal]:
        """The codebook's value -> code map (stage A, registered into B) and its table, read
        at the code (the entry arrives in B) or, in cycles without a sample, for the
        read-back port. Returns B's code and table entry."""
        codec = self._config.codec
        sample = self.i.payload
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
        ]
        return b_code, book_rd.data

    def _predict(self, m: Module, b: SimpleNamespace, state_read,
                 written: SimpleNamespace) -> SimpleNamespace:
        """Stage B: forward the state in flight, the four predictions and their residuals;
        returns stage C's registers."""
        layout = CompressorState(self._config)
        # The state read in A misses the writes of the two samples ahead of this one (the
        # one in C writes now, the one in D wrote in the cycle of the read): take the newest
        # of those when it is this channel's, so one channel may come in consecutive cycles.
        state = Signal(layout)
        forward_c = Signal()
        with m.If(forward_c):
            m.d.comb += state.eq(written.new_state)
        with m.Elif(written.valid & (written.channel == b.channel)):
            m.d.comb += state.eq(written.state)
        with m.Else():
            m.d.comb += state.eq(state_read)
        h1, h2, h3 = state.h1, state.h2, state.h3
        predictions = [Signal(signed(20), name=f"prediction{j}") for j in range(4)]
        m.d.comb += [
            predictions[0].eq(0),
            predictions[1].eq(h1),
            predictions[2].eq(2 * h1 - h2),
            predictions[3].eq(3 * h1 - 3 * h2 + h3),
        ]

        c_valid = Signal()
        c_channel = Signal.like(b.channel)
        c_value = Signal(signed(16))
        c_symbol = Signal(signed(17))
        c_raw = Signal()
        c_off_grid = Signal()
        c_block_end = Signal()
        c_state = Signal(layout)
        c_residuals = [Signal(signed(21), name=f"c_residual{j}") for j in range(4)]
        m.d.comb += forward_c.eq(c_valid & (c_channel == b.channel))
        m.d.sync += [
            c_valid.eq(b.valid), c_channel.eq(b.channel), c_value.eq(b.value),
            c_symbol.eq(b.symbol), c_raw.eq(b.raw), c_off_grid.eq(b.off_grid),
            c_block_end.eq(b.block_end), c_state.eq(state),
        ]
        m.d.sync += [c_residuals[j].eq(b.symbol - predictions[j]) for j in range(4)]
        return SimpleNamespace(valid=c_valid, channel=c_channel, value=c_value,
                               symbol=c_symbol, raw=c_raw, off_grid=c_off_grid,
                               block_end=c_block_end, state=c_state, residuals=c_residuals)

    def _update(self, m: Module, c: SimpleNamespace, state_wr,
                written: SimpleNamespace) -> SimpleNamespace:
        """Stage C: select the predictor, the Rice parameter; update and write the state;
        returns stage D's registers."""
        codec = self._config.codec
        zigzags = [Signal(21, name=f"zigzag{j}") for j in range(4)]
        m.d.comb += [zigzags[j].eq(_zigzag(c.residuals[j])) for j in range(4)]
        zigzag = Signal(21)
        if codec.fixed_order is None:
            m.d.comb += zigzag.eq(_cheapest(m, [c.state[f"cost{j}"] for j in range(4)], zigzags))
        else:
            m.d.comb += zigzag.eq(zigzags[codec.fixed_order])

        self._next_state(m, c, zigzag, written.new_state)
        m.d.comb += [
            state_wr.addr.eq(c.channel), state_wr.data.eq(written.new_state),
            state_wr.en.eq(c.valid),
        ]
        m.d.sync += [written.valid.eq(c.valid), written.channel.eq(c.channel),
                     written.state.eq(written.new_state)]

        # The Rice parameter from the sum before this sample's update.
        k = bit_length(m, c.state.rice_sum >> (codec.rice_shift + 1), 15, "rice_k")
        d_valid = Signal()
        d_zigzag = Signal(21)
        d_k = Signal.like(k)
        d_value = Signal(signed(16))
        d_symbol = Signal(signed(17))
        d_raw = Signal()
        d_off_grid = Signal()
        d_block_end = Signal()
        m.d.sync += [
            d_valid.eq(c.valid), d_zigzag.eq(zigzag), d_k.eq(k), d_value.eq(c.value),
            d_symbol.eq(c.symbol), d_raw.eq(c.raw), d_off_grid.eq(c.off_grid),
            d_block_end.eq(c.block_end),
        ]
        return SimpleNamespace(valid=d_valid, zigzag=d_zigzag, k=d_k, value=d_value,
                               symbol=d_symbol, raw=d_raw, off_grid=d_off_grid,
                               block_end=d_block_end)

    def _next_state(self, m: Module, c: SimpleNamespace, zigzag, new_state) -> None:
        """The channel's state after stage C's sample: the history shifted, the Rice sum and
        (adaptive) the predictor costs updated; reset on a block's raw first sweep."""
        codec = self._config.codec
        rice_sum = c.state.rice_sum
        with m.If(c.raw):
            m.d.comb += [
                new_state.h1.eq(c.symbol), new_state.h2.eq(c.symbol),
                new_state.h3.eq(c.symbol), new_state.rice_sum.eq(initial_rice_sum(codec)),
            ]
            # costs reset to zero (new_state's default)
        with m.Else():
            m.d.comb += [
                new_state.h1.eq(c.symbol), new_state.h2.eq(c.state.h1),
                new_state.h3.eq(c.state.h2),
                new_state.rice_sum.eq(
                    rice_sum + _saturated(zigzag) - (rice_sum >> codec.rice_shift)),
            ]
            if codec.fixed_order is None:
                for j in range(4):
                    residual = c.residuals[j]
                    magnitude = Mux(residual >= 0, residual, -residual)
                    cost = c.state[f"cost{j}"]
                    m.d.comb += new_state[f"cost{j}"].eq(
                        cost + _saturated(magnitude) - (cost >> codec.select_shift))

    def _split(self, m: Module, d: SimpleNamespace) -> SimpleNamespace:
        """Stage D: Rice quotient and remainder, and whether the sample escapes; returns
        stage E's registers."""
        quotient = Signal(21)
        m.d.comb += quotient.eq(d.zigzag >> d.k)
        e_valid = Signal()
        e_quotient = Signal(6)
        e_escape = Signal()
        e_remainder = Signal(16)
        e_k = Signal.like(d.k)
        e_value = Signal(signed(16))
        e_symbol = Signal(signed(17))
        e_raw = Signal()
        e_off_grid = Signal()
        e_block_end = Signal()
        m.d.sync += [
            e_valid.eq(d.valid), e_quotient.eq(quotient[:6]),
            e_escape.eq(d.off_grid | (quotient >= self._config.codec.escape_threshold)),
            e_remainder.eq(d.zigzag & ((Const(1, 17) << d.k) - 1)),
            e_k.eq(d.k), e_value.eq(d.value), e_symbol.eq(d.symbol), e_raw.eq(d.raw),
            e_off_grid.eq(d.off_grid), e_block_end.eq(d.block_end),
        ]
        return SimpleNamespace(valid=e_valid, quotient=e_quotient, escape=e_escape,
                               remainder=e_remainder, k=e_k, value=e_value, symbol=e_symbol,
                               raw=e_raw, off_grid=e_off_grid, block_end=e_block_end)

    def _code(self, m: Module, e: SimpleNamespace, packer_input) -> None:
        """Stage E: the code's bits and length (raw, codebook flag, escape or Rice), registered
        into the packer's input (stage F)."""
        codec = self._config.codec
        q_limit = codec.escape_threshold
        max_bits = codec.max_sample_bits
        code_bits = Signal(max_bits)
        code_length = Signal(range(max_bits + 1))
        raw = Signal(RAW_BITS)
        m.d.comb += raw.eq(e.value)
        with m.If(e.raw):
            if codec.codebook:
                # A flag, then the code (on the grid) or the raw value (off the grid).
                with m.If(e.off_grid):
                    m.d.comb += [code_bits.eq(Cat(Const(1, 1), raw)),
                                 code_length.eq(1 + RAW_BITS)]
                with m.Else():
                    m.d.comb += [code_bits.eq(Cat(Const(0, 1), e.symbol[:codec.codebook_bits])),
                                 code_length.eq(1 + codec.codebook_bits)]
            else:
                m.d.comb += [code_bits.eq(raw), code_length.eq(RAW_BITS)]
        with m.Elif(e.escape):
            m.d.comb += [code_bits.eq(Cat(Const((1 << q_limit) - 1, q_limit), raw)),
                         code_length.eq(q_limit + RAW_BITS)]
        with m.Else():
            ones = Signal(max_bits)
            m.d.comb += [
                ones.eq((Const(1, max_bits + 1) << e.quotient) - 1),
                code_bits.eq(ones | (e.remainder << (e.quotient + 1))),
                code_length.eq(e.quotient + 1 + e.k),
            ]

        p_valid = Signal()
        p_bits = Signal(max_bits)
        p_length = Signal.like(code_length)
        p_block_end = Signal()
        m.d.sync += [
            p_valid.eq(e.valid), p_bits.eq(code_bits), p_length.eq(code_length),
            p_block_end.eq(e.block_end),
        ]
        m.d.comb += [
            packer_input.valid.eq(p_valid), packer_input.payload.bits.eq(p_bits),
            packer_input.payload.length.eq(p_length),
            packer_input.payload.block_end.eq(p_block_end),
        ]


def _saturated(value):
    """min(value, U_CAP) for a value known to be >= 0."""
    return Mux(value[16:].any(), U_CAP, value[:16])


def _zigzag(residual):
    """2e for e >= 0, -2e - 1 for e < 0: a shift and an XOR with the sign, no adder."""
    return (residual << 1)[:21] ^ residual[20].replicate(21)


def _cheapest(m: Module, costs: list, zigzags: list[Signal]):
    """The zigzag of the cheapest predictor; ties go to order 1, 2, 3, 0 (SELECT_TIE_ORDER):
    order j is chosen when it is strictly cheaper than every order before it in that list
    and no dearer than every order after it. All six comparisons run in parallel."""
    tie_order = (1, 2, 3, 0)
    # less[(b, a)]: order b (later in the tie order) is strictly cheaper than a.
    less = {(b, a): Signal(name=f"cost{b}_lt_cost{a}")
            for p, a in enumerate(tie_order) for b in tie_order[p + 1:]}
    m.d.comb += [less[key].eq(costs[key[0]] < costs[key[1]]) for key in less]
    chosen = Const(0, 21)
    for position, j in enumerate(tie_order):
        before = tie_order[:position]
        after = tie_order[position + 1:]
        terms = [less[(j, i)] for i in before] + [~less[(i, j)] for i in after]
        select = Signal(name=f"select{j}")
        m.d.comb += select.eq(Cat(*terms).all())
        chosen = chosen | Mux(select, zigzags[j], 0)
    return chosen
