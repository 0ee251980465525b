"""Compressor bench: every word of every block equals the golden model's, and the host
decoder turns the RTL's bytes back into exactly the input samples.

Samples arrive at the configured rate (one sweep every ``cycles_per_sample`` cycles,
channels back to back), the output is read under a stall pattern, and the codebook (when
the coder has one) is loaded through its write port first, learned from the stimulus as a
host would. The overflow counter must stay zero.
"""

import itertools
import random

import cocotb
import numpy as np

from spikeforge.firmware.compression import learn_codebook
from spikeforge.firmware.config import SystemConfig
from spikeforge.host.compression import decode
from spikeforge.sim.drivers import Bench, StreamSink, StreamSource, pack_sample
from spikeforge.sim.models.compressor import encode
from spikeforge.sim.runner import bench_parameters, report
from spikeforge.sim.stimuli import codec_stimulus


async def load_codebook(bench: Bench, dut, codebook, bits: int) -> None:
    from cocotb.triggers import FallingEdge

    table = codebook.table(bits)
    dut.codebook_base.value = codebook.base
    dut.codebook_multiplier.value = codebook.multiplier
    dut.codebook_shift.value = codebook.shift
    for address, value in enumerate(table):
        await FallingEdge(dut.clk)
        dut.codebook_addr.value = address
        dut.codebook_data.value = int(value) & 0xFFFF
        dut.codebook_write.value = 1
    await FallingEdge(dut.clk)
    dut.codebook_write.value = 0
    # The read-back port (the system's CODEBOOK_VALUE): no sample comes yet, so every
    # address is read and shown two cycles later. Backwards, so each entry differs in time.
    for address in reversed(range(len(table))):
        dut.codebook_read_addr.value = address
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        held = int(dut.codebook_read_data.value) & 0xFFFF
        assert held == int(table[address]) & 0xFFFF, (
            f"codebook read-back of {address} shows 0x{held:04x}, not "
            f"0x{int(table[address]) & 0xFFFF:04x}")


@cocotb.test()
async def blocks_match_model_and_decode_to_the_input(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    codec = config.codec
    channels = config.channels
    blocks_wanted = int(params["blocks"])
    sweeps = blocks_wanted * codec.block_sweeps
    rng = random.Random(params.get("seed", 1))
    samples = codec_stimulus(params["stimulus"], sweeps, channels, params.get("seed", 1))
    codebook = None
    if codec.codebook:
        codebook = learn_codebook(samples)
        assert codebook is not None, "this case needs a stimulus with an ADC grid"
    expected = encode(samples, codec, codebook)

    bench = Bench(dut)
    await bench.reset()
    if codebook is not None:
        await load_codebook(bench, dut, codebook, codec.codebook_bits)

    if params["stall"] == "none":
        ready = itertools.repeat(1)
    elif params["stall"] == "long":
        # Long stalls: the sink stops for hundreds of cycles, the FIFO must overflow.
        ready = itertools.chain.from_iterable(
            [1] * rng.randrange(60, 300) + [0] * rng.randrange(100, 300)
            for _ in itertools.count())
    else:
        ready = (int(rng.random() > 0.25) for _ in itertools.count())
    sink = StreamSink(dut, "o", ready_pattern=ready)
    # Idle cycles between sweeps: the configured rate's, or ``sweep_gap`` (0: one channel's
    # samples in consecutive cycles, closer than any system sends them).
    gap = int(params.get("sweep_gap", config.cycles_per_sample - channels))
    idle = (gap if index % channels == 0 and index else 0 for index in itertools.count())
    driver = StreamSource(dut, "i", idle=idle)
    items = [pack_sample(config, c, int(samples[n, c]), c == 0)
             for n in range(sweeps) for c in range(channels)]
    await driver.send(items)
    # Drain: at most the worst-case words of the last block, slowed by the stalls.
    drain = 2 * len(b"".join(expected[-1:])) + 8 * channels + 64
    for _ in range(200):
        await bench.cycles(drain)
        if sum(1 for _, word in sink.items if word >> 16 & 1) >= blocks_wanted:
            break

    got_blocks: list[bytes] = []
    damaged: list[int] = []
    current = bytearray()
    for _, word in sink.items:
        current += (word & 0xFFFF).to_bytes(2, "little")
        if word >> 16 & 1:
            if word >> 17 & 1:
                damaged.append(len(got_blocks))
            got_blocks.append(bytes(current))
            current = bytearray()
    assert not current, f"{len(current) // 2} words after the last block's end marker"
    assert int(dut.blocks_damaged.value) == len(damaged), "damaged markers != counter"
    if params.get("expect_overflow"):
        assert damaged and int(dut.overflows.value) > 0, "this case exists to overflow"
        assert len(got_blocks) == len(expected), "a block was lost without a marker"
        intact = [i for i in range(len(expected)) if i not in damaged]
        assert intact, "every block was damaged; the case proves nothing about the rest"
        for index in intact:
            assert got_blocks[index] == expected[index], f"intact block {index} differs"
            np.testing.assert_array_equal(
                decode([got_blocks[index]], channels, codec, codebook),
                samples[index * codec.block_sweeps:(index + 1) * codec.block_sweeps])
        report(items=len(sink.items), cycles=bench.cycle(), damaged=len(damaged),
               overflows=int(dut.overflows.value))
        return
    assert int(dut.overflows.value) == 0, f"{int(dut.overflows.value)} FIFO overflows"
    for index, (got, want) in enumerate(zip(got_blocks, expected)):
        assert got == want, (
            f"block {index}: RTL gave {len(got)} bytes, model {len(want)}; first difference "
            f"at byte {next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)}")
    assert len(got_blocks) == len(expected), (
        f"RTL gave {len(got_blocks)} blocks, model {len(expected)}")
    decoded = decode(got_blocks, channels, codec, codebook)
    np.testing.assert_array_equal(decoded, samples, err_msg="decode(RTL bytes) != input")
    report(items=len(sink.items), cycles=bench.cycle(),
           ratio=round(samples.nbytes / max(1, sum(map(len, got_blocks))), 3))
