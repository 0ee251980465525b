"""Conditioner bench: filtered samples against the golden model, exactly, under stalls.

Proves that every output sample has the model's channel, value and sweep-start flag, in
order, for random and adversarial inputs (full-scale random, saturation, DC steps, silence),
with idle gaps on the input and random back-pressure on the output.
"""

import itertools
import random

import cocotb

from spikeforge.firmware.config import SystemConfig
from spikeforge.sim.drivers import Bench, StreamDriver, StreamMonitor
from spikeforge.sim.models.detector import condition
from spikeforge.sim.runner import bench_parameters, report
from spikeforge.sim.stimuli import stimulus


def pack_sample(config: SystemConfig, channel: int, value: int, first: bool) -> int:
    """SampleLayout packs channel, value, first from bit 0 up."""
    bits = config.channel_bits
    return channel | ((value & 0xFFFF) << bits) | (int(first) << (bits + 16))


async def run_sample_stream(dut, config: SystemConfig, samples, stall: str,
                            rng: random.Random) -> tuple[Bench, list[int]]:
    """Resets a channel-serial core, drives ``samples`` (sweeps x channels) into its ``i``
    stream (with random idle gaps unless ``stall`` is "none") while its ``o`` stream sees
    random back-pressure, and returns the bench and every payload the core put out."""
    bench = Bench(dut)
    await bench.reset()
    if stall == "none":
        idle = itertools.repeat(0)
        ready = itertools.repeat(1)
    else:
        idle = (rng.choice([0, 0, 0, 1, 3]) for _ in itertools.count())
        ready = (int(rng.random() > 0.3) for _ in itertools.count())
    sink = StreamMonitor(dut, "o", ready_pattern=ready)
    driver = StreamDriver(dut, "i", idle=idle)
    await driver.send([pack_sample(config, c, int(samples[n, c]), c == 0)
                       for n in range(samples.shape[0]) for c in range(config.channels)])
    await bench.cycles(20)
    return bench, [p for _, p in sink.items]


def assert_samples(config: SystemConfig, got: list[int], values, what: str) -> None:
    """``got`` must be exactly ``values`` (sweeps x channels) as SampleLayout payloads."""
    expected = [pack_sample(config, c, int(values[n, c]), c == 0)
                for n in range(values.shape[0]) for c in range(config.channels)]
    for index, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (
            f"{what} {index // config.channels}, channel {index % config.channels}: "
            f"RTL gave 0x{g:x}, model expects 0x{e:x}")
    assert len(got) == len(expected), f"RTL gave {len(got)} samples, model {len(expected)}"


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
