"""The v2 coder's symbol stage in gateware: sample -> (context, symbol, frequencies, raw bits,
the sample's 16 bits), channel-serial, one sample per clock. Every sample gets its symbol
and moves the state: whether it is coded or sent verbatim (the running budget) is decided
after this stage, at the range coder's entry (:mod:`spikeforge.hdl.compressor_v2_coder`)."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.compression_v2 import (
    CDF_BITS,
    CDF_STATE_BITS,
    DC_FRAC_BITS,
    DC_RATE,
    ESCAPE,
    HISTORY_BITS,
    LITERAL_BITS,
    LITERALS,
    MEAN_SHIFT,
    RECIPROCAL_BITS,
    SHIFT_MAX,
    SYMBOLS,
    WEIGHT_STATE_BITS,
    WEIGHT_UNIT_BITS,
    CodecV2Config,
    initial_cdf,
    reciprocal_table,
)
from spikeforge.firmware.errors import ConfigError

from .compressor import bit_length

__all__ = ["CompressorV2Symbols", "check_symbol_config", "ChannelStateV2", "SymbolLayoutV2",
           "SampleInLayout", "SYMBOL_LATENCY", "GRID_LATENCY", "WEIGHT_LATENCY",
           "GRID_VALUE_BITS", "loaded_ports", "reciprocal_rom"]

#: Cycles from a sample's acceptance to its symbol on ``o`` (with ``o`` ready).
SYMBOL_LATENCY = 7
#: ... and the value grid's extra stages in front (G1 the multiply, G2 the shift, G3 the
#: clamp and the table's read).
GRID_LATENCY = 3
#: ... and the code weights' stages behind F (W1 the weighted frequencies, W2 their group
#: sums, W3 the total and the cumulative frequency, W4 the reciprocal's read, W5 the two
#: products, W6 the shift onto the coder's total).
WEIGHT_LATENCY = 6
#: A grid table entry (signed): a code's value, outside int16 for codes that never match.
GRID_VALUE_BITS = 18

_DROP = CDF_STATE_BITS - CDF_BITS
#: An entry's fields that F takes from its stage as they are (the rest: low, frequency).
_CARRIED = ("context", "symbol", "high_bits", "high_count", "low_bits", "low_count", "value",
            "length_e", "length_o")
#: A weighted frequency and the weighted total: < 2**15 * 255 / 64 + SYMBOLS < 2**17.
_WEIGHTED_BITS = 17
_MEAN_BITS = 22
_HIGH_BITS = 17                          # a bucket's raw bits: bitlen(u) - 1 <= 17
_LOW_BITS = 16                           # the shift's <= 12, an escape's offset's <= 16


class SampleInLayout(data.StructLayout):
    """One sample in: as :class:`spikeforge.hdl.layouts.SampleLayout` (channel, value,
    first) for a coder built from a channel count rather than a SystemConfig."""

    def __init__(self, channels: int):
        super().__init__({"channel": unsigned(max(1, (channels - 1).bit_length())),
                          "value": signed(16), "first": 1})


class SymbolLayoutV2(data.StructLayout):
    """One sample's range-coder input: code ``symbol`` with cumulative frequency ``low`` and
    ``frequency`` (of a total 2**CDF_BITS), then ``high_count`` raw bits ``high_bits`` (a
    bucket's bits below the leading one), then ``low_count`` raw bits ``low_bits`` (the
    residual's shifted-out bits). ``context`` is the table that coded it; ``value`` (the
    sample's 16 bits, what a verbatim sample sends raw), ``channel`` and ``first`` come
    from the sample. An ESCAPE (a sample off the value grid) sends instead
    ``length_e`` (LENGTH_BITS raw: bitlen(zigzag(e))), ``high_bits`` (zigzag(e)'s bits
    below its leading one), ``length_o`` and ``low_bits`` (the same of zigzag(v -
    table[s])); ``length_e`` and ``length_o`` are 0 for other symbols."""

    def __init__(self, channels: int):
        super().__init__({
            "context": unsigned(4), "symbol": unsigned(6),
            "low": unsigned(CDF_BITS), "frequency": unsigned(CDF_BITS + 1),
            "high_bits": unsigned(_HIGH_BITS), "high_count": unsigned(5),
            "low_bits": unsigned(_LOW_BITS), "low_count": unsigned(5), "value": unsigned(16),
            "length_e": unsigned(5), "length_o": unsigned(5),
            "channel": unsigned(max(1, (channels - 1).bit_length())), "first": 1,
        })


class ChannelStateV2(data.StructLayout):
    """One channel's predictor and context state (:func:`~spikeforge.firmware.
    compression_v2.state_bits_v2` bits: 251 with the defaults), and with sync blocks
    (``codec.sync_blocks``) its ``epoch``: the state is the initial one when its epoch is
    not the current one (252 bits: 14 DP16KD of 18 bits at 1024 channels, as without)."""

    def __init__(self, codec: CodecV2Config):
        fields = {
            "weights": data.ArrayLayout(signed(WEIGHT_STATE_BITS), codec.taps),
            "history": data.ArrayLayout(signed(HISTORY_BITS), codec.taps),
            "prev": signed(16),
            "mean": unsigned(_MEAN_BITS),
        }
        if codec.level_tap:
            fields.update({"level_weight": signed(WEIGHT_STATE_BITS),
                           "dc": signed(16 + DC_FRAC_BITS), "started": 1})
        if codec.sync_blocks:
            fields["epoch"] = 1
        super().__init__(fields)


def check_symbol_config(config: CodecV2Config) -> None:
    """Raise when ``config`` uses a part of v2 the gateware does not cover yet."""
    if config.taps < 1:
        raise ConfigError("the v2 gateware needs taps >= 1, not 0")



def grid_ports(codec: CodecV2Config) -> dict:
    """The value grid's ports (with ``codec.grid``; none without), set by the host before
    lossless starts: ``grid_addr``/``grid_data``/``grid_write`` write the table
    (:meth:`~spikeforge.firmware.compression_v2.ValueGrid.table`, one entry a cycle),
    ``grid_base``, ``grid_reciprocal``, ``grid_shift`` (:attr:`ValueGrid.base`,
    :attr:`ValueGrid.reciprocal`) and ``grid_code_max`` (``2**grid.bits - 1``) held."""
    if not codec.grid:
        return {}
    return {"grid_addr": In(codec.grid_bits), "grid_data": In(signed(GRID_VALUE_BITS)),
            "grid_write": In(1), "grid_base": In(signed(GRID_VALUE_BITS)),
            "grid_reciprocal": In(30), "grid_shift": In(5),
            "grid_code_max": In(codec.grid_bits)}


def prior_ports(codec: CodecV2Config) -> dict:
    """The restart prior's ports (with ``codec.restart_prior``; none without), set by the
    host before lossless starts: ``prior_context``/``prior_index``/``prior_data``/
    ``prior_write`` write entry c[index + 1] of a context's prior row (at CDF_STATE_BITS,
    :func:`~spikeforge.firmware.compression_v2.prior_words`), one a cycle; ``prior_on``
    held: 1, every start and sync block reads the loaded rows with the slow rate (the
    model's ``prior=``); 0, the initial CDF with the fast first rates."""
    if not codec.restart_prior:
        return {}
    return {"prior_context": In(4), "prior_index": In(6),
            "prior_data": In(CDF_STATE_BITS), "prior_write": In(1), "prior_on": In(1)}


def weight_ports(codec: CodecV2Config) -> dict:
    """The code weights' ports (with ``codec.code_weights``; none without), set by the host
    before lossless starts: ``weight_pair``/``weight_data``/``weight_write`` write entries
    ``2 * weight_pair`` (``weight_data`` bits 0..7) and ``2 * weight_pair + 1`` (bits
    8..15) of the padded table (:func:`~spikeforge.firmware.compression_v2.
    padded_code_weights`), one pair a cycle; ``weights_on`` held: 1, literal frequencies
    are weighted (the model with ``weights``); 0, coded as a build without code weights."""
    if not codec.code_weights:
        return {}
    return {"weight_pair": In(12), "weight_data": In(16), "weight_write": In(1),
            "weights_on": In(1)}


def loaded_ports(codec: CodecV2Config) -> dict:
    """Every port the host loads before lossless starts: :func:`grid_ports`,
    :func:`prior_ports` and :func:`weight_ports`."""
    return {**grid_ports(codec), **prior_ports(codec), **weight_ports(codec)}


#: Width of a reciprocal ROM entry: m(q) for q >= SYMBOLS (every symbol weighs >= 1, so a
#: weighted total is at least SYMBOLS).
_RECIPROCAL_WIDTH = 28


def reciprocal_rom() -> list[int]:
    """The code weights' ROM: ``m(q) = r - (r >> 9)``, ``r = floor(2**33 / q)``
    (:func:`~spikeforge.firmware.compression_v2.reciprocal_table`) for q = 0 .. 1023 (q <
    SYMBOLS never occurs: 0); q = 1024 is a constant beside it."""
    table = reciprocal_table()
    return [0 if q < SYMBOLS else int(table[q] - (table[q] >> 9)) for q in range(1024)]


def _clamp(value, low: int, high: int):
    return Mux(value > high, high, Mux(value < low, low, value))


def _sign_step(mu: int, a, b):
    """``mu * sign(a) * sign(b)`` as a select (no multiplier)."""
    return Mux((a == 0) | (b == 0), 0, Mux((a < 0) == (b < 0), mu, -mu))


class CompressorV2Symbols(wiring.Component):
    """The v2 coder up to the range coder: bit exact with
    :func:`spikeforge.sim.models.compressor_v2_stages.symbol_stream_v2` (the golden model
    :mod:`spikeforge.sim.models.compressor_v2` with its range coder taken out).

    Ports
    -----
    i : stream of :class:`SampleInLayout` in
        Channel-serial samples. Samples before the first one marked ``first`` are ignored.
        ``ready`` is low while ``o`` stalls, and for a sample whose channel is still in the
        predictor (a channel's samples must be at least 4 cycles apart: with 4 or more
        channels sent in order, never).
    o : stream of :class:`SymbolLayoutV2` out
        One entry per sample, in order; held until accepted.

    Pipeline (a sample accepted in cycle t): A (t) reads its channel's state from block
    RAM; B (t+1) the nine LMS products, the context and shift from the residual mean;
    C (t+2) the prediction; D (t+3) the residual, its shift and zigzag, and the channel's
    new state, written back; E (t+4) the symbol and raw bits, and the read of the
    context's CDF row; F (t+5) the row (the previous sample's updated row when it used the
    same table: the read in E misses that write), the frequencies and the row's update,
    written back; the entry is on ``o`` from t+6 (:data:`SYMBOL_LATENCY` counts the
    cycle it is accepted in). The CDF loop is one cycle, so consecutive samples may share a
    table with no stall.

    Per-channel state: :class:`ChannelStateV2` in one memory of ``channels`` words (block
    RAM). Device-wide: ``contexts`` rows of 45 x 22 bits (a 16-deep memory: LUT RAM) and a
    count each (registers, up to 16 x (rate_max - 4)). Multipliers: ``taps`` 12 x 12 and
    (level tap) one 12 x 17.

    Sync blocks (``codec.sync_blocks``: every state reset at the first sample of every
    ``sync_blocks``-th block, counted from the first sample marked ``first``, the first
    block included): the state memory cannot be cleared in a cycle, so each channel's word
    holds an epoch bit; a sync flips the current epoch (at the sample's acceptance, carried
    down the pipeline with it) and B takes a word of another epoch as the initial state
    (zeros). One bit suffices as every channel is written once a sweep, so within every
    epoch (a block or more). The context tables (LUT RAM) keep a ``fresh`` bit each
    (registers): the sync sample clears all of them in F; a table not fresh reads as the
    initial CDF with a count of 0 (overriding the forwarded row too: the sample before may
    have used the same table before the sync). No stall. Whether F's sample forwards the row,
    reads its table as the initial one, and its count and rate, are registered from E (with
    the update of the sample then in F, which lands at the same edge), so the CDF loop holds
    only a select by registered bits.

    With a value grid (``codec.grid``) the samples are coded as their ADC codes: three
    feed-forward stages in front of A (:data:`GRID_LATENCY`): G1 the multiply ``(v - base)
    * reciprocal + 2**(shift-1)``, G2 the shift, G3 the clamp to ``grid_code_max`` and the
    reads of the grid's table (``2**grid_bits`` entries of :data:`GRID_VALUE_BITS`, block
    RAM) and of the channel's state; B compares the table's value with the sample (off the
    grid: an ESCAPE, its offset zigzagged and length-coded in C); the state holds the code,
    ``value`` stays the sample's 16 bits. The grid's ports (:func:`grid_ports`) are set by
    the host before the first sample. One sample per clock still; the channel hazard then
    covers G1..G3 (the state is read 3 cycles after acceptance). One more multiplier: 19 x
    30 (a few DSP blocks). The table's write port is in ``grid_write_domain`` (default
    ``sync``; another name keeps it in the register bank's domain when the coder runs in
    a clock domain of its own: :class:`~spikeforge.hdl.lossless_v2.LosslessV2`).

    With code weights (``codec.code_weights``, over a grid) the entry of a sample whose
    residual is not shifted has the model's weighted frequencies scaled onto the coder's
    2**15 (``_frequencies`` and ``_to_power_of_two``): D computes where the sample's 32
    weights start in the padded table (the predicted code less 16, clamped), E reads them
    from 32 banks of LUT RAM (entry i in bank i % 32) and F rotates them into order; six
    feed-forward stages behind F (:data:`WEIGHT_LATENCY`) weigh the literals (32
    multipliers, 16 x 8), sum (groups of 8, then the total and the cumulative frequency),
    read the reciprocal of the total's top 10 bits from a ROM (block RAM), multiply (two,
    17 x 28) and shift. The CDF loop is untouched; still one sample per clock. The table
    is written a pair of entries a cycle (:func:`weight_ports`, ``grid_write_domain``);
    ``weights_on`` 0 codes as a build without code weights.
    """

    def __init__(self, channels: int, codec: CodecV2Config, *,
                 grid_write_domain: str = "sync"):
        check_symbol_config(codec)
        if not 1 <= channels <= 4096:
            raise ConfigError(f"channels must be 1..4096, not {channels!r}")
        self._channels = channels
        self._codec = codec
        self._grid_write_domain = grid_write_domain
        super().__init__({
            "i": In(stream.Signature(SampleInLayout(channels))),
            "o": Out(stream.Signature(SymbolLayoutV2(channels))),
            **loaded_ports(codec),
        })

    @property
    def latency(self) -> int:
        """Cycles from a sample's acceptance to its symbol on ``o`` (``o`` ready)."""
        return (SYMBOL_LATENCY + (GRID_LATENCY if self._codec.grid else 0)
                + (WEIGHT_LATENCY if self._codec.code_weights else 0))

    def elaborate(self, platform):
        m = Module()
        codec = self._codec
        layout = ChannelStateV2(codec)
        m.submodules.state = state_mem = memory.Memory(shape=layout, depth=self._channels,
                                                       init=[])
        state_rd = state_mem.read_port()
        state_wr = state_mem.write_port()

        advance = Signal()      # the whole pipeline moves (o is empty or taken)
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        a = self._accept(m, advance, state_rd)
        b = self._products(m, advance, a, state_rd.data)
        c = self._predict(m, advance, b)
        d = self._residual(m, advance, c, state_wr)
        banks = self._weight_banks(m, advance, d) if codec.code_weights else None
        e = self._symbol(m, advance, d)
        self._frequencies(m, advance, e, banks)
        # Hazard: a channel within 3 stages ahead of the one entering has not written its
        # state when this one's is read (B, C or D; with the grid the read is 3 stages
        # later, and the pipeline moves in lockstep, so G1, G2, G3).
        window = a.front if codec.grid else (b, c, d)
        busy = Cat(*[(stage.valid & (stage.channel == self.i.payload.channel))
                     for stage in window]).any()
        m.d.comb += a.hazard.eq(busy)
        return m

    def _stage(self, m: Module, advance, source: SimpleNamespace, names: dict,
               prefix: str) -> SimpleNamespace:
        """Registers ``names`` (name -> value) into the next stage, with valid, channel and
        first carried along; they move only when the pipeline advances."""
        out = SimpleNamespace(valid=Signal(name=f"{prefix}_valid"),
                              channel=Signal.like(source.channel, name=f"{prefix}_channel"),
                              first=Signal(name=f"{prefix}_first"))
        with m.If(advance):
            m.d.sync += [out.valid.eq(source.valid), out.channel.eq(source.channel),
                         out.first.eq(source.first)]
        if self._codec.sync_blocks:
            # the sample's epoch, and whether it starts a sync block
            out.epoch = Signal(name=f"{prefix}_epoch")
            out.sync = Signal(name=f"{prefix}_sync")
            with m.If(advance):
                m.d.sync += [out.epoch.eq(source.epoch), out.sync.eq(source.sync)]
        for name, value in names.items():
            reg = Signal.like(value, name=f"{prefix}_{name}") if isinstance(value, Signal) \
                else Signal(value.shape(), name=f"{prefix}_{name}")
            with m.If(advance):
                m.d.sync += reg.eq(value)
            setattr(out, name, reg)
        return out

    def _accept(self, m: Module, advance, state_rd) -> SimpleNamespace:
        """Stage A: take a sample, read its channel's state."""
        sample = self.i.payload
        hazard = Signal()
        started = Signal()
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(advance & ~hazard),
            accept.eq(self.i.valid & self.i.ready & (started | sample.first)),
            state_rd.en.eq(advance),
        ]
        with m.If(accept):
            m.d.sync += started.eq(1)
        source = SimpleNamespace(valid=accept, channel=sample.channel, first=sample.first)
        if self._codec.sync_blocks:
            source.epoch, source.sync = self._sync_count(m, accept, started, sample.first)
        if not self._codec.grid:
            m.d.comb += state_rd.addr.eq(sample.channel)
            b = self._stage(m, advance, source, {"value": sample.value}, "b")
            b.code = b.value
            b.hazard = hazard
            return b
        # The value grid: G1 the multiply (the rounding added), G2 the shift, G3 the
        # clamp, the table's read and the state's read (feed-forward, in front of A).
        grid_bits = self._codec.grid_bits
        m.submodules.grid = grid_mem = memory.Memory(shape=signed(GRID_VALUE_BITS),
                                                     depth=1 << grid_bits, init=[])
        table_wr = grid_mem.write_port(domain=self._grid_write_domain)
        table_rd = grid_mem.read_port()
        m.d.comb += [table_wr.addr.eq(self.grid_addr), table_wr.data.eq(self.grid_data),
                     table_wr.en.eq(self.grid_write)]
        rounding = Signal(31)
        m.d.comb += rounding.eq((Const(1, 32) << self.grid_shift) >> 1)
        g1 = self._stage(m, advance, source, {"value": sample.value}, "g1")
        product = Signal(signed(50))
        m.d.comb += product.eq((g1.value - self.grid_base) * self.grid_reciprocal + rounding)
        g2 = self._stage(m, advance, g1, {"value": g1.value, "product": product}, "g2")
        scaled = Signal(signed(35))
        m.d.comb += scaled.eq(g2.product >> self.grid_shift)
        g3 = self._stage(m, advance, g2, {"value": g2.value, "scaled": scaled}, "g3")
        code = Signal(grid_bits)
        m.d.comb += [
            code.eq(Mux(g3.scaled < 0, 0, Mux(g3.scaled > self.grid_code_max,
                                               self.grid_code_max, g3.scaled))),
            table_rd.addr.eq(code), table_rd.en.eq(advance),
            state_rd.addr.eq(g3.channel),
        ]
        b = self._stage(m, advance, g3, {"value": g3.value, "code": code}, "b")
        b.table_value = table_rd.data
        b.hazard = hazard
        b.front = (g1, g2, g3)
        return b

    def _sync_count(self, m: Module, accept, started, first) -> tuple:
        """The sweep and block counts at acceptance: (the sample's epoch, whether it starts
        a sync block); the current epoch flips at each sync block's first sample."""
        codec = self._codec
        sweep = Signal(range(codec.block_sweeps))
        block = Signal(range(codec.sync_blocks))
        epoch = Signal()
        sweep_now = Signal.like(sweep)
        block_now = Signal.like(block)
        sync = Signal()
        m.d.comb += [
            sweep_now.eq(Mux(started & (sweep != codec.block_sweeps - 1), sweep + 1, 0)),
            block_now.eq(Mux(sweep_now != 0, block,
                             Mux(started & (block != codec.sync_blocks - 1), block + 1, 0))),
            sync.eq(first & (sweep_now == 0) & (block_now == 0)),
        ]
        with m.If(accept & first):
            m.d.sync += [sweep.eq(sweep_now), block.eq(block_now), epoch.eq(epoch ^ sync)]
        return epoch ^ sync, sync

    def _products(self, m: Module, advance, b: SimpleNamespace, state) -> SimpleNamespace:
        """Stage B: the LMS products, the first difference, the level tap's input, the
        context and the shift (from the residual mean before this sample)."""
        codec = self._codec
        if codec.sync_blocks:
            # A word of another epoch: the channel's initial state (zeros).
            layout = ChannelStateV2(codec)
            current = Signal(layout)
            m.d.comb += current.eq(Mux(state.epoch == b.epoch, state.as_value(), 0))
            state = current
        products = {f"product{t}": state.weights[t] * state.history[t]
                    for t in range(codec.taps)}
        names = dict(products)
        d = Signal(signed(17))
        m.d.comb += d.eq(b.code - state.prev)
        names["d"] = d
        if codec.grid:
            # Off the grid: an ESCAPE, with the offset from the code's value.
            offset = Signal(signed(GRID_VALUE_BITS + 1))
            m.d.comb += offset.eq(b.value - b.table_value)
            names.update({"escape": offset != 0, "offset": offset})
        if codec.level_tap:
            xl = Signal(signed(17))
            m.d.comb += xl.eq(state.prev - (state.dc >> DC_FRAC_BITS))
            names["xl"] = xl
            names["product_level"] = state.level_weight * xl
        # Context and shift: n = bitlen(mean >> 4), the half-octave level 2n (+ the bit
        # below the leading one when n >= 2).
        scaled = state.mean[4:]
        n = bit_length(m, scaled, _MEAN_BITS - 4, "mean_n")
        below = Signal()
        m.d.comb += below.eq(Mux(n >= 2, (state.mean >> (n + 2))[0], 0))
        level = Signal(range(2 * (_MEAN_BITS - 4) + 2))
        m.d.comb += level.eq(2 * n + below)
        context = Signal(4)
        m.d.comb += context.eq(_clamp(level - 2, 0, codec.contexts - 1))
        shift = Signal(range(SHIFT_MAX + 1))
        if codec.shift_offset:
            m.d.comb += shift.eq(_clamp(n - codec.shift_offset, 0, SHIFT_MAX))
        names.update({"context": context, "shift": shift, "value": b.value, "code": b.code,
                      "state": state})
        return self._stage(m, advance, b, names, "c")

    def _predict(self, m: Module, advance, c: SimpleNamespace) -> SimpleNamespace:
        """Stage C: the prediction, rounded, scaled and clamped."""
        codec = self._codec
        terms = [getattr(c, f"product{t}") for t in range(codec.taps)]
        if codec.level_tap:
            terms.append(c.product_level)
        acc = Signal(signed(32))
        m.d.comb += acc.eq(sum(terms) + (1 << (codec.weight_bits - 1)))
        prediction = Signal(signed(18))
        m.d.comb += prediction.eq(_clamp(acc >> codec.weight_bits, -65536, 65535))
        names = {"prediction": prediction, "d": c.d, "context": c.context, "shift": c.shift,
                 "value": c.value, "code": c.code, "state": c.state}
        if codec.level_tap:
            names["xl"] = c.xl
        if codec.grid:
            # The escape's offset, zigzagged and length-coded (its bit length, the bits
            # below the leading one).
            zo = Signal(GRID_VALUE_BITS + 1)
            m.d.comb += zo.eq(Mux(c.offset >= 0, c.offset << 1, -2 * c.offset - 1))
            length_o = bit_length(m, zo, GRID_VALUE_BITS + 1, "offset_bits")
            names.update({"escape": c.escape, "length_o": length_o,
                          "offset_bits": (zo ^ ((Const(1, GRID_VALUE_BITS + 2) << length_o)
                                                >> 1))[:_LOW_BITS]})
        return self._stage(m, advance, c, names, "d")

    def _residual(self, m: Module, advance, d: SimpleNamespace, state_wr) -> SimpleNamespace:
        """Stage D: the residual, shifted and zigzagged; the channel's new state, written."""
        codec = self._codec
        layout = ChannelStateV2(codec)
        e = Signal(signed(19))
        m.d.comb += e.eq(d.d - d.prediction)
        shifted = Signal(signed(19))
        m.d.comb += shifted.eq(e >> d.shift)
        u = Signal(19)
        m.d.comb += u.eq(Mux(shifted >= 0, shifted << 1, -2 * shifted - 1))
        ue = Signal(19)
        m.d.comb += ue.eq(Mux(e >= 0, e << 1, -2 * e - 1))
        low_bits = Signal(SHIFT_MAX)
        m.d.comb += low_bits.eq(e - (shifted << d.shift))

        state = d.state
        new = Signal(layout)
        w_lim = (1 << (WEIGHT_STATE_BITS - 1)) - 1
        h_lim = (1 << (HISTORY_BITS - 1)) - 1
        for t in range(codec.taps):
            step = _sign_step(codec.mu, e, state.history[t])
            m.d.comb += new.weights[t].eq(_clamp(state.weights[t] + step, -w_lim, w_lim))
        m.d.comb += new.history[0].eq(_clamp(d.d, -h_lim, h_lim))
        for t in range(1, codec.taps):
            m.d.comb += new.history[t].eq(state.history[t - 1])
        if codec.sync_blocks:
            m.d.comb += new.epoch.eq(d.epoch)
        m.d.comb += [
            new.prev.eq(d.code),
            new.mean.eq(state.mean + (((ue << 4) - state.mean) >> MEAN_SHIFT)),
        ]
        if codec.level_tap:
            step = _sign_step(codec.mu, e, d.xl)
            scaled = Signal(signed(16 + DC_FRAC_BITS))
            m.d.comb += scaled.eq(d.code << DC_FRAC_BITS)
            m.d.comb += [
                new.level_weight.eq(_clamp(state.level_weight + step, -w_lim, w_lim)),
                new.dc.eq(Mux(state.started, state.dc + ((scaled - state.dc) >> DC_RATE),
                              scaled)),
                new.started.eq(1),
            ]
        m.d.comb += [state_wr.addr.eq(d.channel), state_wr.data.eq(new),
                     state_wr.en.eq(d.valid & advance)]
        names = {"shifted": shifted, "u": u, "low_bits": low_bits, "shift": d.shift,
                 "context": d.context, "value": d.value}
        if codec.grid:
            names.update({"ue": ue, "escape": d.escape, "length_o": d.length_o,
                          "offset_bits": d.offset_bits})
        if codec.code_weights:
            names.update(self._weight_base(m, d))
        return self._stage(m, advance, d, names, "e")

    def _weight_base(self, m: Module, d: SimpleNamespace) -> dict:
        """D's part of the code weights: where the sample's LITERALS weights start in the
        padded table (the predicted code ``prev + prediction`` less LITERALS/2, clamped to
        -LITERALS .. code_max + 1, plus LITERALS), and whether the sample is coded
        unweighted (a residual shifted: the model's ``k > 0``)."""
        c0 = Signal(signed(20))
        m.d.comb += c0.eq(d.state.prev + d.prediction - LITERALS // 2)
        start = Signal(range((1 << self._codec.grid_bits) + LITERALS + 1))
        m.d.comb += start.eq(_clamp(c0, -LITERALS, self.grid_code_max + 1) + LITERALS)
        return {"weight_start": start, "plain": d.shift != 0}

    def _symbol(self, m: Module, advance, e: SimpleNamespace) -> SimpleNamespace:
        """Stage E: the symbol and the bucket's raw bits (an ESCAPE's: its two length-coded
        fields); the CDF row's read is issued."""
        nb = bit_length(m, e.u, 19, "u_bits")
        literal = Signal()
        m.d.comb += literal.eq(e.u < LITERALS)
        symbol = Signal(6)
        high_count = Signal(5)
        high_bits = Signal(_HIGH_BITS)
        low_bits = Signal(_LOW_BITS)
        low_count = Signal(5)
        length_e = Signal(5)
        length_o = Signal(5)
        m.d.comb += [low_bits.eq(e.low_bits), low_count.eq(e.shift)]
        with m.If(literal):
            m.d.comb += symbol.eq(e.shifted + LITERALS // 2)
        with m.Else():
            m.d.comb += [
                symbol.eq(LITERALS + nb - LITERAL_BITS - 1),
                high_count.eq(nb - 1),
                high_bits.eq(e.u ^ ((Const(1, 20) << nb) >> 1)),    # leading one cleared
            ]
        if self._codec.grid:
            # zigzag(e) and the offset, each its bit length and the bits below its leading
            # one (the model's _encode_length_coded); no shift bits
            ne = bit_length(m, e.ue, 19, "ue_bits")
            with m.If(e.escape):
                m.d.comb += [
                    symbol.eq(ESCAPE), length_e.eq(ne), length_o.eq(e.length_o),
                    high_count.eq(Mux(ne > 1, ne - 1, 0)),
                    high_bits.eq(e.ue ^ ((Const(1, 20) << ne) >> 1)),
                    low_count.eq(Mux(e.length_o > 1, e.length_o - 1, 0)),
                    low_bits.eq(e.offset_bits),
                ]
        self._row_read = e        # F's row select is computed from E's context and sync
        names = {"symbol": symbol, "high_bits": high_bits, "high_count": high_count,
                 "low_bits": low_bits, "low_count": low_count, "length_e": length_e,
                 "length_o": length_o, "context": e.context, "value": e.value}
        if self._codec.code_weights:
            names.update({"rotation": e.weight_start[:5], "plain": e.plain})
        return self._stage(m, advance, e, names, "f")

    def _prior(self, m: Module, advance, row_layout, initial_row: list[int]):
        """The restart prior (``codec.restart_prior``): a second table of rows (LUT RAM,
        written by the host through :func:`prior_ports` in ``grid_write_domain``, read
        beside the CDF's own read in E at E's context). Returns the row read, for F.
        ``prior_on`` and the rows change only while no block that may be sent is coded (the
        host's lock), so they enter this domain without a synchroniser, as the grid's held
        values do."""
        m.submodules.prior = prior = memory.Memory(shape=row_layout, depth=self._codec.contexts,
                                                   init=[initial_row] * self._codec.contexts)
        prior_wr = prior.write_port(domain=self._grid_write_domain, granularity=1)
        prior_rd = prior.read_port()
        m.d.comb += [
            prior_wr.addr.eq(self.prior_context),
            prior_wr.data.eq(Cat(*[self.prior_data] * len(initial_row))),
            prior_wr.en.eq(Mux(self.prior_write, Const(1, len(initial_row)) << self.prior_index,
                               0)),
            prior_rd.addr.eq(self._row_read.context),
            prior_rd.en.eq(advance),
        ]
        return prior_rd.data

    def _frequencies(self, m: Module, advance, f: SimpleNamespace, banks) -> None:
        """Stage F: the context's CDF row (forwarded when the sample before used it), the
        symbol's frequencies, the row's update; the entry registered onto ``o``."""
        codec = self._codec
        entries = SYMBOLS - 1                  # c[1] .. c[SYMBOLS-1]; c[0] = 0, c[SYMBOLS]
        span = initial_cdf()[SYMBOLS] << _DROP
        row_layout = data.ArrayLayout(unsigned(CDF_STATE_BITS), entries)
        initial_row = [c << _DROP for c in initial_cdf()[1:SYMBOLS]]
        m.submodules.cdf = cdf = memory.Memory(shape=row_layout, depth=codec.contexts,
                                               init=[initial_row] * codec.contexts)
        row_rd = cdf.read_port()
        row_wr = cdf.write_port()
        e = self._row_read
        m.d.comb += [row_rd.addr.eq(e.context), row_rd.en.eq(advance)]

        # The row's source and the count are chosen a stage early (in E, from E's context
        # and the sample in F, whose update lands at the same edge), so the CDF loop holds
        # only a select by registered bits: `forward` (the sample ahead used the same table:
        # the read misses its write, take its updated row `last_row`), `stale` (sync blocks:
        # the table was not written since the last sync, or this sample is the sync: the
        # initial row and a count of 0, over the forwarded row too) and the count itself.
        # A plain vector viewed as the row, not Signal(row_layout): Amaranth names an
        # ArrayLayout signal's elements `last_row[k]`, which Yosys 0.70's ABC9
        # reintegration (abc_ops_reintegrate) confuses with bit k of `last_row` and
        # dies on (an assert, silent under YoWASP) when this register's bits are named
        # both ways; same bits, same logic.
        last_row = data.View(row_layout, Signal(row_layout.size, name="last_row"))
        forward = Signal()
        stale = Signal()
        same = Signal()                         # F's sample updates E's table at this edge
        m.d.comb += same.eq(f.valid & (f.context == e.context))
        with m.If(advance):
            m.d.sync += forward.eq(same)
        # plain vector viewed as the row, as last_row (its bits now also feed W1's registers)
        row = data.View(row_layout, Signal(row_layout.size, name="row"))
        stored = Mux(forward, last_row, row_rd.data)
        initial = Cat(*[Const(v, CDF_STATE_BITS) for v in initial_row])
        count_max = 16 * (codec.rate_max - 4)
        restart_count = 0                       # a restarted table's count
        if codec.restart_prior:
            # with prior_on, a restarted table is the prior's row at the slow rate
            prior_row = self._prior(m, advance, row_layout, initial_row)
            initial = Mux(self.prior_on, prior_row, initial)
            restart_count = Mux(self.prior_on, count_max, 0)

        counts = [Signal(range(count_max + 1), name=f"count{j}") for j in range(codec.contexts)]
        count = Signal(range(count_max + 1))    # this sample's (registered)
        count_next = Signal(range(count_max + 1))   # this sample's table's, after its update
        count_e = Signal(range(count_max + 1))  # E's table's count register
        stale_e = Signal()                      # E's table reads as the initial one in F
        m.d.comb += count_next.eq(Mux(count < count_max, count + 1, count))
        for j, reg in enumerate(counts):
            with m.If(e.context == j):
                m.d.comb += count_e.eq(reg)
        if codec.sync_blocks:
            # Sync blocks: a table not written since the last sync is the initial one. A
            # table is fresh after the edge if F's sample writes it, or it was fresh and
            # F's sample is not a sync (which clears them all).
            fresh = Signal(codec.contexts)
            m.d.comb += stale_e.eq(e.sync | ~(same | (fresh.bit_select(e.context, 1)
                                                      & ~(f.valid & f.sync))))
            with m.If(f.valid & advance):
                m.d.sync += fresh.eq(Mux(f.sync, 0, fresh) | (Const(1, codec.contexts)
                                                               << f.context))
        count_in = Signal.like(count)           # E's sample's count, as F will see it
        rate = Signal(range(16))
        m.d.comb += count_in.eq(Mux(stale_e, restart_count, Mux(same, count_next, count_e)))
        with m.If(advance):
            m.d.sync += [stale.eq(stale_e), count.eq(count_in),
                         rate.eq(4 + (count_in >> 4))]
        m.d.comb += row.eq(Mux(stale, initial, stored))

        new_row = Signal(row_layout)
        for j in range(1, SYMBOLS):
            c = row[j - 1]
            above = Signal(name=f"above{j}")
            delta = Signal(CDF_STATE_BITS, name=f"delta{j}")
            m.d.comb += [
                above.eq(j > f.symbol),
                delta.eq(Mux(above, span - c, c) >> rate),
                new_row[j - 1].eq(Mux(above, c + delta, c - delta)),
            ]
        # Top 15 bits: t[0] = 0, t[j] = c[j] >> 7, t[SYMBOLS] = span >> 7.
        tops = [Const(0, CDF_BITS)] + [row[j][_DROP:] for j in range(entries)] + \
            [Const(span >> _DROP, CDF_BITS)]
        top_at = Signal(CDF_BITS)
        top_next = Signal(CDF_BITS)
        with m.Switch(f.symbol):
            for j in range(SYMBOLS):
                with m.Case(j):
                    m.d.comb += [top_at.eq(tops[j]), top_next.eq(tops[j + 1])]
        low = Signal(CDF_BITS)
        frequency = Signal(CDF_BITS + 1)
        m.d.comb += [low.eq(top_at + f.symbol), frequency.eq(top_next - top_at + 1)]

        update = Signal()
        m.d.comb += update.eq(f.valid & advance)
        m.d.comb += [row_wr.addr.eq(f.context), row_wr.data.eq(new_row),
                     row_wr.en.eq(update)]
        with m.If(advance):
            m.d.sync += last_row.eq(new_row)
        with m.If(update):
            for j, reg in enumerate(counts):
                with m.If(f.context == j):
                    m.d.sync += reg.eq(count_next)

        entry = {name: getattr(f, name) for name in _CARRIED}
        entry.update({"low": low, "frequency": frequency})
        if codec.code_weights:
            self._weighted(m, advance, f, entry, tops, banks)
        else:
            self._put(m, advance, f, entry)

    def _put(self, m: Module, advance, stage: SimpleNamespace, entry: dict) -> None:
        """The entry registered onto ``o``."""
        payload = self.o.payload
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(stage.valid), payload.channel.eq(stage.channel),
                         payload.first.eq(stage.first)]
            m.d.sync += [getattr(payload, name).eq(value) for name, value in entry.items()]

    def _weight_banks(self, m: Module, advance, e: SimpleNamespace) -> list:
        """The code weights' table in LITERALS banks (LUT RAM; entry i of the padded table
        in bank i % LITERALS, row i // LITERALS), so that E reads the sample's LITERALS
        consecutive weights in one cycle: bank b at row ``start // LITERALS``, one more when
        b is below the rotation ``start % LITERALS``. Returns the banks' read data (in F).
        The host writes a pair of entries a cycle (:func:`weight_ports`) in
        ``grid_write_domain``, while no block that may be sent is coded, as the grid."""
        depth = ((1 << self._codec.grid_bits) + 2 * LITERALS + LITERALS - 1) // LITERALS
        unit = 1 << WEIGHT_UNIT_BITS
        pairs_per_row = LITERALS // 2
        row = e.weight_start >> LITERAL_BITS
        rotation = e.weight_start[:LITERAL_BITS]
        out = []
        for b in range(LITERALS):
            bank = memory.Memory(shape=unsigned(8), depth=depth, init=[unit] * depth)
            m.submodules[f"weights{b}"] = bank
            wr = bank.write_port(domain=self._grid_write_domain)
            rd = bank.read_port()
            m.d.comb += [
                wr.addr.eq(self.weight_pair >> (LITERAL_BITS - 1)),
                wr.data.eq(self.weight_data.word_select(b & 1, 8)),
                wr.en.eq(self.weight_write & (self.weight_pair[:LITERAL_BITS - 1] == b >> 1)
                         & (self.weight_pair < depth * pairs_per_row)),
                rd.addr.eq(row + (b < rotation)),
                rd.en.eq(advance),
            ]
            out.append(rd.data)
        return out

    def _weighted(self, m: Module, advance, f: SimpleNamespace, entry: dict, tops: list,
                  banks: list) -> None:
        """The code weights (:data:`WEIGHT_LATENCY` stages behind F, feed-forward): the
        model's ``_frequencies`` with weights and ``_to_power_of_two``. W1 the literals'
        frequencies times their weights (LITERALS multipliers, 16 x 8), at least 1; W2 the
        sums of groups of 8 (all, and those below the symbol) and the symbol's own; W3 the
        total T and the cumulative ``lo``; W4 T's top RECIPROCAL_BITS bits rounded up,
        the reciprocal ROM's read; W5 ``lo * m`` and ``(lo + f) * m``; W6 both shifted by
        18 + T's shift, plus the symbol. A sample coded unweighted (``weights_on`` low, or
        its residual shifted) keeps F's entry."""
        rotated = Signal(8 * LITERALS)
        m.d.comb += rotated.eq((Cat(*banks, *banks) >> (f.rotation * 8))[:8 * LITERALS])
        weighted = Signal()
        m.d.comb += weighted.eq(self.weights_on & ~f.plain)
        carried = {**entry, "weighted": weighted}
        w1 = self._stage(m, advance, f, {**carried, **{f"top{j}": tops[j] for j in
                                                          range(1, SYMBOLS)},
                                         "weights": rotated}, "w1")
        # W1: the frequencies, the literals' weighted
        top = [Const(0, CDF_BITS)] + [getattr(w1, f"top{j}") for j in range(1, SYMBOLS)] \
            + [tops[SYMBOLS]]
        scaled = {}
        for j in range(SYMBOLS):
            freq = Signal(CDF_BITS + 1, name=f"freq{j}")
            m.d.comb += freq.eq(top[j + 1] - top[j] + 1)
            if j < LITERALS:
                product = Signal(CDF_BITS + 9, name=f"weighted{j}")
                m.d.comb += product.eq(freq * w1.weights.word_select(j, 8))
                freq = Mux(product[WEIGHT_UNIT_BITS:] == 0, 1, product[WEIGHT_UNIT_BITS:])
            scaled[f"f{j}"] = freq
        w2 = self._stage(m, advance, w1, {**self._along(w1, carried), **scaled}, "w2")
        # W2: groups of 8, all and below the symbol; the symbol's own
        sums = {}
        for g in range(0, SYMBOLS, 8):
            members = [getattr(w2, f"f{j}") for j in range(g, min(g + 8, SYMBOLS))]
            sums[f"all{g}"] = sum(members)
            sums[f"below{g}"] = sum(Mux(w2.symbol > j, x, 0)
                                    for j, x in zip(range(g, g + 8), members))
        own = Signal(_WEIGHTED_BITS)
        with m.Switch(w2.symbol):
            for j in range(SYMBOLS):
                with m.Case(j):
                    m.d.comb += own.eq(getattr(w2, f"f{j}"))
        w3 = self._stage(m, advance, w2, {**self._along(w2, carried), **sums, "own": own},
                         "w3")
        # W3: the total and the cumulative frequency
        total = Signal(_WEIGHTED_BITS)
        low = Signal(_WEIGHTED_BITS)
        m.d.comb += [total.eq(sum(getattr(w3, f"all{g}") for g in range(0, SYMBOLS, 8))),
                     low.eq(sum(getattr(w3, f"below{g}") for g in range(0, SYMBOLS, 8)))]
        w4 = self._stage(m, advance, w3, {**self._along(w3, carried), "total": total,
                                          "lo": low, "hi": low + w3.own}, "w4")
        # W4: T = q * 2**sh rounded up (q of RECIPROCAL_BITS bits, or 1024), the ROM's read
        nb = bit_length(m, w4.total, _WEIGHTED_BITS, "total_bits")
        sh = Signal(range(_WEIGHTED_BITS))
        m.d.comb += sh.eq(Mux(nb > RECIPROCAL_BITS, nb - RECIPROCAL_BITS, 0))
        q = Signal(RECIPROCAL_BITS + 1)
        rest = w4.total & ((Const(1, _WEIGHTED_BITS + 1) << sh) - 1)
        m.d.comb += q.eq((w4.total >> sh) + (rest != 0))
        m.submodules.reciprocal = rom = memory.Memory(
            shape=unsigned(_RECIPROCAL_WIDTH), depth=1 << RECIPROCAL_BITS, init=reciprocal_rom())
        rom_rd = rom.read_port()
        m.d.comb += [rom_rd.addr.eq(q[:RECIPROCAL_BITS]), rom_rd.en.eq(advance)]
        w5 = self._stage(m, advance, w4, {**self._along(w4, carried), "lo": w4.lo,
                                          "hi": w4.hi, "shift": sh + 18,
                                          "full": q[RECIPROCAL_BITS]}, "w5")
        # W5: the two products
        r_full = int(reciprocal_table()[1 << RECIPROCAL_BITS])
        mult = Signal(_RECIPROCAL_WIDTH)
        m.d.comb += mult.eq(Mux(w5.full, r_full - (r_full >> 9), rom_rd.data))
        w6 = self._stage(m, advance, w5, {**self._along(w5, carried), "shift": w5.shift,
                                          "p_lo": w5.lo * mult, "p_hi": w5.hi * mult}, "w6")
        # W6: onto the coder's total, plus the symbol (every symbol keeps >= 1)
        low_w = Signal(CDF_BITS)
        end_w = Signal(CDF_BITS + 1)
        m.d.comb += [low_w.eq((w6.p_lo >> w6.shift) + w6.symbol),
                     end_w.eq((w6.p_hi >> w6.shift) + w6.symbol + 1)]
        final = self._along(w6, entry)
        final.update({"low": Mux(w6.weighted, low_w, w6.low),
                      "frequency": Mux(w6.weighted, end_w - low_w, w6.frequency)})
        self._put(m, advance, w6, final)

    @staticmethod
    def _along(stage: SimpleNamespace, names: dict) -> dict:
        """``names``' registers in ``stage``, to carry on to the next."""
        return {name: getattr(stage, name) for name in names}
