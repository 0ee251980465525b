"""Decimator bench: decimated LFP samples against the golden model, exactly, under stalls.

Proves that the core emits exactly the model's output sweeps (one per ``factor`` input
sweeps, every channel in order, ``first`` on channel 0) with the model's values, for random
full-scale input (every state bit toggles and the integrators wrap), rails, DC steps and
silence, with idle gaps on the input and random back-pressure on the output.
"""

import itertools
import random

import cocotb

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.decimation import DecimatorConfig
from spikeforge.sim.benches.conditioner import pack_sample
from spikeforge.sim.drivers import Bench, StreamDriver, StreamMonitor
from spikeforge.sim.models.decimator import decimate
from spikeforge.sim.runner import bench_parameters, report
from spikeforge.sim.stimuli import stimulus


@cocotb.test()
async def decimated_samples_match_model(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    decimation = DecimatorConfig(**params["decimation"])
    sweeps = int(params["sweeps"])
    seed = params.get("seed", 1)
    rng = random.Random(seed)
    samples = stimulus(params["stimulus"], sweeps, config.channels, seed)
    expected_values = decimate(decimation, samples)

    bench = Bench(dut)
    await bench.reset()
    if params["stall"] == "none":
        idle = itertools.repeat(0)
        ready = itertools.repeat(1)
    else:
        idle = (rng.choice([0, 0, 0, 1, 3]) for _ in itertools.count())
        ready = (int(rng.random() > 0.3) for _ in itertools.count())
    sink = StreamMonitor(dut, "o", ready_pattern=ready)
    driver = StreamDriver(dut, "i", idle=idle)
    items = [pack_sample(config, c, int(samples[n, c]), c == 0)
             for n in range(sweeps) for c in range(config.channels)]
    await driver.send(items)
    await bench.cycles(20)

    expected = [pack_sample(config, c, int(expected_values[m, c]), c == 0)
                for m in range(expected_values.shape[0]) for c in range(config.channels)]
    got = [p for _, p in sink.items]
    for index, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (
            f"output {index} (decimated sweep {index // config.channels}, channel "
            f"{index % config.channels}): RTL gave 0x{g:x}, model expects 0x{e:x}")
    assert len(got) == len(expected), f"RTL gave {len(got)} samples, model {len(expected)}"
    assert expected, "the case is too short to produce an output sweep"
    report(items=len(got), cycles=bench.cycle())
