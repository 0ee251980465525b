"""Conditioner bench: filtered samples against the golden model, exactly, under stalls.

Proves that every output sample has the model's channel, value and sweep-start flag, in
order, for random and adversarial inputs (full-scale random, saturation, DC steps, silence),
with idle gaps on the input and random back-pressure on the output.
"""

import random

import cocotb

from spikeforge.firmware.config import SystemConfig
from spikeforge.sim.drivers import assert_samples, run_sample_stream
from spikeforge.sim.models.detector import condition
from spikeforge.sim.runner import bench_parameters, report
from spikeforge.sim.stimuli import stimulus


@cocotb.test()
async def filtered_samples_match_model(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    sweeps = int(params["sweeps"])
    rng = random.Random(params.get("seed", 1))
    samples = stimulus(params["stimulus"], sweeps, config.channels, params.get("seed", 1))
    bench, got = await run_sample_stream(dut, config, samples, params["stall"], rng)
    assert_samples(config, got, condition(config, samples), "sweep")
    report(items=len(got), cycles=bench.cycle())
