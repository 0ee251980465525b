"""RHD2000 front-end: SPI master, command sequencer and channel-serial sample stream."""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.rhd2000 import AUX_SLOTS, MAX_MISO_DELAY_CYCLES, channel_sources
from spikeforge.firmware.rhd_programs import CAPTURE_DEPTH, PROGRAM_DEPTH, build_image

from .layouts import SampleLayout
from .rhd_calibrator import RHDDelayCalibrator

__all__ = ["RHDFrontEnd", "capture_address"]


def capture_address(line: int, half: int, index: int) -> int:
    """Address of one-shot result ``index`` of ``line`` (half 1: B word) in the capture RAM."""
    return (line * 2 + half) * CAPTURE_DEPTH + index


class RHDFrontEnd(wiring.Component):
    """Drives up to four RHD2000 chips and streams their samples channel-serially.

    All chips share ``cs``, ``sclk`` and ``mosi``; chip l answers on ``miso[l]``. SPI mode
    0: ``mosi`` changes while ``sclk`` is low, chips sample it on rising edges. A word is
    ``cs`` low, 16 SCLK periods of ``2 * sclk_half_period_cycles`` cycles, half a period
    with SCLK low, then ``cs_high_cycles`` with CS high (``config.rhd.word_cycles``).

    At reset (``config.rhd.calibrate_on_start``) an :class:`RHDDelayCalibrator` finds each
    line's delay and chip first (``calibrated``, ``chip_ids``, ``found_delays``,
    ``good_delays``); host one-shots and the loop wait until it is done. MISO of line l is
    sampled at the found delay if ``use_found_delays``, else at ``miso_delay[4l:4l+4]``,
    cycles after the start of each bit
    (the start of its SCLK-low half), at the end of that cycle; the B word of an RHD2164
    ``sclk_half_period_cycles`` later. Results are matched to commands with the chips'
    two-command latency.

    The sequencer runs lists from a program memory (entry format:
    :mod:`spikeforge.firmware.rhd_programs`; initial contents: the boot image of
    :func:`~spikeforge.firmware.rhd_programs.build_image`):

    * a one-shot list ``oneshot_list`` (``start | length << 16``) runs, words back to back,
      whenever ``oneshot_request != oneshot_done``; ``oneshot_done`` counts up once its
      results are in the capture RAM (``capture_addr`` -> ``capture_data`` one cycle later,
      address from :func:`capture_address`, first :data:`CAPTURE_DEPTH` results);
    * while ``loop_enable``, the loop list runs one pass per sample period, starting on the
      sample clock; results of its STORE entries fill one bank of a double-buffered sample
      RAM, and the whole pass is emitted during the next sample period;
    * ``aux0..aux2`` (``start | length << 16``) are the auxiliary lists; each pass sends the
      next entry of each (wrapping), e.g. an impedance-test DAC waveform.

    Ports
    -----
    o : stream of :class:`SampleLayout`
        Sample (n, c) is valid in cycle ``n * cycles_per_sample + c + LATENCY`` exactly as
        from :class:`~spikeforge.hdl.source.TestSource`. It holds the result of the loop
        pass started at sweep n-1, or 0 if no pass ran then. ``value`` is signed: offset
        binary results are recentred; the format follows the last WRITE to register 4
        the sequencer sent.
    sweep, overruns : out
        As on the test source.
    words : out
        SPI words sent since reset.

    Per-channel state: none in logic; the sample RAM holds two banks of every (slot, line,
    half) and a ROM maps stream channels to them.
    """

    LATENCY = 2

    def __init__(self, config: SystemConfig):
        self._config = config
        rhd = config.rhd
        self._lines = rhd.lines
        super().__init__({
            "cs": Out(1, init=1),
            "sclk": Out(1),
            "mosi": Out(1),
            "miso": In(rhd.lines),
            "o": Out(stream.Signature(SampleLayout(config))),
            "sweep": Out(32),
            "overruns": Out(32),
            "words": Out(32),
            "loop_enable": In(1),
            "loop_list": In(32),
            "oneshot_list": In(32),
            "oneshot_request": In(32),
            "oneshot_done": Out(32),
            "aux0": In(32),
            "aux1": In(32),
            "aux2": In(32),
            "miso_delay": In(4 * rhd.lines),
            "use_found_delays": In(1),
            "calibrated": Out(1),
            "chip_ids": Out(8 * rhd.lines),
            "found_delays": Out(4 * rhd.lines),
            "good_delays": Out(16 * rhd.lines),
            "program_addr": In(range(PROGRAM_DEPTH)),
            "program_data": In(18),
            "program_write": In(1),
            "capture_addr": In(range(rhd.lines * 2 * CAPTURE_DEPTH)),
            "capture_data": Out(16),
        })

    def elaborate(self, platform):
        config = self._config
        rhd = config.rhd
        lines = rhd.lines
        m = Module()
        clock = self._sample_clock(m)

        image = build_image(config)
        m.submodules.program = program = memory.Memory(
            shape=unsigned(18), depth=PROGRAM_DEPTH, init=image.words)
        prog_rd = program.read_port()
        prog_wr = program.write_port()
        m.d.comb += [prog_wr.addr.eq(self.program_addr), prog_wr.data.eq(self.program_data),
                     prog_wr.en.eq(self.program_write)]
        raw_bits = self._raw_bits()
        m.submodules.samples = samples = memory.Memory(
            shape=unsigned(16), depth=2 << raw_bits, init=[])
        m.submodules.capture = capture = memory.Memory(
            shape=unsigned(16), depth=lines * 2 * CAPTURE_DEPTH, init=[])
        capture_rd = capture.read_port()
        calibrator, delays = self._calibration(m, image, capture_rd)

        sequencer = self._sequencer(m, clock, prog_rd, calibrator)
        self._sample_miso(m, sequencer, delays, samples.write_port(), capture.write_port())
        self._emit(m, clock, sequencer, samples.read_port())
        return m

    def _raw_address_bits(self) -> tuple[int, int, int]:
        """Bits of a sample-RAM address (slot, line, half), without the bank bit."""
        rhd = self._config.rhd
        slots = max(1, len({s.slot for s in channel_sources(rhd)}))
        half_bits = 1 if rhd.ddr else 0
        line_bits = (rhd.lines - 1).bit_length()
        slot_bits = (slots - 1).bit_length()
        return slot_bits, line_bits, half_bits

    def _raw_bits(self) -> int:
        return sum(self._raw_address_bits())

    def _sample_clock(self, m: Module) -> SimpleNamespace:
        """The sample clock: ``tick`` counts the cycles of a sample period, ``boundary`` is
        its first cycle, ``parity`` the LSB of the sweep in progress, ``last`` its last
        cycle; ``sweep`` counts periods."""
        config = self._config
        tick = Signal(range(config.cycles_per_sample))
        parity = Signal()        # LSB of the sweep number in progress
        boundary = Signal()
        m.d.comb += boundary.eq(tick == 0)
        last = tick == config.cycles_per_sample - 1
        with m.If(last):
            m.d.sync += [tick.eq(0), parity.eq(~parity), self.sweep.eq(self.sweep + 1)]
        with m.Else():
            m.d.sync += tick.eq(tick + 1)
        return SimpleNamespace(parity=parity, boundary=boundary, last=last)

    def _calibration(self, m: Module, image, capture_rd) -> tuple[RHDDelayCalibrator, Signal]:
        """The delay calibrator (it shares the capture RAM's read port with the host) and
        the MISO delays in use: the calibrator's trial delay while it runs, then the found
        delays or the ``miso_delay`` register. Returns the calibrator and the delays."""
        rhd = self._config.rhd
        m.submodules.calibrator = calibrator = RHDDelayCalibrator(rhd, image.lists["detect"])
        m.d.comb += [
            calibrator.start.eq(int(rhd.calibrate_on_start)),
            calibrator.fallback_delays.eq(Cat(*[Const(d, 4) for d in rhd.miso_delay_cycles])),
            calibrator.capture_data.eq(capture_rd.data),
            capture_rd.addr.eq(Mux(calibrator.active, calibrator.capture_addr,
                                   self.capture_addr)),
            self.capture_data.eq(capture_rd.data),
            self.calibrated.eq(calibrator.done),
            self.chip_ids.eq(calibrator.chip_ids),
            self.found_delays.eq(calibrator.found_delays),
            self.good_delays.eq(calibrator.good_delays),
        ]
        delays = Signal(4 * rhd.lines)
        with m.If(calibrator.active):
            m.d.comb += delays.eq(Cat(*[calibrator.delay] * rhd.lines))
        with m.Elif(self.use_found_delays & calibrator.done):
            m.d.comb += delays.eq(calibrator.found_delays)
        with m.Else():
            m.d.comb += delays.eq(self.miso_delay)
        return calibrator, delays

    def _sequencer(self, m: Module, clock: SimpleNamespace, prog_rd,
                   calibrator: RHDDelayCalibrator) -> SimpleNamespace:
        """The sequencer and SPI word engine: runs the calibrator's, one-shot and loop lists
        word by word. Returns what the MISO sampler and the emitter need: ``bit_start``,
        ``last_bit``, the command tags of the last three words, ``ran_prev`` and
        ``twos_complement``."""
        config = self._config
        rhd = config.rhd
        half_period = rhd.sclk_half_period_cycles
        pc = Signal(range(PROGRAM_DEPTH))
        remaining = Signal(range(PROGRAM_DEPTH + 1))
        in_loop = Signal()
        for_calibrator = Signal()
        list_index = Signal(range(PROGRAM_DEPTH))
        store_slot = Signal(range(PROGRAM_DEPTH))
        loop_bank = Signal()
        ran_this = Signal()      # a loop pass started in this sweep
        ran_prev = Signal()      # ... in the previous sweep (its results are emitted now)
        with m.If(clock.last):
            m.d.sync += [ran_prev.eq(ran_this), ran_this.eq(0)]

        aux_ports = [self.aux0, self.aux1, self.aux2]
        assert len(aux_ports) == AUX_SLOTS
        aux_index = [Signal(range(PROGRAM_DEPTH), name=f"aux{j}_index") for j in range(AUX_SLOTS)]
        aux_address = Array(
            (port[:16] + index)[:len(pc)] for port, index in zip(aux_ports, aux_index))

        command = Signal(16)
        store = Signal()
        is_aux = Signal()
        drain = MAX_MISO_DELAY_CYCLES + half_period + 4 * rhd.lines + 4
        count = Signal(range(max(rhd.cs_high_cycles, half_period, drain) + 1))
        bit = Signal(range(16))
        high = Signal()
        twos_complement = Signal()

        tags = [Signal(_tag_width(len(pc)), name=f"tag{i}") for i in range(3)]
        new_tag = Signal.like(tags[0])
        m.d.comb += new_tag.eq(Cat(Const(1, 1), in_loop, store, loop_bank,
                                   Mux(in_loop, store_slot, list_index)))

        bit_start = Signal()
        last_bit = Signal()
        m.d.comb += prog_rd.addr.eq(pc)

        with m.FSM(name="sequencer"):
            with m.State("IDLE"):
                with m.If(~self.loop_enable):
                    m.d.sync += [index.eq(0) for index in aux_index]
                with m.If(calibrator.active):
                    with m.If(calibrator.run):
                        m.d.sync += [pc.eq(calibrator.list[:16]), list_index.eq(0),
                                     remaining.eq(calibrator.list[16:]), in_loop.eq(0),
                                     for_calibrator.eq(1), count.eq(0)]
                        m.next = "CS_HIGH"
                with m.Elif(self.oneshot_request != self.oneshot_done):
                    m.d.sync += [pc.eq(self.oneshot_list[:16]), list_index.eq(0),
                                 for_calibrator.eq(0),
                                 remaining.eq(self.oneshot_list[16:]), in_loop.eq(0),
                                 count.eq(0)]
                    with m.If(self.oneshot_list[16:] == 0):
                        m.d.sync += self.oneshot_done.eq(self.oneshot_request)
                    with m.Else():
                        m.next = "CS_HIGH"
                with m.Elif(clock.boundary & self.loop_enable & (self.loop_list[16:] != 0)):
                    m.d.sync += [pc.eq(self.loop_list[:16]), remaining.eq(self.loop_list[16:]),
                                 in_loop.eq(1), store_slot.eq(0), loop_bank.eq(clock.parity),
                                 ran_this.eq(1), count.eq(0)]
                    m.next = "CS_HIGH"

            with m.State("CS_HIGH"):
                # Fetch the entry (and, for an AUX entry, the auxiliary list's command).
                m.d.sync += count.eq(count + 1)
                with m.If(count == 1):
                    entry = prog_rd.data
                    m.d.sync += [command.eq(entry[:16]), store.eq(entry[16]),
                                 is_aux.eq(entry[17])]
                    with m.If(entry[17]):
                        m.d.comb += prog_rd.addr.eq(aux_address[entry[:2]])
                with m.If((count == 2) & is_aux):
                    m.d.sync += [command.eq(prog_rd.data[:16]), store.eq(0)]
                with m.If(count == rhd.cs_high_cycles - 1):
                    m.d.sync += [count.eq(0), bit.eq(0), high.eq(0),
                                 tags[0].eq(new_tag), tags[1].eq(tags[0]), tags[2].eq(tags[1]),
                                 self.words.eq(self.words + 1)]
                    with m.If(command[8:16] == 0x84):   # WRITE(4, ...): output format
                        m.d.sync += twos_complement.eq(command[6])
                    m.next = "BITS"

            with m.State("BITS"):
                m.d.comb += [self.cs.eq(0), self.sclk.eq(high), self.mosi.eq(command[15])]
                m.d.comb += [bit_start.eq(~high & (count == 0)), last_bit.eq(bit == 15)]
                m.d.sync += count.eq(count + 1)
                with m.If(count == half_period - 1):
                    m.d.sync += [count.eq(0), high.eq(~high)]
                    with m.If(high):
                        m.d.sync += [bit.eq(bit + 1), command.eq(command << 1)]
                        with m.If(bit == 15):
                            m.next = "TAIL"

            with m.State("TAIL"):
                m.d.comb += self.cs.eq(0)
                m.d.sync += count.eq(count + 1)
                with m.If(count == half_period - 1):
                    m.d.sync += [count.eq(0), pc.eq(pc + 1), remaining.eq(remaining - 1),
                                 list_index.eq(list_index + 1),
                                 store_slot.eq(store_slot + store)]
                    with m.If(remaining == 1):
                        with m.If(in_loop):
                            for port, index in zip(aux_ports, aux_index):
                                m.d.sync += index.eq(Mux(index + 1 >= port[16:], 0, index + 1))
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "DRAIN"
                    with m.Else():
                        m.next = "CS_HIGH"

            with m.State("DRAIN"):
                # Let the last results reach the capture RAM before reporting the list done.
                m.d.sync += count.eq(count + 1)
                with m.If(count == drain):
                    m.d.sync += count.eq(0)
                    with m.If(for_calibrator):
                        m.d.comb += calibrator.ran.eq(1)
                    with m.Else():
                        m.d.sync += self.oneshot_done.eq(self.oneshot_done + 1)
                    m.next = "IDLE"
        return SimpleNamespace(bit_start=bit_start, last_bit=last_bit, tags=tags,
                               index_bits=len(pc), ran_prev=ran_prev,
                               twos_complement=twos_complement)

    def _sample_miso(self, m: Module, sequencer: SimpleNamespace, delays, sample_wr,
                     capture_wr) -> None:
        """MISO sampling: each line (and half, DDR) shifted in at its delay after each bit's
        start and held after the last bit; the held words then written one per cycle to the
        sample RAM (loop STORE entries) or the capture RAM (one-shot results)."""
        rhd = self._config.rhd
        halves = 2 if rhd.ddr else 1
        half_period = rhd.sclk_half_period_cycles
        _, line_bits, half_bits = self._raw_address_bits()
        raw_bits = self._raw_bits()
        bit_start, last_bit = sequencer.bit_start, sequencer.last_bit
        depth = MAX_MISO_DELAY_CYCLES + half_period + 2
        start_chain = Signal(depth)
        last_chain = Signal(depth)
        m.d.sync += [start_chain.eq(Cat(bit_start, start_chain[:-1])),
                     last_chain.eq(Cat(bit_start & last_bit, last_chain[:-1]))]
        start_taps = Cat(bit_start, start_chain)
        last_taps = Cat(bit_start & last_bit, last_chain)

        holds = []
        for line in range(rhd.lines):
            delay = delays[4 * line:4 * line + 4]
            for half in range(halves):
                tap = delay + half * half_period
                shift = Signal(16, name=f"shift{line}_{half}")
                hold = Signal(16, name=f"hold{line}_{half}")
                sampled = Cat(self.miso[line], shift[:15])
                with m.If(start_taps.bit_select(tap, 1)):
                    m.d.sync += shift.eq(sampled)
                with m.If(last_taps.bit_select(tap, 1)):
                    m.d.sync += hold.eq(sampled)
                holds.append(hold)

        # The result in the words just sampled belongs to the command two words earlier.
        tags = sequencer.tags
        done_tag = Signal.like(tags[0])
        with m.If(bit_start & last_bit):
            m.d.sync += done_tag.eq(tags[2])
        done = last_taps[-1]
        writing = Signal()
        write_index = Signal(range(len(holds)))
        write_tag = Signal.like(tags[0])
        with m.If(done & _tag_fields(done_tag, sequencer.index_bits)["valid"]):
            m.d.sync += [writing.eq(1), write_index.eq(0), write_tag.eq(done_tag)]
        with m.Elif(writing):
            m.d.sync += write_index.eq(write_index + 1)
            with m.If(write_index == len(holds) - 1):
                m.d.sync += writing.eq(0)

        fields = _tag_fields(write_tag, sequencer.index_bits)
        hold_data = Array(holds)[write_index]
        if halves == 2:
            line_of, half_of = write_index >> 1, write_index[0]
        else:
            line_of, half_of = write_index, Const(0, 1)
        raw = (fields["index"] << (line_bits + half_bits)) | (line_of << half_bits) | half_of
        m.d.comb += [
            sample_wr.addr.eq(Cat(raw[:raw_bits], fields["bank"])),
            sample_wr.data.eq(hold_data),
            sample_wr.en.eq(writing & fields["loop"] & fields["store"]),
            capture_wr.addr.eq(((line_of * 2 + half_of) * CAPTURE_DEPTH)
                               + fields["index"][:6]),
            capture_wr.data.eq(hold_data),
            capture_wr.en.eq(writing & ~fields["loop"] & (fields["index"] < CAPTURE_DEPTH)),
        ]

    def _emit(self, m: Module, clock: SimpleNamespace, sequencer: SimpleNamespace,
              sample_rd) -> None:
        """Emission: the previous pass, channel by channel, on the sample clock (a ROM maps
        stream channels to sample-RAM addresses)."""
        config = self._config
        slot_bits, line_bits, half_bits = self._raw_address_bits()
        raw_bits = self._raw_bits()

        def raw_address(slot, line, half):
            return (slot << (line_bits + half_bits)) | (line << half_bits) | half

        m.submodules.channel_map = channel_map = memory.Memory(
            shape=unsigned(max(1, raw_bits)), depth=config.channels,
            init=[raw_address(s.slot, s.line, s.half) for s in channel_sources(config.rhd)])
        map_rd = channel_map.read_port(domain="comb")
        issuing = Signal()
        channel = Signal(range(config.channels))
        issue = Signal()
        m.d.comb += issue.eq(clock.boundary | issuing)
        with m.If(issue):
            with m.If(channel == config.channels - 1):
                m.d.sync += [channel.eq(0), issuing.eq(0)]
            with m.Else():
                m.d.sync += [channel.eq(channel + 1), issuing.eq(1)]
        m.d.comb += [map_rd.addr.eq(channel),
                     sample_rd.addr.eq(Cat(map_rd.data[:raw_bits], ~clock.parity))]

        b_valid = Signal()
        b_channel = Signal.like(channel)
        b_has_data = Signal()
        m.d.sync += [b_valid.eq(issue), b_channel.eq(channel), b_has_data.eq(sequencer.ran_prev)]
        value = Signal(16)
        m.d.comb += value.eq(Mux(b_has_data, sample_rd.data ^ Mux(sequencer.twos_complement,
                                                                  0, 0x8000), 0))
        with m.If(~self.o.valid | self.o.ready):
            m.d.sync += [
                self.o.valid.eq(b_valid),
                self.o.payload.channel.eq(b_channel),
                self.o.payload.value.eq(value.as_signed()),
                self.o.payload.first.eq(b_channel == 0),
            ]
        with m.Elif(b_valid):
            m.d.sync += self.overruns.eq(self.overruns + 1)


#: A command's tag, travelling with it through the chips' two-word latency.
_TAG_FIELDS = (("valid", 1), ("loop", 1), ("store", 1), ("bank", 1))


def _tag_width(index_bits: int) -> int:
    return sum(width for _, width in _TAG_FIELDS) + index_bits


def _tag_fields(tag, index_bits: int) -> dict:
    """The fields of a tag: valid, loop, store, bank, and the result's index (its list
    position, or its store slot in a loop pass)."""
    out, at = {}, 0
    for name, width in (*_TAG_FIELDS, ("index", index_bits)):
        out[name] = tag[at:at + width]
        at += width
    return out
