"""Detector: per-channel adaptive-threshold spike detection with snippets, channel-serial."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.detection import (
    COUNTER_BITS,
    DETECTOR_SAME_CHANNEL_SPACING,
    EVENT_HEADER_WORDS,
    EXCLUSION_SCORE_BITS,
    K_BITS,
    NOISE_BITS,
    NOISE_FRAC_BITS,
    SIGMA_NUM,
    THRESHOLD_SHIFT,
)
from spikeforge.firmware.errors import ConfigError

from .channel_memory import (
    ICE40UP_SPRAMS,
    SPRAM_AUTO_BITS,
    SPRAM_DEPTH,
    SpramFactory,
    sb_spram256ka,
)
from .conditioner import multiply_by_constant
from .fifo import StreamFifo
from .layouts import EventWordLayout, SampleLayout

__all__ = ["Detector", "EventWordLayout", "DetectorState"]

ARMED, SEARCH, DEAD = 0, 1, 2


def _saturated_score(score):
    """A (positive) score saturated to :data:`EXCLUSION_SCORE_BITS`, as exclusion's
    candidates and echo suppression compare scores."""
    limit = (1 << EXCLUSION_SCORE_BITS) - 1
    return Mux(score > limit, limit, score[:EXCLUSION_SCORE_BITS])


class DetectorState(data.StructLayout):
    """One channel's detection state (with local exclusion also its candidate: pending,
    age in sweeps since its peak, saturated score)."""

    def __init__(self, config: SystemConfig):
        det = config.detector
        exclusion = {
            "pending": unsigned(1),
            "age": unsigned(det.exclusion_age_bits),
            "candidate": unsigned(EXCLUSION_SCORE_BITS),
        } if det.exclusion else {}
        echo = {
            "echo_score": unsigned(EXCLUSION_SCORE_BITS),  # the last event's, saturated
            "echo_age": unsigned(det.echo_age_bits),       # samples since it, saturating
        } if det.echo else {}
        super().__init__({
            **exclusion,
            **echo,
            "noise": unsigned(NOISE_BITS),          # median tracker of |y|, Q.6
            "phase": unsigned(2),                   # ARMED, SEARCH, DEAD
            "count": unsigned(COUNTER_BITS),        # samples since crossing / emission
            "peak_value": signed(16),               # y at the extremum so far
            "peak_score": signed(18),               # the extremum's score
            "peak_count": range(config.detector.align_samples),
            "previous": signed(16),                 # y[n-1], for the NEO
            "before": signed(16),                   # y[n-2]
        })


class ExclusionRecord(data.StructLayout):
    """What a channel's neighbours see of it: its latest candidate's saturated score and
    the window code of its age (:meth:`DetectorConfig.exclusion_code`)."""

    def __init__(self, config: SystemConfig):
        super().__init__({"score": unsigned(EXCLUSION_SCORE_BITS),
                          "code": unsigned(config.detector.exclusion_code_bits)})


class _Neighbour(data.StructLayout):
    def __init__(self, config: SystemConfig):
        super().__init__({"valid": unsigned(1), "channel": unsigned(config.channel_bits)})


class _Pending(data.StructLayout):
    def __init__(self, config: SystemConfig):
        super().__init__({
            "sweep": 32, "channel": config.channel_bits, "peak": 16, "pre": 8, "post": 8,
        })


class Detector(wiring.Component):
    """Threshold detection with peak alignment, dead time and snippets; one sample per clock.

    Per sample of channel c (the arithmetic is in :mod:`spikeforge.firmware.detection`,
    modelled bit-exactly by :func:`spikeforge.sim.models.detector.detect`): the threshold
    ``k_c * median|y| / 0.6745`` from the channel's median tracker (updated after use), a
    crossing by the polarity's score arms a search over ``align_samples`` samples for the
    extremum; ``align_samples - 1`` samples after the crossing the event is emitted
    (timestamp = sweep of the extremum), then the channel ignores crossings for
    ``dead_samples`` samples.

    Emitted events are admitted to a queue only if the queue has room and the output buffer can
    take all of the event's words (reserved at admission); otherwise the event is dropped whole
    and ``events_dropped`` counts it. A copier turns each queued event into ``5 + pre + 1 +
    post`` words (see :data:`EVENT_HEADER_WORDS`), reading the snippet from the channel's ring
    buffer once the sweep after its last sample has started (events are copied in order, so a
    later event may wait for an earlier one's post samples); the ring is sized
    (``DetectorConfig.ring_depth``) so a snippet is always copied before it is overwritten.

    Ports
    -----
    i : stream of :class:`SampleLayout` in; ``ready`` is always high (an ADC cannot wait).
    o : stream of :class:`EventWordLayout` out.
    polarity, dead_samples, snippet_pre, snippet_post, neo : in (registers; pre/post are
        clamped to the build's maxima; neo selects detection on the nonlinear energy
        operator, see :class:`~spikeforge.firmware.detection.DetectorConfig`).
    k_channel, k_value, k_write : in — write k (sixteenths) of one channel.
    events_emitted, events_dropped : unsigned(32), out.

    Pipeline: stage 0 reads the channel's state and k; stage 1 registers them (and writes the
    sample to the ring); stage 2 computes and registers the products (``k * noise`` and the
    NEO's) and the score; stage 3 compares, updates and writes the state back (the methods
    ``_read``, ``_fetch``, ``_products`` and ``_decide``; then ``_admit`` and ``_copy``). The
    state read of cycle t sees a write of cycle t (transparent), so two samples of the same
    channel must be at least three cycles apart (``MIN_SAME_CHANNEL_SPACING``; the acquisition
    schedule spaces them a sweep apart, ``cycles_per_sample`` cycles; the constructor refuses
    fewer than 3).

    Snippet ring storage (``ring_storage``): ``"block"`` (block RAM, dual-ported: the copier
    reads one word per cycle); ``"spram"`` (the iCE40UP's single-port SB_SPRAM256KA, banked
    by the top address bits, up to four: the sample write wins the port, and the copier reads
    snippet words only in cycles without a sample, so copying is slower and the ring deeper,
    :meth:`ring_depth_for`); ``"auto"`` (default): SPRAM on an iCE40UP from 32 Kbit of ring
    on, block RAM otherwise and without a platform. ``spram_factory`` replaces the primitive
    (e.g. :func:`spikeforge.sim.models.spram.spram_model` for simulation).

    Latency: a sample transferred in cycle t is decided in cycle t+3 (admission); the event's
    first word can leave 3 cycles after the copier takes it, which is no earlier than the
    cycle after the sweep following ``peak + post`` entered (so ``post + 1`` sample periods
    after the peak at least).

    Per-channel state: :class:`DetectorState` (noise 22, phase 2, count 16, peak value 16,
    peak score 18, peak index, two previous samples for the NEO 32) + k (8 bits) + a ring
    of ``ring_depth`` x 16 bits.

    Local exclusion (``DetectorConfig.exclusion``, build-time; without it the core is the
    one above, unchanged): an event becomes its channel's *candidate* (state: pending, age,
    score saturated to 14 bits) and is admitted only ``D = exclusion_delay`` sweeps after
    its peak, unless a neighbour's candidate within +-``exclusion_samples`` beats it (larger
    score, or equal on a lower channel). Each channel writes its *record* (score, window
    code of the age: :class:`ExclusionRecord`) every sweep into ``K`` copies of a record
    memory (``K`` = the most neighbours of a channel in the table, one read port each); the
    neighbour table (``K`` x (valid, channel) per channel) is a ROM. Stage 0 reads the
    table, stage 2 the neighbours' records (transparent: a lower channel's record of this
    sweep, a higher one's of the last), stage 4 compares and admits, so the admission comes
    4 cycles after the sample (:attr:`latency`). A channel re-arms only once its candidate
    is decided. Modelled by :func:`spikeforge.sim.models.detector.detect`.

    Echo suppression (``DetectorConfig.echo_ratio`` > 0, build-time; without it the core is
    unchanged): the state also holds the channel's last event's saturated score and the
    samples since it (14 + ``echo_samples.bit_length()`` bits). A search that ends within
    ``echo_samples`` samples of that event with a score at most 1/``echo_ratio`` of it is an
    echo (a large spike's late trough): no event, no candidate, not counted; the channel
    goes on as after an event (dead time). The comparison is in stage 3 (:meth:`_echo`).

    Held noise tracker (``DetectorConfig.noise_hold``, build-time): the tracker keeps its
    value unless the channel is armed and the score is not above the threshold (stage 3).
    """

    #: Cycles from a sample to its admission decision without exclusion (:attr:`latency`).
    LATENCY = 3
    MIN_SAME_CHANNEL_SPACING = DETECTOR_SAME_CHANNEL_SPACING

    def __init__(self, config: SystemConfig, *, ring_storage: str = "auto",
                 spram_factory: SpramFactory | None = None):
        if ring_storage not in ("auto", "block", "spram"):
            raise ValueError(
                f"ring_storage must be 'auto', 'block' or 'spram', not {ring_storage!r}")
        if config.cycles_per_sample < DETECTOR_SAME_CHANNEL_SPACING:
            raise ConfigError(
                f"the detector needs samples of one channel at least "
                f"{DETECTOR_SAME_CHANNEL_SPACING} cycles apart, not {config.cycles_per_sample} "
                f"(cycles per sample period); lower the sample rate or raise the clock")
        self._config = config
        self.ring_storage = ring_storage
        self._spram_factory = spram_factory
        super().__init__({
            "i": In(stream.Signature(SampleLayout(config))),
            "o": Out(stream.Signature(EventWordLayout())),
            "polarity": In(2, init=config.detector.polarity_code),
            "dead_samples": In(COUNTER_BITS, init=config.detector.dead_samples),
            "snippet_pre": In(8, init=config.detector.snippet_pre),
            "snippet_post": In(8, init=config.detector.snippet_post),
            "neo": In(1, init=int(config.detector.neo)),
            "k_channel": In(config.channel_bits),
            "k_value": In(K_BITS),
            "k_write": In(1),
            "events_emitted": Out(32),
            "events_dropped": Out(32),
        })

    @property
    def latency(self) -> int:
        """Cycles from a sample's transfer to the admission decision it causes (3; 4 with
        local exclusion, whose comparison is a pipeline stage of its own)."""
        return self.LATENCY + int(self._config.detector.exclusion)

    @property
    def ring_depth(self) -> int:
        """Samples per channel of the snippet ring in block RAM."""
        return self.ring_depth_for("block")

    def ring_depth_for(self, storage: str) -> int:
        """Samples per channel of the snippet ring in ``storage`` ("block" or "spram": the
        single-ported SPRAM is read only in the ``cycles_per_sample - channels`` cycles of a
        sweep without a sample, so the copier is slower and the ring deeper)."""
        config = self._config
        free = None if storage == "block" else config.cycles_per_sample - config.channels
        return config.detector.ring_depth(config.cycles_per_sample, free)

    def resolve_ring_storage(self, platform) -> str:
        """Where the ring goes when elaborated for ``platform``: SPRAM on an iCE40UP when it
        is at least :data:`SPRAM_AUTO_BITS` (``"auto"``), else block RAM."""
        if self.ring_storage != "auto":
            return self.ring_storage
        device = str(getattr(platform, "device", "") or "")
        bits = 16 * (self.ring_depth_for("block") << self._config.channel_bits)
        return "spram" if device.startswith("iCE40UP") and bits >= SPRAM_AUTO_BITS else "block"

    def elaborate(self, platform):
        config = self._config
        det = config.detector
        m = Module()
        storage = self.resolve_ring_storage(platform)
        ring_bits = (self.ring_depth_for(storage) - 1).bit_length()

        layout = DetectorState(config)
        init_state = {"noise": det.noise_init_lsb << NOISE_FRAC_BITS}
        if det.echo:
            init_state["echo_age"] = det.echo_samples
        m.submodules.state = state_mem = memory.Memory(
            shape=layout, depth=config.channels, init=[init_state] * config.channels)
        state_wr = state_mem.write_port()
        state_rd = state_mem.read_port(transparent_for=(state_wr,))
        m.submodules.k = k_mem = memory.Memory(
            shape=K_BITS, depth=config.channels, init=[det.threshold_k16] * config.channels)
        k_wr = k_mem.write_port()
        k_rd = k_mem.read_port(transparent_for=(k_wr,))
        m.d.comb += [
            k_wr.addr.eq(self.k_channel), k_wr.data.eq(self.k_value), k_wr.en.eq(self.k_write),
        ]
        ring = self._ring(m, storage, ring_bits)

        sweep, s1 = self._read(m, state_rd, k_rd)
        neighbours = self._neighbour_table(m) if det.exclusion else None
        s2 = self._fetch(m, s1, state_rd.data, k_rd.data, ring, ring_bits, neighbours)
        s3 = self._products(m, s2)
        new, emit, next_count = self._decide(m, s3, state_wr)
        if det.exclusion:
            event = self._exclude(m, s2, s3, new, emit, next_count)
        else:
            event = SimpleNamespace(
                emitted=s3.valid & emit,
                sweep=s3.sweep - (next_count - new.peak_count) - self.neo,
                channel=s3.channel, peak=new.peak_value)
        pre = Signal(8)
        post = Signal(8)
        m.d.comb += [
            pre.eq(Mux(self.snippet_pre > det.max_snippet_pre, det.max_snippet_pre,
                       self.snippet_pre)),
            post.eq(Mux(self.snippet_post > det.max_snippet_post, det.max_snippet_post,
                        self.snippet_post)),
        ]
        queue, buffer = self._admit(m, event, pre, post)
        self._copy(m, queue, buffer, sweep, ring, ring_bits)
        return m

    def _ring(self, m: Module, storage: str, ring_bits: int) -> SimpleNamespace:
        """The snippet ring (``ring_bits`` address bits per channel): one write port for the
        samples, one read port for the copier (``busy`` while a write holds the SPRAM)."""
        address_bits = ring_bits + self._config.channel_bits
        ring_write_addr = Signal(address_bits)
        ring_write_data = Signal(16)
        ring_write_en = Signal()
        ring_read_addr = Signal(address_bits)
        ring_read_data = Signal(16)
        if storage == "block":
            ring_busy = Const(0)
            m.submodules.ring = ring = memory.Memory(
                shape=signed(16), depth=1 << address_bits, init=[])
            ring_wr = ring.write_port()
            ring_rd = ring.read_port()
            m.d.comb += [
                ring_wr.addr.eq(ring_write_addr), ring_wr.data.eq(ring_write_data),
                ring_wr.en.eq(ring_write_en),
                ring_rd.addr.eq(ring_read_addr), ring_read_data.eq(ring_rd.data),
            ]
        else:
            # One port: the sample write wins; the copier reads in the other cycles.
            ring_busy = ring_write_en
            self._spram_ring(m, address_bits, ring_write_addr, ring_write_data,
                             ring_write_en, ring_read_addr, ring_read_data)
        return SimpleNamespace(write_addr=ring_write_addr, write_data=ring_write_data,
                               write_en=ring_write_en, read_addr=ring_read_addr,
                               read_data=ring_read_data, busy=ring_busy)

    def _read(self, m: Module, state_rd, k_rd) -> tuple[Signal, SimpleNamespace]:
        """Stage 0: count sweeps, read the channel's state and k. Returns the sweep counter
        and stage 1's registers."""
        sweep = Signal(32, init=0xFFFFFFFF)
        sample_sweep = Signal(32)
        m.d.comb += [
            self.i.ready.eq(1),
            sample_sweep.eq(Mux(self.i.payload.first, sweep + 1, sweep)),
            state_rd.addr.eq(self.i.payload.channel),
            k_rd.addr.eq(self.i.payload.channel),
        ]
        with m.If(self.i.valid & self.i.payload.first):
            m.d.sync += sweep.eq(sweep + 1)
        s1_valid = Signal()
        s1_channel = Signal(self._config.channel_bits)
        s1_value = Signal(signed(16))
        s1_sweep = Signal(32)
        m.d.sync += [
            s1_valid.eq(self.i.valid),
            s1_channel.eq(self.i.payload.channel),
            s1_value.eq(self.i.payload.value),
            s1_sweep.eq(sample_sweep),
        ]
        return sweep, SimpleNamespace(valid=s1_valid, channel=s1_channel, value=s1_value,
                                      sweep=s1_sweep)

    def _fetch(self, m: Module, s1: SimpleNamespace, state_read, k_read,
               ring: SimpleNamespace, ring_bits: int, neighbours=None) -> SimpleNamespace:
        """Stage 1: the state and k arrive from their memories and are registered as they
        are (a block RAM's output is slow: 5.8 ns of the 22 ns of 45 MHz on the ECP5). The
        ring is written here. Returns stage 2's registers."""
        s2_valid = Signal()
        s2_channel = Signal(self._config.channel_bits)
        s2_value = Signal(signed(16))
        s2_sweep = Signal(32)
        s2_state = Signal(DetectorState(self._config))
        s2_k = Signal(K_BITS)
        m.d.sync += [
            s2_valid.eq(s1.valid),
            s2_channel.eq(s1.channel),
            s2_value.eq(s1.value),
            s2_sweep.eq(s1.sweep),
            s2_state.eq(state_read),
            s2_k.eq(k_read),
        ]
        m.d.comb += [
            ring.write_addr.eq(Cat(s1.sweep[:ring_bits], s1.channel)),
            ring.write_data.eq(s1.value), ring.write_en.eq(s1.valid),
        ]
        s2_neighbours = None
        if neighbours is not None:
            s2_neighbours = Signal(neighbours.shape())
            m.d.sync += s2_neighbours.eq(neighbours)
        return SimpleNamespace(valid=s2_valid, channel=s2_channel, value=s2_value,
                               sweep=s2_sweep, state=s2_state, k=s2_k,
                               neighbours=s2_neighbours)

    def _products(self, m: Module, s2: SimpleNamespace) -> SimpleNamespace:
        """Stage 2: the products (threshold, NEO) and the score are computed and registered,
        so no path runs from the state memory through a product into the comparisons (the
        85F's critical path when detection was one stage). Returns stage 3's registers."""
        det = self._config.detector
        state1 = s2.state
        y = s2.value

        def score(value):
            magnitude = Mux(value < 0, -value, value)
            return Mux(self.polarity == 1, -value,
                       Mux(self.polarity == 2, value, magnitude)).as_signed()

        # NEO: psi[n] = y[n-1]^2 - y[n] y[n-2] belongs to sample n-1; scaled, saturated.
        psi = Signal(signed(34))
        psi_scaled = Signal(signed(34))
        signal = Signal(signed(16))
        m.d.comb += [
            psi.eq(state1.previous * state1.previous - y * state1.before),
            psi_scaled.eq(psi >> det.neo_shift),
            signal.eq(Mux(self.neo, Mux(psi_scaled > 32767, 32767,
                                        Mux(psi_scaled < -32768, -32768, psi_scaled)), y)),
        ]
        s3_valid = Signal()
        s3_channel = Signal(self._config.channel_bits)
        s3_value = Signal(signed(16))
        s3_sweep = Signal(32)
        s3_state = Signal(DetectorState(self._config))
        s3_centre = Signal(signed(16))
        s3_score = Signal(signed(18))
        s3_threshold = Signal(NOISE_BITS + K_BITS + 11)
        s3_magnitude = Signal(17 + NOISE_FRAC_BITS)
        m.d.sync += [
            s3_valid.eq(s2.valid),
            s3_channel.eq(s2.channel),
            s3_value.eq(y),
            s3_sweep.eq(s2.sweep),
            s3_state.eq(state1),
            s3_centre.eq(Mux(self.neo, state1.previous, y)),
            s3_score.eq(Mux(self.neo, signal, score(signal))),
            # k * noise by one (DSP) multiplier; the constant 1/0.6745 by shifts and adds.
            s3_threshold.eq(multiply_by_constant(state1.noise * s2.k, SIGMA_NUM)
                            >> THRESHOLD_SHIFT),
            s3_magnitude.eq(Mux(signal < 0, -signal, signal).as_unsigned() << NOISE_FRAC_BITS),
        ]
        return SimpleNamespace(valid=s3_valid, channel=s3_channel, value=s3_value,
                               sweep=s3_sweep, state=s3_state, centre=s3_centre,
                               score=s3_score, threshold=s3_threshold, magnitude=s3_magnitude)

    def _decide(self, m: Module, s3: SimpleNamespace,
                state_wr) -> tuple[Signal, Signal, Signal]:
        """Stage 3: the noise tracker, the search/dead state machine and the state
        write-back. Returns the new state, whether an event is emitted, and the count
        after this sample."""
        det = self._config.detector
        state = s3.state
        y_score = s3.score
        threshold = s3.threshold
        magnitude = s3.magnitude
        centre = s3.centre
        noise = Signal(NOISE_BITS)
        step = det.noise_step
        # With noise_hold the tracker learns only while the channel is armed and the score
        # is not above the threshold (the comparison the armed state makes anyway).
        hold = ((state.phase != ARMED) | (y_score > threshold)) if det.noise_hold else 0
        with m.If(hold):
            m.d.comb += noise.eq(state.noise)
        with m.Elif(magnitude > state.noise):
            m.d.comb += noise.eq(state.noise + step)
        with m.Elif(magnitude < state.noise):
            m.d.comb += noise.eq(Mux(state.noise >= step, state.noise - step, 0))
        with m.Else():
            m.d.comb += noise.eq(state.noise)

        next_count = Signal(COUNTER_BITS + 1)
        emit_at = Signal(COUNTER_BITS)
        m.d.comb += [
            next_count.eq(state.count + 1),
            emit_at.eq(det.align_samples - 1),
        ]
        new = Signal(DetectorState(self._config))
        ended = Signal()  # the search ends: the phase moves on
        emit = Signal()   # and it is an event (not an echo)
        m.d.comb += new.eq(state)
        m.d.comb += [new.noise.eq(noise), new.previous.eq(s3.value),
                     new.before.eq(state.previous)]
        with m.Switch(state.phase):
            with m.Case(ARMED):
                with m.If((self.polarity != 0) & (y_score > threshold)):
                    m.d.comb += [
                        new.phase.eq(SEARCH), new.count.eq(0), new.peak_value.eq(centre),
                        new.peak_score.eq(y_score), new.peak_count.eq(0),
                    ]
            with m.Case(SEARCH):
                m.d.comb += new.count.eq(next_count)
                with m.If((next_count < det.align_samples) & (y_score > state.peak_score)):
                    m.d.comb += [new.peak_value.eq(centre), new.peak_score.eq(y_score),
                                 new.peak_count.eq(next_count)]
                with m.If(next_count == emit_at):
                    # With exclusion the channel stays dead until its candidate is decided.
                    dead = DEAD if det.exclusion else Mux(self.dead_samples != 0, DEAD, ARMED)
                    m.d.comb += [ended.eq(1), new.phase.eq(dead), new.count.eq(0)]
            with m.Case(DEAD):
                m.d.comb += new.count.eq(next_count)
                rearm = next_count >= self.dead_samples
                if det.exclusion:
                    rearm &= ~state.pending | self._decided(state)
                with m.If(rearm):
                    m.d.comb += new.phase.eq(ARMED)
        if det.echo:
            self._echo(m, s3, new, ended, emit)
        else:
            m.d.comb += emit.eq(ended)
        if det.exclusion:
            self._candidate(m, state, new, emit, next_count)

        m.d.comb += [
            state_wr.addr.eq(s3.channel), state_wr.data.eq(new), state_wr.en.eq(s3.valid),
        ]
        return new, emit, next_count

    def _echo(self, m: Module, s3: SimpleNamespace, new, ended, emit) -> None:
        """Stage 3, echo suppression: an ending search is an event unless the channel's last
        event, fewer than ``echo_samples`` samples ago, scored at least ``echo_ratio`` times
        its score (both saturated). The comparison is made for both scores the event can
        have (the search's extremum so far, or this sample's if it is larger), in parallel
        with the comparison that chooses between them."""
        det = self._config.detector
        state = s3.state

        def dwarfed(score):
            return state.echo_score >= multiply_by_constant(_saturated_score(score), det.echo_ratio)

        better = s3.score > state.peak_score
        recent = state.echo_age < det.echo_samples
        echo = recent & Mux(better, dwarfed(s3.score), dwarfed(state.peak_score))
        m.d.comb += emit.eq(ended & ~echo)
        # The age as the channel's next sample sees it: samples since the event.
        with m.If(emit):
            m.d.comb += [new.echo_score.eq(_saturated_score(new.peak_score)), new.echo_age.eq(1)]
        with m.Elif(recent):
            m.d.comb += new.echo_age.eq(state.echo_age + 1)

    # -- local exclusion ----------------------------------------------------------------------

    def _neighbour_table(self, m: Module):
        """Stage 0: the channel's row of the neighbour table (a ROM: ``K`` x (valid,
        channel)), arriving in stage 1."""
        config = self._config
        table = config.detector.exclusion_table(config.channels)
        slots = max(1, config.detector.exclusion_slots(config.channels))
        row = data.ArrayLayout(_Neighbour(config), slots)
        init = [[{"valid": 1, "channel": j} for j in neighbours]
                + [{"valid": 0, "channel": 0}] * (slots - len(neighbours))
                for neighbours in table]
        m.submodules.neighbours = rom = memory.Memory(shape=row, depth=config.channels,
                                                      init=init)
        port = rom.read_port()
        m.d.comb += port.addr.eq(self.i.payload.channel)
        return port.data

    def _age(self, state):
        """The candidate's age after this sweep when not emitting (saturating)."""
        top = self._config.detector.exclusion_age_max
        return Mux(state.age >= top, top, state.age + 1)

    def _decided(self, state):
        """Whether the pending candidate is decided in this sweep (its age reaches D)."""
        return state.pending & (self._age(state) == self._config.detector.exclusion_delay)

    def _candidate(self, m: Module, state, new, emit, next_count) -> None:
        """Stage 3: an emission becomes the pending candidate (age: sweeps since its peak;
        score saturated); otherwise it ages; the decision clears pending."""
        score = new.peak_score
        with m.If(emit):
            m.d.comb += [
                new.pending.eq(1),
                new.age.eq(next_count - new.peak_count + self.neo),
                new.candidate.eq(_saturated_score(score)),
            ]
        with m.Else():
            m.d.comb += [new.age.eq(self._age(state)),
                         new.pending.eq(state.pending & ~self._decided(state))]

    def _exclude(self, m: Module, s2: SimpleNamespace, s3: SimpleNamespace, new, emit,
                 next_count) -> SimpleNamespace:
        """The record memories (written in stage 3 from the new state, read in stage 2 at
        the neighbours' addresses) and stage 4: the comparison. Returns the event to
        admit."""
        config = self._config
        det = config.detector
        w = det.exclusion_samples
        slots = det.exclusion_slots(config.channels)
        record_layout = ExclusionRecord(config)
        record = Signal(record_layout)
        low = det.exclusion_code_low
        code = Signal(signed(det.exclusion_age_bits + 2))
        m.d.comb += [
            code.eq(new.age - low + 1),
            record.score.eq(new.candidate),
            record.code.eq(Mux(code < 0, 0, Mux(code > det.exclusion_code_max,
                                                 det.exclusion_code_max, code))),
        ]
        init = {"score": 0, "code": det.exclusion_code_max}
        s4_records = []
        s4_lower = Signal(max(1, slots))
        s4_valid_slot = Signal(max(1, slots))
        s3_lower = Signal(max(1, slots))
        s3_valid_slot = Signal(max(1, slots))
        for i in range(slots):
            # One copy per neighbour slot: same writes, one read port each.
            mem = memory.Memory(shape=record_layout, depth=config.channels,
                                init=[init] * config.channels)
            m.submodules[f"records{i}"] = mem
            write = mem.write_port()
            read = mem.read_port(transparent_for=(write,))
            m.d.comb += [write.addr.eq(s3.channel), write.data.eq(record),
                         write.en.eq(s3.valid), read.addr.eq(s2.neighbours[i].channel)]
            registered = Signal(record_layout, name=f"s4_record{i}")
            m.d.sync += registered.eq(read.data)
            s4_records.append(registered)
            m.d.sync += [s3_lower[i].eq(s2.neighbours[i].channel < s2.channel),
                         s3_valid_slot[i].eq(s2.neighbours[i].valid),
                         s4_lower[i].eq(s3_lower[i]),
                         s4_valid_slot[i].eq(s3_valid_slot[i])]
        s4_decide = Signal()
        s4_sweep = Signal(32)
        s4_channel = Signal(config.channel_bits)
        s4_peak = Signal(signed(16))
        s4_score = Signal(EXCLUSION_SCORE_BITS)
        m.d.sync += [
            s4_decide.eq(s3.valid & self._decided(s3.state)),
            s4_sweep.eq(s3.sweep - det.exclusion_delay),
            s4_channel.eq(s3.channel),
            s4_peak.eq(s3.state.peak_value),
            s4_score.eq(s3.state.candidate),
        ]
        beaten = Const(0)
        for i, theirs in enumerate(s4_records):
            lower = s4_lower[i]
            in_window = Mux(lower, (theirs.code >= 2) & (theirs.code <= 2 * w + 2),
                            (theirs.code >= 1) & (theirs.code <= 2 * w + 1))
            larger = (theirs.score > s4_score) | (lower & (theirs.score == s4_score))
            beaten = beaten | (s4_valid_slot[i] & in_window & larger)
        return SimpleNamespace(emitted=s4_decide & ~beaten, sweep=s4_sweep,
                               channel=s4_channel, peak=s4_peak)

    def _admit(self, m: Module, event: SimpleNamespace, pre, post
               ) -> tuple[StreamFifo, StreamFifo]:
        """Admission: whole events or nothing. An emitted event (``event.emitted``, with its
        sweep, channel, peak) enters the queue only if the queue has room and the output
        buffer's free words (counted by reservation) take all of it. Returns the queue and
        the output buffer."""
        det = self._config.detector
        pending_layout = _Pending(self._config)
        m.submodules.queue = queue = StreamFifo(pending_layout, det.event_queue)
        m.submodules.buffer = buffer = StreamFifo(EventWordLayout(), det.event_buffer_words)
        capacity = det.event_buffer_words
        reserved = Signal(range(capacity + 1))
        words = Signal(range(det.max_event_words + 1))
        m.d.comb += words.eq(EVENT_HEADER_WORDS + 1 + pre + post)
        admit = Signal()
        emitted = event.emitted
        m.d.comb += admit.eq(emitted & queue.w.ready & (reserved + words <= capacity))
        pending = pending_layout(queue.w.payload)
        m.d.comb += [
            queue.w.valid.eq(admit),
            pending.sweep.eq(event.sweep),
            pending.channel.eq(event.channel),
            pending.peak.eq(event.peak),
            pending.pre.eq(pre),
            pending.post.eq(post),
        ]
        with m.If(emitted):
            m.d.sync += self.events_emitted.eq(self.events_emitted + 1)
            with m.If(~admit):
                m.d.sync += self.events_dropped.eq(self.events_dropped + 1)
        pop = buffer.r.valid & buffer.r.ready
        m.d.sync += reserved.eq(reserved + Mux(admit, words, 0) - pop)
        wiring.connect(m, buffer.r, wiring.flipped(self.o))
        return queue, buffer

    def _copy(self, m: Module, queue: StreamFifo, buffer: StreamFifo, sweep,
              ring: SimpleNamespace, ring_bits: int) -> None:
        """Copier: one queued event -> header words and snippet. Header words go out one per
        cycle; each snippet word is read from the ring in a cycle the ring is free (always,
        for block RAM) and written to the buffer in the next."""
        det = self._config.detector
        pending_layout = _Pending(self._config)
        current = Signal(pending_layout)
        index = Signal(range(det.max_event_words + 1))
        current_words = Signal(range(det.max_event_words + 1))
        snippet_length = Signal(range(det.max_snippet_pre + det.max_snippet_post + 2))
        read_next = Signal.like(snippet_length)
        read_valid = Signal()
        base = Signal(32)
        word = Signal(16)
        reading = Signal()
        m.d.comb += [
            base.eq(current.sweep - current.pre),
            ring.read_addr.eq(Cat((base + read_next)[:ring_bits], current.channel)),
        ]
        with m.Switch(index):
            with m.Case(0):
                m.d.comb += word.eq(Cat(current.pre, current.post))
            with m.Case(1):
                m.d.comb += word.eq(current.sweep[:16])
            with m.Case(2):
                m.d.comb += word.eq(current.sweep[16:])
            with m.Case(3):
                m.d.comb += word.eq(current.channel)
            with m.Case(4):
                m.d.comb += word.eq(current.peak)
            with m.Default():
                m.d.comb += word.eq(ring.read_data)
        out_word = EventWordLayout()(buffer.w.payload)
        m.d.comb += [out_word.data.eq(word), out_word.first.eq(index == 0)]
        m.d.sync += read_valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                head = pending_layout(queue.r.payload)
                # Wait until the sweep after the snippet's last sample has started, so all
                # of the snippet is in the ring (difference taken modulo 2**32).
                complete = ~(sweep - (head.sweep + head.post + 1))[31]
                m.d.comb += queue.r.ready.eq(complete)
                with m.If(queue.r.valid & complete):
                    m.d.sync += [
                        current.eq(queue.r.payload), index.eq(0), read_next.eq(0),
                        current_words.eq(EVENT_HEADER_WORDS + 1 + head.pre + head.post),
                        snippet_length.eq(1 + head.pre + head.post),
                    ]
                    m.next = "COPY"
            with m.State("COPY"):
                header = index < EVENT_HEADER_WORDS
                write = header | read_valid
                m.d.comb += [
                    buffer.w.valid.eq(write),
                    reading.eq((index >= EVENT_HEADER_WORDS - 1) & (read_next < snippet_length)
                               & ~ring.busy),
                ]
                with m.If(reading):
                    m.d.sync += [read_next.eq(read_next + 1), read_valid.eq(1)]
                with m.If(write):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == current_words - 1):
                        m.next = "IDLE"

    def _spram_ring(self, m: Module, address_bits: int, write_addr, write_data, write_en,
                    read_addr, read_data) -> None:
        """The ring in iCE40UP SPRAMs (16 K x 16 each, one port), banked by the top address
        bits: a cycle either writes (``write_en``) or reads ``read_addr``, whose word
        arrives in ``read_data`` in the next cycle."""
        factory = self._spram_factory or sb_spram256ka
        spram_bits = (SPRAM_DEPTH - 1).bit_length()
        banks = 1 << max(0, address_bits - spram_bits)
        if banks > ICE40UP_SPRAMS:
            raise ValueError(
                f"a snippet ring of {1 << address_bits} words needs {banks} SPRAMs; the "
                f"iCE40UP has {ICE40UP_SPRAMS}: use fewer channels, a smaller max snippet, or "
                f"ring_storage='block'")
        address = Signal(address_bits)
        m.d.comb += address.eq(Mux(write_en, write_addr, read_addr))
        bank = Signal(range(banks)) if banks > 1 else Const(0)
        read_bank = Signal.like(bank) if banks > 1 else Const(0)
        if banks > 1:
            m.d.comb += bank.eq(address[spram_bits:])
            m.d.sync += read_bank.eq(bank)
        outputs = []
        for index in range(banks):
            low = Signal(spram_bits, name=f"ring_bank{index}_address")
            m.d.comb += low.eq(address[:spram_bits])
            outputs.append(factory(m, f"ring_spram{index}", low, write_data,
                                   write_en & (bank == index)))
        selected = outputs[0]
        for index in range(1, banks):
            selected = Mux(read_bank == index, outputs[index], selected)
        m.d.comb += read_data.eq(selected)
