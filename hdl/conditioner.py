"""Conditioner: per-channel DC removal and spike band-pass, channel-serial."""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import COEF_BITS, FILTER_FRAC_BITS

from .layouts import SampleLayout

__all__ = ["Conditioner", "csd_terms", "multiply_by_constant"]

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


def csd_terms(constant: int) -> list[tuple[int, int]]:
    """``constant`` in canonical signed digits: ``[(sign, shift), ...]`` with
    ``constant == sum(sign << shift)`` and no two adjacent non-zero digits (the fewest adders
    for a multiplication by a constant)."""
    if constant < 0:
        raise ValueError(f"constant must be non-negative, not {constant!r}")
    terms = []
    shift = 0
    while constant:
        if constant & 1:
            digit = 2 - (constant & 3)  # +1 if ...01, -1 if ...11
            terms.append((digit, shift))
            constant -= digit
        constant >>= 1
        shift += 1
    return terms


def multiply_by_constant(value, constant: int):
    """``value * constant`` as shifts and adds (exactly the product, no multiplier cell)."""
    terms = csd_terms(constant)
    if not terms:
        return value * 0
    total = None
    for sign, shift in terms:
        term = value << shift
        if total is None:
            total = term if sign > 0 else -term
        else:
            total = total + term if sign > 0 else total - term
    return total


