"""RHD2000 front-end bench: the gateware against behavioural chip models.

Proves, for one set of chips and cable delays:

* detection and cable-delay calibration: at start-up the gateware's calibrator, and then
  the host side through the one-shot/capture interface, run the detection list at every
  MISO sampling delay; exactly the delays inside the cable's window read each chip's ROM
  ('INTAN', A/B marker, ID, amplifier count), both choose the window's middle and find
  every chip's type; streaming then uses the delays the gateware found;
* set-up: every register write of the set-up list lands in every chip, the read-back
  results come back in the capture RAM, CALIBRATE is followed by its nine dummies;
* streaming: with the chosen delays, every sample out of the front-end equals the sample
  fed to the chip model, in channel order, in exactly the cycle the test source would emit
  it, and every loop pass starts exactly one sample period after the previous; under a
  consumer that stalls at random, exactly the samples the test source's output model says
  are lost are lost, and ``overruns`` counts them;
* auxiliary lists: an impedance-test set-up selects the channel, and the DAC waveform list
  written into program memory reaches the chips one entry per pass, wrapping.
"""

import itertools
import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.rhd2000 import MAX_MISO_DELAY_CYCLES, ChipKind
from spikeforge.firmware.rhd_programs import (
    PROGRAM_DEPTH,
    RegisterTargets,
    build_image,
    choose_delay,
    detection_list,
    identify_chip,
    impedance_dac_list,
    impedance_setup_list,
    register_values,
)
from spikeforge.hdl.rhd2000 import RHDFrontEnd, capture_address
from spikeforge.sim.chips.rhd2000 import RHD2000Bus, RHD2000Chip
from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, StreamSink
from spikeforge.sim.models.rhd2000 import frontend_samples, random_recordings
from spikeforge.sim.models.source import source_output
from spikeforge.sim.runner import bench_parameters, report


class FrontEndBench(Bench):
    """The front-end with chips on its pins and a host-like control interface."""

    def __init__(self, dut, config: SystemConfig, cable_delays: list[int], samples: int,
                 seed: int):
        super().__init__(dut)
        self.config = config
        self.image = build_image(config)
        self.recordings = random_recordings(config, samples, seed)
        self.chips = [RHD2000Chip(kind, rec) for kind, rec in zip(config.rhd.chips,
                                                                  self.recordings)]
        self.bus = RHD2000Bus(dut, self.chips, cable_delays, CLOCK_PERIOD_NS)
        dut.loop_enable.value = 0
        dut.oneshot_request.value = 0
        dut.program_write.value = 0
        dut.program_addr.value = 0
        dut.program_data.value = 0
        dut.capture_addr.value = 0
        dut.oneshot_list.value = 0
        dut.loop_list.value = 0
        dut.miso_delay.value = 0
        dut.use_found_delays.value = 0
        dut.o__ready.value = 1
        for slot in range(3):
            start, length = self.image.aux(slot)
            getattr(dut, f"aux{slot}").value = start | length << 16
        self.requests = 0

    async def set_delays(self, delays: list[int]) -> None:
        await FallingEdge(self.dut.clk)
        self.dut.miso_delay.value = sum(d << (4 * line) for line, d in enumerate(delays))

    async def run_oneshot(self, start: int, length: int) -> None:
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.oneshot_list.value = start | length << 16
        self.requests += 1
        dut.oneshot_request.value = self.requests
        while True:
            await FallingEdge(dut.clk)
            if int(dut.oneshot_done.value) == self.requests:
                return

    async def capture(self, line: int, half: int, count: int) -> list[int]:
        dut = self.dut
        out = []
        for index in range(count):
            await FallingEdge(dut.clk)
            dut.capture_addr.value = capture_address(line, half, index)
            await FallingEdge(dut.clk)
            await ReadOnly()
            out.append(int(dut.capture_data.value))
        return out

    async def write_program(self, address: int, entries: list[int]) -> None:
        dut = self.dut
        for offset, entry in enumerate(entries):
            await FallingEdge(dut.clk)
            dut.program_addr.value = address + offset
            dut.program_data.value = entry
            dut.program_write.value = 1
        await FallingEdge(dut.clk)
        dut.program_write.value = 0


