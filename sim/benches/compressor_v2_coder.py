"""Whole v2 coder bench (hdl/compressor_v2_coder.py: symbol stage, block framing and running
budget, range coder): the coded bytes and every block's end equal the golden model's
(:func:`~spikeforge.sim.models.compressor_v2.encode_v2_stream`), for every stimulus,
whether the budget sends samples verbatim or not; the split model
(:func:`~spikeforge.sim.models.compressor_v2_stages.range_code_v2` of
:func:`~spikeforge.sim.models.compressor_v2_stages.symbol_stream_v2`) is checked against
it too. Samples arrive channel-serial with random idle cycles (unless ``stall`` is
"none"), the output is read under random back-pressure; the flush is requested right
after the last sample. With sync blocks every block's end is checked, the sync flushes'
included (a token with ``block_end`` and ``flush``: the block ends after the flush's
bytes), and the flushes are counted (none for the stream's end when it ended with a sync
flush).
"""

import itertools

import cocotb
from amaranth.hdl import Shape

from spikeforge.firmware.compression_v2 import ESCAPE, coded_config
from spikeforge.hdl.compressor_v2 import SampleInLayout
from spikeforge.hdl.compressor_v2_coder import SLOTS, CodedTokensLayout
from spikeforge.sim.compressor_v2_cases import (
    grid_of,
    load_grid,
    load_prior,
    load_weights,
    prior_of,
    v2_bench_inputs,
    weights_of,
)
from spikeforge.sim.drivers import Bench, StreamSink, StreamSource, ready_pattern
from spikeforge.sim.models.compressor_v2 import encode_v2_stream
from spikeforge.sim.models.compressor_v2_stages import (
    budget_v2,
    range_code_v2,
    symbol_stream_v2,
)
from spikeforge.sim.runner import bench_parameters, report


def _fields(layout) -> dict[str, tuple[int, int]]:
    return {name: (field.offset, Shape.cast(field.shape).width) for name, field in layout}


def _pack_sample(layout, channel: int, value: int, first: bool) -> int:
    f = _fields(layout)
    return (channel << f["channel"][0]) | ((value & 0xFFFF) << f["value"][0]) | (
        int(first) << f["first"][0])


def expand_tokens(words: list[int]) -> tuple[bytes, list[int], bool]:
    """The bytes of :class:`CodedTokensLayout` words, the byte count at each block end, and
    whether the stream's flush came."""
    layout = CodedTokensLayout()
    top = _fields(layout)
    token_layout = layout["tokens"].shape
    token_width = Shape.cast(token_layout.elem_shape).width
    token_fields = _fields(token_layout.elem_shape)
    out = bytearray()
    ends = []
    flushed = False
    for word in words:
        for j in range(SLOTS):
            token = word >> (top["tokens"][0] + j * token_width)
            get = {name: (token >> offset) & ((1 << width) - 1)
                   for name, (offset, width) in token_fields.items()}
            if get["valid"]:
                if not get["skip"]:
                    out.append(get["byte"])
                out.extend([0x00 if get["carry"] else 0xFF] * get["run"])
        if word >> top["block_end"][0] & 1:
            ends.append(len(out))
        if word >> top["flush"][0] & 1:
            flushed = True
    return bytes(out), ends, flushed


@cocotb.test()
async def coded_bytes_match_model(dut):
    from cocotb.triggers import FallingEdge

    params = bench_parameters()
    codec, channels, sweeps, rng, samples = v2_bench_inputs(params)
    per_block = channels * codec.block_sweeps
    grid = grid_of(params["stimulus"]) if codec.grid else None
    prior = prior_of(params, codec)
    weights = weights_of(params, grid)
    stream, golden_ends, verbatim = encode_v2_stream(
        samples, coded_config(codec, weights), grid, weights, prior=prior)
    expected, expected_ends = bytes(stream), [int(end) for end in golden_ends]
    rows = symbol_stream_v2(samples, codec, grid, prior=prior, weights=weights)
    split = range_code_v2(rows, per_block, codec.sync_blocks)
    assert split == (expected, expected_ends), "symbol model + budget + range coder != model"

    bench = Bench(dut)
    dut.flush.value = 0
    await bench.reset()
    await load_grid(dut, grid)
    await load_prior(dut, codec, prior)
    await load_weights(dut, codec, grid, weights)
    random_idle = params["stall"] != "none"
    idle = (rng.choice([0, 0, 0, 1, 2]) if random_idle else 0 for _ in itertools.count())
    sink = StreamSink(dut, "o", ready_pattern=ready_pattern(rng, params["stall"]))
    source = StreamSource(dut, "i", idle=idle)
    layout = SampleInLayout(channels)
    await source.send([_pack_sample(layout, c, int(samples[n, c]), c == 0)
                       for n in range(sweeps) for c in range(channels)])
    # The flush is requested at once: it must follow the samples still in the coder.
    await FallingEdge(dut.clk)
    dut.flush.value = 1
    await FallingEdge(dut.clk)
    dut.flush.value = 0
    # the sync blocks' flushes, then the stream's (none if it ended with a sync flush)
    period = codec.sync_blocks * codec.block_sweeps
    flushes = (sweeps // period if period else 0) + int(not period or sweeps % period != 0)
    flush_bit = _fields(CodedTokensLayout())["flush"][0]
    seen = 0
    for _ in range(200):
        got, ends, flushed = expand_tokens([word for _, word in sink.items])
        seen = sum(word >> flush_bit & 1 for _, word in sink.items)
        if seen >= flushes:
            break
        await bench.cycles(32)
    await bench.cycles(64)
    got, ends, flushed = expand_tokens([word for _, word in sink.items])
    seen = sum(word >> flush_bit & 1 for _, word in sink.items)
    assert seen == flushes, f"{seen} flushes came out, {flushes} expected"
    full_blocks = sweeps // codec.block_sweeps
    assert len(ends) == full_blocks, f"{len(ends)} block ends for {full_blocks} blocks"
    assert ends[:-1] == expected_ends[:len(ends) - 1], (
        f"block ends {ends[:8]} != model {expected_ends[:8]}")
    if period and sweeps % period == 0:
        assert ends == expected_ends, "the stream's last block ends with its sync flush"
    if got != expected:
        first = next((i for i in range(min(len(got), len(expected)))
                      if got[i] != expected[i]), min(len(got), len(expected)))
        raise AssertionError(f"coded bytes differ from byte {first} (RTL {len(got)} bytes, "
                             f"model {len(expected)}): RTL {got[first:first + 8].hex()} "
                             f"model {expected[first:first + 8].hex()}")
    report(items=sweeps * channels, cycles=bench.cycle(), bytes=len(got),
           escapes_coded=int(((rows[:, 1] == ESCAPE) & budget_v2(rows, per_block)).sum()),
           verbatim_samples=int(verbatim.sum()),
           blocks_with_verbatim=int((verbatim > 0).sum()), flushes=seen)
