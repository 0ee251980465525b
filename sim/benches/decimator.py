"""Decimator bench: decimated LFP samples against the golden model, exactly, under stalls.

Proves that the core emits exactly the model's output sweeps (one per ``factor`` input
sweeps, every channel in order, ``first`` on channel 0) with the model's values, for random
full-scale input (every state bit toggles and the integrators wrap), rails, DC steps and
silence, with idle gaps on the input and random back-pressure on the output.
"""

import random

import cocotb

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.decimation import DecimatorConfig
from spikeforge.sim.drivers import assert_samples, run_sample_stream
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

    bench, got = await run_sample_stream(dut, config, samples, params["stall"], rng)
    assert expected_values.shape[0], "the case is too short to produce an output sweep"
    assert_samples(config, got, expected_values, "decimated sweep")
    report(items=len(got), cycles=bench.cycle())