class Conditioner(wiring.Component):
    """DC removal, first-order high-pass and second-order low-pass per channel, one sample
    per clock.

    The arithmetic is in :mod:`spikeforge.firmware.detection` and modelled bit-exactly by
    :func:`spikeforge.sim.models.detector.condition`. Coefficients are fixed at build time
    from ``config.detector`` (``dc_shift``, ``highpass_hz``, ``lowpass_hz``); the products
    by them are shifts and adds (canonical signed digits, :func:`csd_terms`), so the core
    uses no multiplier (DSP) cell.

    Ports
    -----
    i : stream of :class:`SampleLayout` in
    o : stream of :class:`SampleLayout` out, same channel and ``first``; value is the
        conditioned sample saturated to int16.

    Latency :data:`LATENCY` = 5 cycles (input transfer in cycle t, output valid from t+5):
    one pipeline stage per filter (DC removal, high-pass, low-pass, low-pass again), each
    with the channel's state of that filter in its own memory, written back by the stage.
    The DC stage reads its state in the cycle before it; the three filter stages with a
    product read theirs two cycles before and register it (the write of the sample ahead
    forwarded), so no block RAM output feeds a product in the same cycle (timing at
    45 MHz on the ECP5 at 1024 channels). On an iCE40 (``state_reads="auto"``) they read
    in the cycle before, as the DC stage does (about 100 LUT4s and 80 flip-flops fewer);
    both forms are cycle- and bit-exact to the same model. Throughput one sample per cycle.
    Back-pressure on ``o`` stalls the whole pipeline (``i.ready`` is low while ``o`` holds
    an untaken sample).
    Samples of one channel may follow each other in consecutive cycles: each state memory is
    read transparently to its write port, so a stage always sees the state its previous
    sample of that channel left.

    Per-channel state: :class:`ConditionerState`, 25 + 26 + 27 + 28 = 106 bits, in four
    memories of ``channels`` words (one per filter stage).
    """

    LATENCY = 5
    #: ``state_reads``: how the filter stages with a product read their state.
    STATE_READS = ("auto", "registered", "direct")

    def __init__(self, config: SystemConfig, state_reads: str = "auto"):
        if state_reads not in self.STATE_READS:
            raise ValueError(f"state_reads must be one of {', '.join(self.STATE_READS)}, "
                             f"not {state_reads!r}")
        self._config = config
        self._state_reads = state_reads
        super().__init__({
            "i": In(stream.Signature(SampleLayout(config))),
            "o": Out(stream.Signature(SampleLayout(config))),
        })

    def resolve_state_reads(self, platform) -> str:
        """``"registered"`` (read two cycles ahead and register: for the ECP5's 45 MHz) or
        ``"direct"`` (the block RAM's output straight into the stage: fewer LUTs and
        flip-flops, for the iCE40 at 12 MHz). ``"auto"`` is direct on an iCE40 platform and
        registered otherwise, in simulation too; the bench runs both."""
        if self._state_reads != "auto":
            return self._state_reads
        device = str(getattr(platform, "device", "") or "")
        return "direct" if device.lower().startswith("ice40") else "registered"

    def elaborate(self, platform):
        config = self._config
        registered_reads = (_REGISTERED_READ if self.resolve_state_reads(platform) ==
                            "registered" else ())
        det = config.detector
        a_hp = det.highpass_coefficient(config.sample_rate_hz)
        a_lp = det.lowpass_coefficient(config.sample_rate_hz)
        m = Module()
        layout = ConditionerState()

        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]

        # The stages: (state field, how the stage's output follows from its input and its
        # updated state). Each stage reads its state memory at the address of the sample
        # entering it and writes the updated state back when the sample leaves it.
        def dc_stage(x, old):
            new = old + (((x << F) - old) >> det.dc_shift)
            return new, x - (new >> F)

        def highpass_stage(x, old):
            new = old + (multiply_by_constant((x << F) - old, a_hp) >> COEF_BITS)
            return new, x - (new >> F)

        def lowpass_stage(x, old):
            new = old + (multiply_by_constant((x << F) - old, a_lp) >> COEF_BITS)
            return new, new >> F

        stages = [("dc", dc_stage, 17), ("highpass", highpass_stage, 18),
                  ("lowpass", lowpass_stage, 19), ("lowpass2", lowpass_stage, 20)]

        # Stage input registers: valid, channel, first, value (widening down the chain).
        # ``entering_channels[k]`` is the channel of the sample entering stage k (the input
        # port for the first stage, the previous stage's register after it).
        entering_valid = self.i.valid
        entering = self.i.payload
        entering_value = self.i.payload.value
        entering_channels = [self.i.payload.channel]
        for index, (name, update, out_bits) in enumerate(stages):
            shape = layout[name].shape
            mem = memory.Memory(shape=shape, depth=config.channels, init=[])
            m.submodules[f"{name}_state"] = mem
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))

            valid = Signal(name=f"{name}_valid")
            channel = Signal(config.channel_bits, name=f"{name}_channel")
            first = Signal(name=f"{name}_first")
            value = Signal(signed(len(entering_value)), name=f"{name}_in")
            with m.If(advance):
                m.d.sync += [valid.eq(entering_valid), channel.eq(entering.channel),
                             first.eq(entering.first), value.eq(entering_value)]

            new_state = Signal(shape, name=f"{name}_new")
            if index in registered_reads:
                # The state is read two cycles ahead (at the channel entering the previous
                # stage) and registered, so the stage's arithmetic starts from a flip-flop,
                # not from the block RAM's output. The write of the sample one ahead of the
                # read is seen through the read port's transparency; the write of the sample
                # that is in this stage while the read data is registered is forwarded.
                old = Signal(shape, name=f"{name}_old")
                next_channel = entering_channels[-1]
                m.d.comb += [rd.addr.eq(entering_channels[-2]), rd.en.eq(advance)]
                with m.If(advance):
                    m.d.sync += old.eq(Mux(valid & (channel == next_channel), new_state,
                                           rd.data))
            else:
                old = rd.data
                m.d.comb += [rd.addr.eq(entering.channel), rd.en.eq(advance)]

            result = Signal(signed(out_bits), name=f"{name}_out")
            new, out = update(value, old)
            m.d.comb += [
                new_state.eq(new), result.eq(out),
                wr.addr.eq(channel), wr.data.eq(new_state), wr.en.eq(valid & advance),
            ]
            entering_valid = valid
            entering = _Entering(channel, first)
            entering_value = result
            entering_channels.append(channel)

        y = entering_value
        saturated = Mux(y > 32767, 32767, Mux(y < -32768, -32768, y))
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(entering_valid),
                self.o.payload.channel.eq(entering.channel),
                self.o.payload.first.eq(entering.first),
                self.o.payload.value.eq(saturated),
            ]
        return m


#: Stages whose state read is registered (read two cycles ahead, the last write forwarded):
#: those with a product by a coefficient, whose arithmetic is too long to follow a block RAM
#: read in the same cycle at 45 MHz on the ECP5. The first stage (DC removal, shifts only)
#: reads in the cycle before it, so the latency stays five.
_REGISTERED_READ = (1, 2, 3)


class _Entering:
    """Channel and sweep-start flag of the sample entering the next stage."""

    def __init__(self, channel, first):
        self.channel = channel
        self.first = first
