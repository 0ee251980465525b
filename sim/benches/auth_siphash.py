"""SipHash-2-4 core bench: random keys and messages in, every tag exactly the model's.

Messages of 0..40 bytes (one to six blocks) under a fresh random key each, blocks offered
with random gaps and the tag taken under random back-pressure; some messages are abandoned
part-way (a ``first`` block starts the next one) or their tag is never taken. Proves each
finished message's tag equals :func:`spikeforge.sim.models.siphash.siphash_tag`, that nothing
else comes out, and (tag taken at once) that it comes the model's latency after the last
block.
"""

import random

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly

from spikeforge.sim.drivers import Bench, StreamSource, idle_gaps, ready_pattern
from spikeforge.sim.models.siphash import core_blocks, core_key, siphash_tag, tag_latency_cycles
from spikeforge.sim.runner import bench_parameters, report


@cocotb.test()
async def tags_match_model(dut):
    params = bench_parameters()
    rng = random.Random(int(params.get("seed", 1)))
    messages = int(params["messages"])
    stall = params.get("stall", "some")
    bench = Bench(dut)
    dut.key.value = 0
    dut.o__ready.value = 0
    source = StreamSource(dut, "i", idle_gaps(rng, stall))
    await bench.reset()

    ready = ready_pattern(rng, stall, busy=0.5)
    tags, abandoned, unclaimed, latencies = 0, 0, 0, []
    for _ in range(messages):
        key = rng.randbytes(16)
        message = rng.randbytes(rng.randrange(41))
        blocks = core_blocks(message)
        fate = rng.random()
        dut.key.value = core_key(key)
        if fate < 0.1 and len(blocks) > 1:
            # Abandoned: some blocks, then the next message starts.
            await source.send(blocks[:rng.randrange(1, len(blocks))])
            abandoned += 1
            continue
        await source.send(blocks)
        taken_at = bench.cycle_of(source.sent[-1][0])
        first_valid = None
        if fate < 0.2:
            unclaimed += 1          # the tag is never taken; the next message replaces it
            continue
        # Take the tag (under back-pressure); it must be the model's and come in time.
        waited = 0
        while True:
            await FallingEdge(dut.clk)
            take = next(ready) if stall != "none" else 1
            dut.o__ready.value = take
            await ReadOnly()
            if int(dut.o__valid.value):
                if first_valid is None:
                    first_valid = bench.cycle()
                    latencies.append(first_valid - taken_at)
                if take:
                    got = int(dut.o__payload.value)
                    want = siphash_tag(key, message)
                    assert got == want, (
                        f"message {message.hex()} key {key.hex()}: core {got:016x}, "
                        f"model {want:016x}")
                    tags += 1
                    break
            waited += 1
            assert waited < 200, "no tag from the core"
        await FallingEdge(dut.clk)
        dut.o__ready.value = 0
    if stall == "none":
        assert set(latencies) == {tag_latency_cycles()}, (
            f"tag latencies {sorted(set(latencies))}, model {tag_latency_cycles()}")
    assert tags > messages // 2
    report(items=tags, cycles=bench.cycle(), abandoned=abandoned, unclaimed=unclaimed,
           latency=max(latencies))
