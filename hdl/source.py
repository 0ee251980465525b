"""Multichannel test-signal source."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.test_signal import (
    CHANNEL_FIELD_BITS,
    FINAL_SHIFT,
    MIX_ROUNDS,
    SPIKE_TEMPLATE,
)

from .layouts import SampleLayout

__all__ = ["TestSource", "mix32"]


def mix32(x):
    """The integer hash of :mod:`spikeforge.firmware.test_signal`, as an expression."""
    for xor_shift, mul_shift in MIX_ROUNDS:
        x = (x ^ (x >> xor_shift))[:32]
        x = (x + (x << mul_shift))[:32]
    return (x ^ (x >> FINAL_SHIFT))[:32]


class TestSource(wiring.Component):
    """Channel-serial test-signal source: noise, DC offsets and spikes on every channel.

    Every ``config.cycles_per_sample`` cycles the source starts a sweep and emits channels
    0 .. channels-1 on ``o``, one per cycle, exactly as an ADC front-end would. What each
    sample holds is defined in :mod:`spikeforge.firmware.test_signal` and modelled
    bit-exactly by :func:`spikeforge.sim.models.source.source_signal`.

    Ports
    -----
    o : stream of :class:`SampleLayout`
        ``valid`` is registered and the payload is held until ``ready``. Sample (n, c)
        reaches ``o`` :data:`LATENCY` cycles after the sweep start ``n * cycles_per_sample``
        plus ``c``.
    sweep : unsigned(32), out
        Number of sweeps started since reset (the sample clock of the whole chain).
    overruns : unsigned(32), out
        Samples lost because ``o`` was still full when the next one was computed (a consumer
        that stalls). A consumer that is always ready (the framer) never causes one.

    Per-channel state: the spike phase (6 bits) in a memory of ``channels`` words.
    """

    LATENCY = 2
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, config: SystemConfig):
        self._config = config
        super().__init__({
            "o": Out(stream.Signature(SampleLayout(config))),
            "sweep": Out(32),
            "overruns": Out(32),
        })

    def elaborate(self, platform):
        config = self._config
        ts = config.test_source
        template_len = len(SPIKE_TEMPLATE)
        m = Module()

        # Sweep timing: one sweep every cycles_per_sample cycles, channels issued back to back.
        tick_count = Signal(range(config.cycles_per_sample))
        issuing = Signal()
        channel = Signal(range(config.channels))
        sweep = Signal(32)
        m.d.comb += self.sweep.eq(sweep)
        with m.If(tick_count == config.cycles_per_sample - 1):
            m.d.sync += tick_count.eq(0)
        with m.Else():
            m.d.sync += tick_count.eq(tick_count + 1)

        issue = Signal()
        m.d.comb += issue.eq((tick_count == 0) | issuing)
        with m.If(issue):
            with m.If(channel == config.channels - 1):
                m.d.sync += [channel.eq(0), issuing.eq(0), sweep.eq(sweep + 1)]
            with m.Else():
                m.d.sync += [channel.eq(channel + 1), issuing.eq(1)]

        # Stage A -> B: hash the sample's key, compute its noise, DC and spike-start test, and
        # read the channel's spike phase. Everything that does not need the phase is
        # registered here, so stage B is only the phase RAM's output into the spike value.
        m.submodules.phase = phase_mem = memory.Memory(
            shape=range(template_len), depth=config.channels, init=[])
        phase_rd = phase_mem.read_port()
        phase_wr = phase_mem.write_port()
        m.d.comb += phase_rd.addr.eq(channel)

        r = Signal(32)
        m.d.comb += r.eq(mix32(Const(ts.seed, 32) ^ ((sweep << CHANNEL_FIELD_BITS) | channel)[:32]))
        noise = Signal(signed(10))
        m.d.comb += noise.eq((r[0:8] + r[8:16] - 255).as_signed() >> ts.noise_shift)
        dc = Signal(signed(10))
        m.d.comb += dc.eq(((channel[:3] - 4) << 6).as_signed())

        b_valid = Signal()
        b_channel = Signal.like(channel)
        b_noise = Signal.like(noise)
        b_dc = Signal.like(dc)
        b_start_drawn = Signal()             # a spike starts here if none is running
        b_scale = Signal(2)                  # the channel's template scale, 4 + this
        m.d.sync += [
            b_valid.eq(issue),
            b_channel.eq(channel),
            b_noise.eq(noise),
            b_dc.eq(dc),
            b_start_drawn.eq(r[16:32] < config.spike_start_threshold),
            b_scale.eq(channel[:2]),
        ]

        # Stage B: the spike state machine and the sum. The template times the channel's
        # scale, (template * (4 + s)) >> 3, is one table of 4 x template_len values.
        phase = phase_rd.data
        active = b_start_drawn | (phase != 0)      # starting (phase 0) or running
        scaled = memory.Memory(shape=signed(16), depth=4 * template_len,
                               init=[(t * (4 + s)) >> 3 for s in range(4)
                                     for t in SPIKE_TEMPLATE])
        m.submodules.scaled_template = scaled
        scaled_rd = scaled.read_port(domain="comb")
        m.d.comb += scaled_rd.addr.eq(Cat(phase, b_scale) if template_len == 1 << len(phase)
                                      else b_scale * template_len + phase)
        spike = Signal(signed(16))
        with m.If(active):
            m.d.comb += spike.eq(scaled_rd.data)

        next_phase = Signal.like(phase)
        with m.If(active):
            m.d.comb += next_phase.eq(Mux(phase == template_len - 1, 0, phase + 1))
        m.d.comb += [
            phase_wr.addr.eq(b_channel),
            phase_wr.data.eq(next_phase),
            phase_wr.en.eq(b_valid),
        ]

        # Stage C: output register, held until accepted.
        with m.If(~self.o.valid | self.o.ready):
            m.d.sync += [
                self.o.valid.eq(b_valid),
                self.o.payload.channel.eq(b_channel),
                self.o.payload.value.eq(b_dc + b_noise + spike),
                self.o.payload.first.eq(b_channel == 0),
            ]
        with m.Elif(b_valid):
            m.d.sync += self.overruns.eq(self.overruns + 1)

        return m
