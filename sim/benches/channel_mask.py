"""Channel mask bench: a channel-serial sample stream and random register traffic against
:class:`~spikeforge.sim.models.channel_mask.ChannelMaskModel`, cycle for cycle.

The stream runs sweep after sweep with random idle cycles (and none: the last channel of a
sweep followed at once by channel 0 of the next), so ``keep`` is checked for every sample
while its word is read one channel ahead. Writes come with ``allow`` high and low, to
words inside and past the mask, with all-zero words that would leave no channel enabled
(ignored), and with full and random values; ``keep``, ``enabled`` and ``in_force`` must
equal the model in every cycle.
"""

import random

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly

from spikeforge.firmware.config import SystemConfig
from spikeforge.sim.drivers import Bench
from spikeforge.sim.models.channel_mask import ChannelMaskModel
from spikeforge.sim.runner import bench_parameters, report


@cocotb.test()
async def keep_and_counts_match_model(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    cycles = int(params["cycles"])
    rng = random.Random(int(params["seed"]))
    model = ChannelMaskModel(config)
    words = len(model.words)

    bench = Bench(dut)
    for name in ("valid", "channel", "index", "w_en", "w_data", "allow"):
        getattr(dut, name).value = 0
    await bench.reset()
    channel = 0
    index = 0
    data = 0
    index_age = 0         # cycles since the index last changed
    wrote_before = False  # a write in the previous cycle
    compared = 0
    for step in range(cycles):
        await FallingEdge(dut.clk)
        # This cycle's inputs: a sample (or an idle cycle) and the register traffic: a new
        # index, a new value on w_data, or a write, which the contract allows two cycles after
        # the index changed and one after w_data did, and not right after a write (writes
        # come at the first such cycle as often as later).
        valid = rng.random() < 0.8
        dut.valid.value = int(valid)
        dut.channel.value = channel
        allow = rng.random() < 0.7
        dut.allow.value = int(allow)
        write = None
        index_age += 1
        may_write = index_age >= 2 and not wrote_before
        roll = rng.random()
        if may_write and roll < 0.5:
            write = data
        elif roll < 0.65:
            new_index = rng.choice([rng.randrange(words), rng.randrange(words),
                                    words, rng.randrange(2**32)])
            if new_index != index:
                index_age = 0
            index = new_index
            dut.index.value = index
        elif roll < 0.9:
            data = rng.choice([0, 0, 0xFFFFFFFF, 1 << rng.randrange(32), rng.randrange(2**32)])
            dut.w_data.value = data
        dut.w_en.value = int(write is not None)
        wrote_before = write is not None
        checked_index = index if index_age >= 1 else None   # in_force shows last cycle's index
        await ReadOnly()
        # Outputs of this cycle, against the model's state after the previous cycles.
        if valid:
            got = int(dut.keep.value)
            assert got == model.keep(channel), (
                f"cycle {step}: keep of channel {channel} is {got}, model {model.keep(channel)}"
                f" (mask {[hex(w) for w in model.words]})")
            compared += 1
            channel = (channel + 1) % config.channels
        assert int(dut.enabled.value) == model.enabled, (
            f"cycle {step}: enabled {int(dut.enabled.value)}, model {model.enabled}")
        if checked_index is not None:
            assert int(dut.in_force.value) == model.in_force(checked_index), (
                f"cycle {step}: in_force of word {checked_index} is "
                f"0x{int(dut.in_force.value):08x}, model 0x{model.in_force(checked_index):08x}")
        if write is not None:
            model.write(index, write, allow)
    assert model.applied and model.ignored, "the bench wrote nothing, or nothing was ignored"
    report(items=compared, cycles=bench.cycle(), writes_applied=model.applied,
           writes_ignored=model.ignored)
