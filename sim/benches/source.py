"""Source bench: the test-signal source against its golden model, sample by sample.

Proves that every sample the RTL emits has the model's channel, value and sweep-start flag,
leaves in the model's cycle, and — under a consumer that stalls at random — that exactly
the samples the model says are lost are lost and counted in ``overruns``.
"""

import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from spikeforge.firmware.config import SystemConfig
from spikeforge.hdl.source import TestSource
from spikeforge.sim.drivers import Bench, StreamSink
from spikeforge.sim.models.source import source_output, source_signal
from spikeforge.sim.runner import bench_parameters, report


@cocotb.test()
async def samples_match_model(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    sweeps = int(params["sweeps"])
    cycles = sweeps * config.cycles_per_sample
    rng = random.Random(1)
    if params["stall"] == "always-ready":
        ready = np.ones(cycles + 8, dtype=bool)
    else:
        # Bursts of stalls of random length, some longer than a sweep.
        ready = np.ones(cycles + 8, dtype=bool)
        t = 0
        while t < len(ready):
            t += rng.randrange(1, 3 * config.cycles_per_sample)
            ready[t:t + rng.choice([1, 2, 3, config.channels, 2 * config.cycles_per_sample])] = 0
    bench = Bench(dut)
    await bench.reset()
    # Started after reset, so element t of the pattern is the ready of cycle t.
    sink = StreamSink(dut, "o", ready_pattern=(int(r) for r in np.append(ready, 1)))
    await bench.cycles(cycles)

    signal = source_signal(config, sweeps)
    n, c = np.divmod(np.arange(sweeps * config.channels), config.channels)
    produced_at = n * config.cycles_per_sample + c + TestSource.LATENCY - 1
    transferred, overruns = source_output(produced_at, ready[:cycles])
    kept = transferred >= 0
    kept &= transferred < cycles - 1
    # SampleLayout packs channel, value, first from bit 0 up.
    value_at, first_at = config.channel_bits, config.channel_bits + 16
    expected = [
        (int(t), int(ch) | ((int(v) & 0xFFFF) << value_at) | (int(ch == 0) << first_at))
        for t, ch, v in zip(transferred[kept], c[kept], signal.samples.reshape(-1)[kept])
    ]
    got = [(bench.cycle_of(t), p) for t, p in sink.items if bench.cycle_of(t) < cycles - 1]
    for index, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (
            f"sample {index}: RTL gave payload 0x{g[1]:x} in cycle {g[0]}, "
            f"model expects 0x{e[1]:x} in cycle {e[0]}")
    assert len(got) == len(expected), f"RTL gave {len(got)} samples, model {len(expected)}"
    await FallingEdge(dut.clk)  # mid-cycle `cycles`: counts of cycles 0 .. cycles-1
    rtl_overruns = int(dut.overruns.value)
    assert rtl_overruns == overruns, f"overruns: RTL counted {rtl_overruns}, model {overruns}"
    spikes = sum(len(s) for s in signal.spike_starts)
    report(items=len(got), cycles=cycles, overruns=rtl_overruns, spikes=spikes)