async def calibrate_delays(tb: FrontEndBench) -> tuple[list[int], list[list[bool]]]:
    """What the host (or start-up firmware) does: the detection list at every delay."""
    config = tb.config
    start, length = tb.image.lists["detect"]
    count = len(detection_list()) - 2
    good = [[] for _ in range(config.rhd.lines)]
    for delay in range(MAX_MISO_DELAY_CYCLES + 1):
        await tb.set_delays([delay] * config.rhd.lines)
        await tb.run_oneshot(start, length)
        for line in range(config.rhd.lines):
            a = await tb.capture(line, 0, count)
            b = await tb.capture(line, 1, count) if config.rhd.facts(line).ddr_miso else None
            found = identify_chip(a, b)
            good[line].append(found is not None
                              and found.facts.name == config.rhd.chips[line])
    return [choose_delay(g) for g in good], good


@cocotb.test()
async def frontend_matches_chips(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    rhd = config.rhd
    cable = [int(d) for d in params["cable_delays"]]
    sweeps = int(params["sweeps"])
    tb = FrontEndBench(dut, config, cable, sweeps + 4, int(params.get("seed", 1)))
    await tb.reset()

    h = rhd.sclk_half_period_cycles
    windows, middles = [], []
    for line, d in enumerate(cable):
        width = h if rhd.facts(line).ddr_miso else 2 * h
        windows.append([d <= s < d + width for s in range(MAX_MISO_DELAY_CYCLES + 1)])
        middles.append(d + width // 2)

    # 1a. The gateware's own start-up calibration (before anything else runs).
    while not int(dut.calibrated.value):
        await FallingEdge(dut.clk)
    calibrated_at = tb.cycle()
    for line in range(rhd.lines):
        good_map = int(dut.good_delays.value) >> (16 * line) & 0xFFFF
        found = int(dut.found_delays.value) >> (4 * line) & 0xF
        chip_id = int(dut.chip_ids.value) >> (8 * line) & 0xFF
        assert [bool(good_map >> s & 1) for s in range(16)] == windows[line], (
            f"start-up calibration, line {line}: good delay map {good_map:016b}")
        assert found == middles[line], f"start-up calibration, line {line}: chose {found}"
        assert chip_id == ChipKind[rhd.chips[line]], f"line {line}: found chip ID {chip_id}"

    # 1b. The same from the host side, through the one-shot and capture interface.
    delays, good = await calibrate_delays(tb)
    for line, chosen in enumerate(delays):
        assert good[line] == windows[line], (
            f"line {line} ({rhd.chips[line]}, cable {cable[line]}): good delays "
            f"{[s for s, g in enumerate(good[line]) if g]}")
        assert chosen == middles[line], f"line {line}: chose delay {chosen}"
    # Stream with the delays the gateware found (equal to the host's, checked above).
    await FallingEdge(dut.clk)
    dut.use_found_delays.value = 1
    dut.miso_delay.value = 0
    for chip in tb.chips:
        assert chip.log, "a chip saw no command"

    # 2. Set-up: register writes land, read-back comes back, calibration is well formed.
    start, length = tb.image.lists["setup"]
    await tb.run_oneshot(start, length)
    values = register_values(RegisterTargets.from_config(config))
    for line, chip in enumerate(tb.chips):
        for reg in range(18):
            assert chip.registers[reg] == values[reg], (
                f"{rhd.chips[line]} register {reg} = {chip.registers[reg]:#x}, "
                f"set-up wrote {values[reg]:#x}")
        assert chip.calibrations == 1 and chip.calibration_violations == 0
        readback = await tb.capture(line, 0, 50)
        assert readback[2:20] == [0xFF00 | values[r] for r in range(18)], "WRITE results"
        assert readback[30:48] == [values[r] for r in range(18)], "READ-back results"
        assert rhd.twos_complement == chip.twos_complement

    # 3. Streaming at the sample rate.
    for chip in tb.chips:
        chip.log.clear()
    cps = config.cycles_per_sample
    await FallingEdge(dut.clk)
    monitor_start = tb.cycle()
    # ready of every cycle from reset; the monitor drives it from monitor_start + 1 on.
    ready = np.ones(monitor_start + (sweeps + 8) * cps, dtype=bool)
    if params.get("stall") == "random-stalls":
        rng = random.Random(3)
        t = monitor_start + 1
        while t < monitor_start + sweeps * cps:
            t += rng.randrange(1, 3 * cps)
            ready[t:t + rng.choice([1, 2, 3, config.channels, 2 * cps])] = False
        ready[monitor_start + sweeps * cps:] = True
    monitor = StreamSink(dut, "o", ready_pattern=itertools.chain(
        (int(r) for r in ready[monitor_start + 1:]), itertools.repeat(1)))
    watched_from = monitor_start + 2
    dut.loop_enable.value = 1
    start, length = tb.image.lists["loop"]
    dut.loop_list.value = start | length << 16
    await tb.cycles(sweeps * cps)
    await FallingEdge(dut.clk)
    dut.loop_enable.value = 0
    await tb.cycles(2 * cps)
    await FallingEdge(dut.clk)
    end_cycle = tb.cycle()

    # Every pass starts exactly one sample period after the previous one.
    log = tb.chips[0].log
    assert len(log) % length == 0, "a loop pass was cut short"
    pass_starts = [tb.cycle_of(c.time_ns) for c in log[::length]]
    assert all(b - a == cps for a, b in zip(pass_starts, pass_starts[1:])), (
        f"loop passes do not start every {cps} cycles: {pass_starts[:6]}")
    first_pass = pass_starts[0] // cps
    passes = len(pass_starts)
    assert passes >= sweeps - 1, f"only {passes} passes ran in {sweeps} sample periods"

    got = [(tb.cycle_of(t), p) for t, p in monitor.items
           if watched_from <= tb.cycle_of(t) < end_cycle]
    emitted_sweeps = end_cycle // cps + 1
    expected_samples = frontend_samples(config, tb.recordings, first_pass, emitted_sweeps)
    channel_bits = config.channel_bits
    n, c = np.divmod(np.arange(emitted_sweeps * config.channels), config.channels)
    transferred, lost = source_output(n * cps + c + RHDFrontEnd.LATENCY - 1,
                                      ready[:end_cycle])
    expected = []
    for k in range(len(n)):
        value = int(expected_samples[n[k], c[k]]) if n[k] <= first_pass + passes else 0
        if watched_from <= transferred[k] < end_cycle:
            expected.append((int(transferred[k]),
                             int(c[k]) | (value & 0xFFFF) << channel_bits
                             | int(c[k] == 0) << (channel_bits + 16)))
    for index, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (f"sample {index} (sweep {index // config.channels}, channel "
                        f"{index % config.channels}): RTL 0x{g[1]:x} in cycle {g[0]}, "
                        f"expected 0x{e[1]:x} in cycle {e[0]}")
    assert len(got) == len(expected), f"RTL gave {len(got)} samples, expected {len(expected)}"
    overruns = int(dut.overruns.value)
    assert overruns == lost, f"overruns: RTL counted {overruns}, model {lost}"

    # 4. Impedance test: DAC list through program memory, set-up one-shot, aux slot 0.
    dac, _ = impedance_dac_list(config.sample_rate_hz / 8, config.sample_rate_hz)
    base = PROGRAM_DEPTH - len(dac)
    await tb.write_program(base, dac)
    setup = impedance_setup_list(3, targets=RegisterTargets.from_config(config))
    setup_base = base - len(setup)
    await tb.write_program(setup_base, setup)
    await tb.run_oneshot(setup_base, len(setup))
    for chip in tb.chips:
        assert chip.registers[5] & 1 and chip.registers[7] == 3, "impedance set-up did not land"
        chip.log.clear()
    dut.aux0.value = base | len(dac) << 16
    await FallingEdge(dut.clk)
    dut.loop_enable.value = 1
    await tb.cycles(12 * cps)
    await FallingEdge(dut.clk)
    dut.loop_enable.value = 0
    aux0 = [c.word for c in tb.chips[0].log[length - 3::length]]
    assert len(aux0) >= 10 and aux0 == [dac[k % len(dac)] for k in range(len(aux0))], (
        f"aux slot 0 sent {[hex(w) for w in aux0]}")

    kinds = [ChipKind[name] for name in rhd.chips]
    report(items=len(got), cycles=tb.cycle(), passes=passes, overruns=overruns,
           calibrated_at=calibrated_at, delays=",".join(map(str, delays)),
           chips=",".join(k.name for k in kinds))
