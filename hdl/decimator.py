"""Decimator: per-channel CIC low-pass and rate change for the LFP stream, channel-serial."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.decimation import DecimatorConfig

from .layouts import SampleLayout

__all__ = ["Decimator", "DecimatorState"]


class DecimatorState(data.StructLayout):
    """One channel's CIC state: ``order`` integrators and ``order`` comb delays, each
    ``state_bits`` wide, wrapping."""

    def __init__(self, decimation: DecimatorConfig):
        width = decimation.state_bits
        super().__init__({
            **{f"integrator{k}": signed(width) for k in range(decimation.order)},
            **{f"delay{k}": signed(width) for k in range(decimation.order)},
        })


class Decimator(wiring.Component):
    """CIC decimator of order N and factor R per channel, one sample per clock.

    The arithmetic is in :mod:`spikeforge.firmware.decimation` and modelled bit-exactly by
    :func:`spikeforge.sim.models.decimator.decimate`. Factor and order are fixed at build
    time (``decimation``).

    Ports
    -----
    i : stream of :class:`SampleLayout` in: the raw samples, every channel of every sweep in
        order, ``first`` on channel 0.
    o : stream of :class:`SampleLayout` out: one decimated sweep (every channel in order,
        ``first`` on channel 0) for every R input sweeps; value = low-passed sample at
        unity DC gain, rounded and saturated to int16.

    Counting input sweeps from reset as 0, 1, ..., output sweep m is produced from input
    sweep ``(m + 1)·R - 1``: its channel c leaves 3 cycles after input (that sweep, c) is
    taken (latency 3). Throughput one sample per cycle. Back-pressure on ``o`` stalls the
    whole pipeline (``i.ready`` is low while ``o`` holds an untaken sample); nothing is
    dropped. Samples of one channel may follow each other in consecutive cycles: the state
    memory is read transparently to its write port.

    Per-channel state: :class:`DecimatorState`, ``2·N·(16 + ceil(N·log2 R))`` bits in one
    memory of ``channels`` words (186 bits for R = 30, N = 3); plus one sweep-phase
    counter shared by all channels.
    """

    LATENCY = 3

    def __init__(self, config: SystemConfig, decimation: DecimatorConfig | None = None):
        self._config = config
        self._decimation = decimation if decimation is not None else DecimatorConfig()
        super().__init__({
            "i": In(stream.Signature(SampleLayout(config))),
            "o": Out(stream.Signature(SampleLayout(config))),
        })

    @property
    def decimation(self) -> DecimatorConfig:
        return self._decimation

    def elaborate(self, platform):
        config, dec = self._config, self._decimation
        order, width = dec.order, dec.state_bits
        m = Module()

        layout = DecimatorState(dec)
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

        # The sweep phase: which of the R input sweeps of an output period this one is.
        phase = Signal(range(dec.factor), init=dec.factor - 1)
        current_phase = Signal.like(phase)
        m.d.comb += current_phase.eq(
            Mux(s1.first, Mux(phase == dec.factor - 1, 0, phase + 1), phase))
        with m.If(s1_valid & advance):
            m.d.sync += phase.eq(current_phase)
        emit = Signal()
        m.d.comb += emit.eq(current_phase == dec.factor - 1)

        # Stage 1 logic: integrate every sample; comb on output sweeps only.
        state = layout(rd.data)
        new_state = Signal(layout)
        acc = s1.value
        for k in range(order):
            integrated = Signal(signed(width), name=f"integrated{k}")
            m.d.comb += [
                integrated.eq(state[f"integrator{k}"] + acc),
                new_state[f"integrator{k}"].eq(integrated),
            ]
            acc = integrated
        for k in range(order):
            combed = Signal(signed(width), name=f"combed{k}")
            m.d.comb += [
                combed.eq(acc - state[f"delay{k}"]),
                new_state[f"delay{k}"].eq(Mux(emit, acc, state[f"delay{k}"])),
            ]
            acc = combed
        m.d.comb += [
            wr.addr.eq(s1.channel),
            wr.data.eq(new_state),
            wr.en.eq(s1_valid & advance),
        ]

        # Stage 2: the comb output of an output sample, registered before the gain.
        s2_valid = Signal()
        s2 = Signal(data.StructLayout({
            "channel": unsigned(config.channel_bits), "first": 1, "sum": signed(width)}))
        with m.If(advance):
            m.d.sync += [
                s2_valid.eq(s1_valid & emit),
                s2.channel.eq(s1.channel),
                s2.first.eq(s1.first),
                s2.sum.eq(acc),
            ]

        # Stage 3: unity DC gain (one constant multiplication), rounding, saturation.
        scaled = Signal(signed(width + dec.gain_num.bit_length() + 1))
        m.d.comb += scaled.eq(
            (s2.sum * dec.gain_num + (1 << (dec.gain_shift - 1))) >> dec.gain_shift)
        saturated = Mux(scaled > 32767, 32767, Mux(scaled < -32768, -32768, scaled))
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(s2_valid),
                self.o.payload.channel.eq(s2.channel),
                self.o.payload.first.eq(s2.first),
                self.o.payload.value.eq(saturated),
            ]
        return m
