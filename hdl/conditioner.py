"""Conditioner: per-channel DC removal and spike band-pass, channel-serial."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import COEF_BITS, FILTER_FRAC_BITS

from .layouts import SampleLayout

__all__ = ["Conditioner"]

F = FILTER_FRAC_BITS


class ConditionerState(data.StructLayout):
    """One channel's filter states (values << FILTER_FRAC_BITS)."""

    def __init__(self):
        super().__init__({
            "dc": signed(16 + F + 1),        # tracks x (int16)
            "highpass": signed(17 + F + 1),  # tracks y1 (17 bits)
            "lowpass": signed(18 + F + 1),   # tracks y2 (18 bits)
            "lowpass2": signed(19 + F + 1),  # tracks y3 (19 bits)
        })


class Conditioner(wiring.Component):
    """DC removal, first-order high-pass and second-order low-pass per channel, one sample
    per clock.

    The arithmetic is in :mod:`spikeforge.firmware.detection` and modelled bit-exactly by
    :func:`spikeforge.sim.models.detector.condition`. Coefficients are fixed at build time
    from ``config.detector`` (``dc_shift``, ``highpass_hz``, ``lowpass_hz``).

    Ports
    -----
    i : stream of :class:`SampleLayout` in
    o : stream of :class:`SampleLayout` out, same channel and ``first``; value is the
        conditioned sample saturated to int16.

    Latency 2 cycles (input transfer in cycle t, output valid from t+2); throughput one
    sample per cycle. Back-pressure on ``o`` stalls the whole pipeline (``i.ready`` is low
    while ``o`` holds an untaken sample). Samples of one channel may follow each other in
    consecutive cycles: the state memory is read transparently to its write port.

    Per-channel state: :class:`ConditionerState`, 25 + 26 + 27 + 28 = 106 bits in one memory
    of ``channels`` words.
    """

    LATENCY = 2

    def __init__(self, config: SystemConfig):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(SampleLayout(config))),
            "o": Out(stream.Signature(SampleLayout(config))),
        })

    def elaborate(self, platform):
        config = self._config
        det = config.detector
        a_hp = det.highpass_coefficient(config.sample_rate_hz)
        a_lp = det.lowpass_coefficient(config.sample_rate_hz)
        m = Module()

        layout = ConditionerState()
        m.submodules.state = state_mem = memory.Memory(
            shape=layout, depth=config.channels, init=[])
        wr = state_mem.write_port()
        rd = state_mem.read_port(transparent_for=(wr,))

        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
            rd.addr.eq(self.i.payload.channel),
            rd.en.eq(advance),
        ]

        # Stage 1: the sample whose state is being read.
        s1_valid = Signal()
        s1 = Signal.like(self.i.payload)
        with m.If(advance):
            m.d.sync += [s1_valid.eq(self.i.valid), s1.eq(self.i.payload)]

        # Stage 2 (combinational on stage 1 + memory data): update, write back, output.
        state = layout(rd.data)
        x = s1.value
        dc = Signal(signed(16 + F + 1))
        y1 = Signal(signed(17))
        hp = Signal(signed(17 + F + 1))
        y2 = Signal(signed(18))
        lp = Signal(signed(18 + F + 1))
        y3 = Signal(signed(18 + 1))
        lp2 = Signal(signed(19 + F + 1))
        y = Signal(signed(19 + 1))
        m.d.comb += [
            dc.eq(state.dc + (((x << F) - state.dc) >> det.dc_shift)),
            y1.eq(x - (dc >> F)),
            hp.eq(state.highpass + ((a_hp * ((y1 << F) - state.highpass)) >> COEF_BITS)),
            y2.eq(y1 - (hp >> F)),
            lp.eq(state.lowpass + ((a_lp * ((y2 << F) - state.lowpass)) >> COEF_BITS)),
            y3.eq(lp >> F),
            lp2.eq(state.lowpass2 + ((a_lp * ((y3 << F) - state.lowpass2)) >> COEF_BITS)),
            y.eq(lp2 >> F),
        ]
        new_state = Signal(layout)
        m.d.comb += [
            new_state.dc.eq(dc), new_state.highpass.eq(hp), new_state.lowpass.eq(lp),
            new_state.lowpass2.eq(lp2),
            wr.addr.eq(s1.channel),
            wr.data.eq(new_state),
            wr.en.eq(s1_valid & advance),
        ]
        saturated = Mux(y > 32767, 32767, Mux(y < -32768, -32768, y))
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(s1_valid),
                self.o.payload.channel.eq(s1.channel),
                self.o.payload.first.eq(s1.first),
                self.o.payload.value.eq(saturated),
            ]
        return m
