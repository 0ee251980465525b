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
    HISTORY_BITS,
    LITERAL_BITS,
    LITERALS,
    MEAN_SHIFT,
    SHIFT_MAX,
    SYMBOLS,
    WEIGHT_STATE_BITS,
    CodecV2Config,
    initial_cdf,
)
from spikeforge.firmware.errors import ConfigError

from .compressor import bit_length

__all__ = ["CompressorV2Symbols", "check_symbol_config", "ChannelStateV2", "SymbolLayoutV2",
           "SampleInLayout", "SYMBOL_LATENCY"]

#: Cycles from a sample's acceptance to its symbol on ``o`` (with ``o`` ready).
SYMBOL_LATENCY = 7

_DROP = CDF_STATE_BITS - CDF_BITS
_MEAN_BITS = 22
_HIGH_BITS = 17                          # a bucket's raw bits: bitlen(u) - 1 <= 17


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
    from the sample."""

    def __init__(self, channels: int):
        super().__init__({
            "context": unsigned(4), "symbol": unsigned(6),
            "low": unsigned(CDF_BITS), "frequency": unsigned(CDF_BITS + 1),
            "high_bits": unsigned(_HIGH_BITS), "high_count": unsigned(5),
            "low_bits": unsigned(SHIFT_MAX), "low_count": unsigned(4), "value": unsigned(16),
            "channel": unsigned(max(1, (channels - 1).bit_length())), "first": 1,
        })


class ChannelStateV2(data.StructLayout):
    """One channel's predictor and context state (:func:`~spikeforge.firmware.
    compression_v2.state_bits_v2` bits: 267 with the defaults)."""

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
        super().__init__(fields)


def check_symbol_config(config: CodecV2Config) -> None:
    """Raise when ``config`` uses a part of v2 the gateware does not cover yet."""
    if config.grid or config.code_weights:
        raise ConfigError("the v2 gateware covers codec v2 without a value grid and code "
                          "weights so far; set grid=False and code_weights=False")
    if config.sync_blocks:
        raise ConfigError("the v2 gateware does not reset its state at sync blocks yet; "
                          "set sync_blocks=0")
    if config.taps < 1:
        raise ConfigError("the v2 gateware needs taps >= 1, not 0")



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
    (level tap) one 12 x 17. Covers codec v2 without a value grid, code weights or sync resets.
    """

    def __init__(self, channels: int, codec: CodecV2Config):
        check_symbol_config(codec)
        if not 1 <= channels <= 4096:
            raise ConfigError(f"channels must be 1..4096, not {channels!r}")
        self._channels = channels
        self._codec = codec
        super().__init__({
            "i": In(stream.Signature(SampleInLayout(channels))),
            "o": Out(stream.Signature(SymbolLayoutV2(channels))),
        })

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
        e = self._symbol(m, advance, d)
        self._frequencies(m, advance, e)
        # Hazard: a channel still in B, C or D has not written its state yet.
        busy = Cat(*[(stage.valid & (stage.channel == self.i.payload.channel))
                     for stage in (b, c, d)]).any()
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
            state_rd.addr.eq(sample.channel), state_rd.en.eq(advance),
        ]
        with m.If(accept):
            m.d.sync += started.eq(1)
        source = SimpleNamespace(valid=accept, channel=sample.channel, first=sample.first)
        b = self._stage(m, advance, source, {"value": sample.value}, "b")
        b.hazard = hazard
        return b

    def _products(self, m: Module, advance, b: SimpleNamespace, state) -> SimpleNamespace:
        """Stage B: the LMS products, the first difference, the level tap's input, the
        context and the shift (from the residual mean before this sample)."""
        codec = self._codec
        products = {f"product{t}": state.weights[t] * state.history[t]
                    for t in range(codec.taps)}
        names = dict(products)
        d = Signal(signed(17))
        m.d.comb += d.eq(b.value - state.prev)
        names["d"] = d
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
        names.update({"context": context, "shift": shift, "value": b.value, "state": state})
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
                 "value": c.value, "state": c.state}
        if codec.level_tap:
            names["xl"] = c.xl
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
        m.d.comb += [
            new.prev.eq(d.value),
            new.mean.eq(state.mean + (((ue << 4) - state.mean) >> MEAN_SHIFT)),
        ]
        if codec.level_tap:
            step = _sign_step(codec.mu, e, d.xl)
            scaled = Signal(signed(16 + DC_FRAC_BITS))
            m.d.comb += scaled.eq(d.value << DC_FRAC_BITS)
            m.d.comb += [
                new.level_weight.eq(_clamp(state.level_weight + step, -w_lim, w_lim)),
                new.dc.eq(Mux(state.started, state.dc + ((scaled - state.dc) >> DC_RATE),
                              scaled)),
                new.started.eq(1),
            ]
        m.d.comb += [state_wr.addr.eq(d.channel), state_wr.data.eq(new),
                     state_wr.en.eq(d.valid & advance)]
        return self._stage(m, advance, d, {"shifted": shifted, "u": u, "low_bits": low_bits,
                                           "shift": d.shift, "context": d.context,
                                           "value": d.value}, "e")

    def _symbol(self, m: Module, advance, e: SimpleNamespace) -> SimpleNamespace:
        """Stage E: the symbol and the bucket's raw bits; the CDF row's read is issued."""
        nb = bit_length(m, e.u, 19, "u_bits")
        literal = Signal()
        m.d.comb += literal.eq(e.u < LITERALS)
        symbol = Signal(6)
        high_count = Signal(5)
        high_bits = Signal(_HIGH_BITS)
        with m.If(literal):
            m.d.comb += symbol.eq(e.shifted + LITERALS // 2)
        with m.Else():
            m.d.comb += [
                symbol.eq(LITERALS + nb - LITERAL_BITS - 1),
                high_count.eq(nb - 1),
                high_bits.eq(e.u ^ ((Const(1, 20) << nb) >> 1)),    # leading one cleared
            ]
        self._row_read_addr = e.context
        return self._stage(m, advance, e, {
            "symbol": symbol, "high_bits": high_bits, "high_count": high_count,
            "low_bits": e.low_bits, "low_count": e.shift, "context": e.context,
            "value": e.value}, "f")

    def _frequencies(self, m: Module, advance, f: SimpleNamespace) -> None:
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
        m.d.comb += [row_rd.addr.eq(self._row_read_addr), row_rd.en.eq(advance)]

        # The row this stage wrote in the cycle of the read (the read misses it).
        last_valid = Signal()
        last_context = Signal(4)
        last_row = Signal(row_layout)
        row = Signal(row_layout)
        m.d.comb += row.eq(Mux(last_valid & (last_context == f.context), last_row,
                               row_rd.data))

        count_max = 16 * (codec.rate_max - 4)
        counts = [Signal(range(count_max + 1), name=f"count{j}") for j in range(codec.contexts)]
        count = Signal(range(count_max + 1))
        for j, reg in enumerate(counts):
            with m.If(f.context == j):
                m.d.comb += count.eq(reg)
        rate = Signal(range(16))
        m.d.comb += rate.eq(4 + (count >> 4))

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
            m.d.sync += [last_valid.eq(f.valid), last_context.eq(f.context),
                         last_row.eq(new_row)]
        with m.If(update):
            for j, reg in enumerate(counts):
                with m.If((f.context == j) & (reg < count_max)):
                    m.d.sync += reg.eq(reg + 1)

        payload = self.o.payload
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(f.valid),
                payload.context.eq(f.context), payload.symbol.eq(f.symbol),
                payload.low.eq(low), payload.frequency.eq(frequency),
                payload.high_bits.eq(f.high_bits), payload.high_count.eq(f.high_count),
                payload.low_bits.eq(f.low_bits), payload.low_count.eq(f.low_count),
                payload.value.eq(f.value), payload.channel.eq(f.channel), payload.first.eq(f.first),
            ]
