"""Ethernet MAC TX bench: frames fed straight to the MAC (no FIFO), with and without gaps.

The design is the MAC and the RGMII transmitter alone. A frame offered one byte per cycle
must leave exactly as the golden model's line frame (preamble, SFD, pad to 60, FCS); a
frame whose source stalls inside it (an underrun) must never leave as a frame a receiver
would accept: it is cut short with ``tx_er`` on its last byte and counted in
``underruns``. Frames that follow an underrun are again exact, and frames sit at least 12
idle cycles apart.
"""

import random

import cocotb
from cocotb.triggers import Timer

from spikeforge.firmware.ethernet import INTER_FRAME_GAP_BYTES
from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, StreamSource
from spikeforge.sim.models.ethernet_tx import line_frame
from spikeforge.sim.rgmii_monitor import RGMIIMonitor
from spikeforge.sim.runner import bench_parameters, report


@cocotb.test()
async def frames_and_underruns(dut):
    params = bench_parameters()
    rng = random.Random(int(params["seed"]))
    count = int(params["frames"])
    underrun_chance = float(params["underrun_chance"])
    sizes = [1, 59, 60, 61, 1514] + [rng.randrange(1, 300) for _ in range(count - 5)]
    frames = [rng.randbytes(n) for n in sizes]
    gaps: list[int] = []
    broken: list[bool] = []
    for frame in frames:
        # A gap before a frame's first byte is harmless; one inside it is an underrun.
        per_byte = [rng.randrange(0, 40)] + [0] * (len(frame) - 1)
        if len(frame) > 1 and rng.random() < underrun_chance:
            per_byte[rng.randrange(1, len(frame))] = rng.randrange(1, 4)
        gaps += per_byte
        broken.append(any(per_byte[1:]))

    bench = Bench(dut)
    phy = RGMIIMonitor(dut.tx_clk, dut.txd, dut.tx_ctl, CLOCK_PERIOD_NS)
    driver = StreamSource(dut, "i", idle=iter(gaps))
    await bench.reset()
    for frame in frames:
        await driver.send([b | (k == len(frame) - 1) << 8 for k, b in enumerate(frame)])
    await Timer(200 * CLOCK_PERIOD_NS, unit="ns")

    line = phy.frames
    assert len(line) == len(frames), f"{len(line)} frames on the line, {len(frames)} sent"
    for index, (got, frame, bad) in enumerate(zip(line, frames, broken, strict=True)):
        if bad:
            assert got.error, f"frame {index} underran but left without tx_er"
            assert got.problems, f"frame {index} underran but looks like a good frame"
        else:
            assert got.line == line_frame(frame) and not got.error, \
                f"frame {index} ({len(frame)} bytes) differs from the model: {got.problems}"
    gaps_between = [round((b.start_ns - a.end_ns) / CLOCK_PERIOD_NS) - 1
                    for a, b in zip(line, line[1:])]
    assert min(gaps_between) >= INTER_FRAME_GAP_BYTES, f"gap {min(gaps_between)} < 12"
    assert int(dut.underruns.value) == sum(broken)
    assert int(dut.frames_sent.value) == len(frames) - sum(broken)
    report(items=len(line), cycles=bench.cycle(), underruns=sum(broken),
           min_gap=min(gaps_between))
