"""Start-up MISO delay calibration and chip detection for the RHD2000 front-end."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.firmware.rhd2000 import (
    CHIPS,
    MAX_MISO_DELAY_CYCLES,
    MISO_MARKER_A,
    MISO_MARKER_B,
    ROM_COMPANY,
    RHDConfig,
)
from spikeforge.firmware.rhd_programs import CAPTURE_DEPTH

__all__ = ["RHDDelayCalibrator"]

#: Capture entries checked per line: the ten ROM reads of ``detection_list`` (A words) and
#: the B word of register 59.
_CHECKS = 11
_DELAYS = MAX_MISO_DELAY_CYCLES + 1


class RHDDelayCalibrator(wiring.Component):
    """Finds each line's MISO sampling delay and chip, as :func:`~spikeforge.firmware
    .rhd_programs.choose_delay` and :func:`~spikeforge.firmware.rhd_programs.identify_chip`
    do on the host.

    From reset (``start`` high), for every delay 0..15 it sets ``delay`` on all lines, asks
    the sequencer to run the detection list (``run`` until ``ran`` pulses), and reads the
    results from the capture RAM (``capture_addr`` -> ``capture_data`` one cycle later). A
    delay is good for a line when the results read 'INTAN', upper bytes 0, a known chip ID
    with its amplifier count and polarity, and the A/B markers 53/58 of an RHD2164 (0 on the
    others). Then, per line, ``found_delays`` is the middle of the longest run of good
    delays (``fallback_delays`` if there is none), ``chip_ids`` the ID read (0: none found),
    ``good_delays`` the 16-bit map of good delays; ``done`` goes high.
    """

    def __init__(self, rhd: RHDConfig, detect_list: tuple[int, int]):
        self._rhd = rhd
        self._detect = detect_list
        lines = rhd.lines
        super().__init__({
            "start": In(1),
            "run": Out(1),
            "list": Out(32),
            "ran": In(1),
            "capture_addr": Out(range(lines * 2 * CAPTURE_DEPTH)),
            "capture_data": In(16),
            "delay": Out(4),
            "active": Out(1),
            "done": Out(1),
            "fallback_delays": In(4 * lines),
            "found_delays": Out(4 * lines),
            "chip_ids": Out(8 * lines),
            "good_delays": Out(16 * lines),
        })

    def elaborate(self, platform):
        lines = self._rhd.lines
        start, length = self._detect
        m = Module()
        m.d.comb += self.list.eq(start | length << 16)

        line = Signal(range(max(2, lines)))
        item = Signal(range(max(_CHECKS, _DELAYS) + 1))
        ok = Signal()
        words = [Signal(8, name=f"word{i}") for i in (5, 7, 8, 9)]
        marker_b = Signal(8)

        # Expected values, checked one capture word per cycle.
        data = self.capture_data
        checked = item - 1            # the word whose data is on capture_data now
        low_ok = Signal()
        with m.Switch(checked):
            for i, letter in enumerate(ROM_COMPANY):
                with m.Case(i):
                    m.d.comb += low_ok.eq(data == letter)
            with m.Default():
                m.d.comb += low_ok.eq(data[8:] == 0)

        known = Signal()
        a5, a7, a8, a9 = words
        for facts in CHIPS.values():
            marker_ok = ((a5 == MISO_MARKER_A) & (marker_b == MISO_MARKER_B)) \
                if facts.ddr_miso else (a5 == 0)
            with m.If((a9 == facts.kind) & (a8 == facts.amplifiers)
                      & (a7 == int(facts.unipolar)) & marker_ok):
                m.d.comb += known.eq(1)

        runs = []
        for index in range(lines):
            run = (Signal(5, name=f"run_start{index}"), Signal(name=f"in_run{index}"),
                   Signal(5, name=f"best_start{index}"), Signal(5, name=f"best_length{index}"))
            runs.append(run)
            _, _, best_start, best_length = run
            chosen = self.found_delays[4 * index:4 * index + 4]
            fallback = self.fallback_delays[4 * index:4 * index + 4]
            m.d.comb += chosen.eq(Mux(best_length == 0, fallback,
                                      best_start + (best_length >> 1)))

        with m.FSM(name="calibrator"):
            with m.State("WAIT"):
                with m.If(self.start):
                    m.d.sync += [self.active.eq(1), self.delay.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.run.eq(1)
                with m.If(self.ran):
                    m.d.sync += [line.eq(0), item.eq(0), ok.eq(1)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.capture_addr.eq(Mux(
                    item == _CHECKS - 1,
                    (line * 2 + 1) * CAPTURE_DEPTH + 5,
                    line * 2 * CAPTURE_DEPTH + item))
                m.d.sync += item.eq(item + 1)
                with m.If(item != 0):
                    with m.If(~low_ok):
                        m.d.sync += ok.eq(0)
                    for index, word in zip((5, 7, 8, 9), words):
                        with m.If(checked == index):
                            m.d.sync += word.eq(data[:8])
                    with m.If(checked == _CHECKS - 1):
                        m.d.sync += marker_b.eq(data[:8])
                with m.If(item == _CHECKS):
                    m.next = "JUDGE"
            with m.State("JUDGE"):
                good = ok & known
                for index in range(lines):
                    with m.If(line == index):
                        field = self.good_delays[16 * index:16 * index + 16]
                        m.d.sync += field.bit_select(self.delay, 1).eq(good)
                        with m.If(good):
                            m.d.sync += self.chip_ids[8 * index:8 * index + 8].eq(a9)
                m.d.sync += [item.eq(0), ok.eq(1)]
                with m.If(line == lines - 1):
                    m.d.sync += self.delay.eq(self.delay + 1)
                    with m.If(self.delay == _DELAYS - 1):
                        m.d.sync += item.eq(0)
                        m.next = "CHOOSE"
                    with m.Else():
                        m.next = "RUN"
                with m.Else():
                    m.d.sync += line.eq(line + 1)
                    m.next = "CHECK"
            with m.State("CHOOSE"):
                # Longest run of good delays per line, scanning delay = item (16: sentinel).
                for index, (run_start, in_run, best_start, best_length) in enumerate(runs):
                    good_map = Cat(self.good_delays[16 * index:16 * index + 16], Const(0, 1))
                    bit = good_map.bit_select(item, 1)
                    with m.If(bit & ~in_run):
                        m.d.sync += [in_run.eq(1), run_start.eq(item)]
                    with m.If(~bit & in_run):
                        m.d.sync += in_run.eq(0)
                        with m.If(item - run_start > best_length):
                            m.d.sync += [best_start.eq(run_start),
                                         best_length.eq(item - run_start)]
                m.d.sync += item.eq(item + 1)
                with m.If(item == _DELAYS):
                    m.d.sync += [self.active.eq(0), self.done.eq(1)]
                    m.next = "DONE"
            with m.State("DONE"):
                pass
        return m
