"""The v2 lossless coder as the system builds it (hdl/lossless_v2.py): every block's words,
``last``, ``empty`` and ``damaged`` equal the golden model's stream cut into link words
and limited to the framer's reservation
(:func:`~spikeforge.sim.lossless_v2_cases.expected_blocks`,
:func:`~spikeforge.sim.lossless_v2_cases.limit_block`), the host's ``decode_v2`` turns the
words into exactly the samples, ``overflows`` stays 0 and ``blocks_damaged`` counts the
damaged blocks, and ``block_start`` pulses once a block. Samples go in channel-serial, one
a clock within a sweep, a sweep every ``sweep_cycles`` cycles, and the source never waits
(``i.ready`` only tells whether the FIFO took the sample). With ``overflow`` the samples
come faster than the coder drains: the bench counts the samples the FIFO refused,
``overflows`` must equal that count, the blocks ended before the first refused sample must
be the model's and every block ended after it damaged. With ``coder_period_ps`` the coder
runs in its own domain: the bench drives ``coder_clk`` at that period (sync's is 10 ns) and
holds ``coder_rst`` with ``rst``; every check is the same.
"""

import cocotb
from amaranth.hdl import Shape
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from spikeforge.firmware.compression_v2 import CodecV2Config, coded_config
from spikeforge.hdl.block_packer import CompressedWordLayout
from spikeforge.host.compression import decode_v2
from spikeforge.sim.compressor_v2_cases import (
    grid_of,
    load_grid,
    load_prior,
    load_weights,
    prior_of,
    v2_stimulus,
    weights_of,
)
from spikeforge.sim.drivers import Bench
from spikeforge.sim.lossless_v2_cases import expected_blocks, limit_block
from spikeforge.sim.runner import bench_parameters, report

#: Cycles without a word after which the output is taken as finished.
QUIET_CYCLES = 400


def _word_fields() -> dict[str, int]:
    return {name: field.offset for name, field in CompressedWordLayout()}


def _pack(channel_bits: int, channel: int, value: int, first: bool) -> int:
    """A SampleLayout payload: channel, value, first from bit 0 up."""
    return channel | (value & 0xFFFF) << channel_bits | int(first) << (channel_bits + 16)


async def _drive(bench: Bench, dut, payloads: list[int], channels: int,
                 sweep_cycles: int) -> list[int]:
    """Offer each sample in its cycle, whatever ``i.ready`` says; returns the cycles in
    which a sample was refused (the FIFO full)."""
    refused = []
    period = max(sweep_cycles, channels)
    cycle = 0
    index = 0
    while index < len(payloads):
        await FallingEdge(dut.clk)
        if cycle % period < channels:
            dut.i__payload.value = payloads[index]
            dut.i__valid.value = 1
            await ReadOnly()
            if not int(dut.i__ready.value):
                refused.append(bench.cycle())
            index += 1
        else:
            dut.i__valid.value = 0
        cycle += 1
    await FallingEdge(dut.clk)
    dut.i__valid.value = 0
    return refused


def _blocks(items: list[tuple[int, int]], fields: dict[str, int]
            ) -> tuple[list[dict], list[int]]:
    """Transfers ``(cycle, payload)`` -> blocks ``{words, empty, damaged, cycle}`` (the data
    of every word, the last one included unless it is an empty marker), and the words after
    the last ``last``."""
    blocks, words = [], []
    for cycle, value in items:
        data = value >> fields["data"] & 0xFFFF
        last, empty, damaged = (bool(value >> fields[name] & 1)
                                for name in ("last", "empty", "damaged"))
        if empty and (words or not last):
            raise AssertionError(f"an empty marker after {len(words)} words of its block "
                                 f"(last={last}) at cycle {cycle}")
        if damaged and not last:
            raise AssertionError(f"damaged on a word that is not its block's last, cycle "
                                 f"{cycle}")
        if not empty:
            words.append(data)
        if last:
            blocks.append({"words": words, "empty": empty, "damaged": damaged,
                           "cycle": cycle})
            words = []
    return blocks, words


@cocotb.test()
async def words_match_model_and_decode(dut):
    params = bench_parameters()
    codec = CodecV2Config(**params["codec"])
    channels, sweeps = int(params["channels"]), int(params["sweeps"])
    limit, overflow = int(params["limit"]), bool(params["overflow"])
    samples = v2_stimulus(params["stimulus"], sweeps, channels, int(params["seed"]))
    grid = grid_of(params["stimulus"]) if codec.grid else None
    prior = prior_of(params, codec)
    weights = weights_of(params, grid)
    golden = coded_config(codec, weights)
    model = expected_blocks(samples, golden, grid, prior, weights)
    expected = [limit_block(block, limit) for block in model]
    fields = _word_fields()
    assert Shape.cast(CompressedWordLayout()).width == len(dut.o__payload)

    bench = Bench(dut)
    dut.i__valid.value = 0
    coder_period_ps = int(params.get("coder_period_ps", 0))
    if coder_period_ps:
        cocotb.start_soon(Clock(dut.coder_clk, coder_period_ps, unit="ps").start())
        dut.coder_rst.value = 1
    await bench.reset()
    if coder_period_ps:
        dut.coder_rst.value = 0
    await load_grid(dut, grid)
    await load_prior(dut, codec, prior)
    await load_weights(dut, codec, grid, weights)
    # one watcher for the output words and block_start (``o`` is always ready: every cycle
    # with ``valid`` is a transfer)
    words: list[tuple[int, int]] = []
    starts = []

    async def watch():
        while True:
            await FallingEdge(dut.clk)
            await ReadOnly()
            if int(dut.block_start.value):
                starts.append(bench.cycle())
            if int(dut.o__valid.value):
                words.append((bench.cycle(), int(dut.o__payload.value)))

    cocotb.start_soon(watch())
    payloads = [_pack(int(params["channel_bits"]), c, int(samples[n, c]), c == 0)
                for n in range(sweeps) for c in range(channels)]
    refused = await _drive(bench, dut, payloads, channels, int(params["sweep_cycles"]))

    # until every block is out (or, after an overflow, until the output stays quiet)
    seen = 0
    while True:
        await bench.cycles(QUIET_CYCLES)
        got, _ = _blocks(words, fields)
        if len(words) == seen or (not overflow and len(got) >= len(expected)):
            break
        seen = len(words)
    await bench.cycles(QUIET_CYCLES)
    await ReadOnly()
    got, open_words = _blocks(words, fields)
    overflows, damaged_count = int(dut.overflows.value), int(dut.blocks_damaged.value)
    assert overflows == len(refused), (
        f"overflows reads {overflows}, the FIFO refused {len(refused)} samples")
    assert damaged_count == sum(b["damaged"] for b in got), (
        f"blocks_damaged reads {damaged_count}, {sum(b['damaged'] for b in got)} blocks "
        f"came out damaged")

    if overflow:
        assert refused, (f"no sample was refused at {params['sweep_cycles']} cycles a sweep:"
                         f" the case does not overflow the FIFO")
        first = refused[0]
        clean = [b for b in got if b["cycle"] <= first]
        later = got[len(clean):]
        assert later, "no block ended after the first refused sample"
        for index, block in enumerate(clean):
            assert (block["words"], block["empty"], block["damaged"]) == expected[index], (
                f"block {index} (ended before the first lost sample) differs from the model")
        undamaged = [i + len(clean) for i, b in enumerate(later) if not b["damaged"]]
        assert not undamaged, (f"blocks {undamaged[:8]} ended after the first lost sample "
                               f"(cycle {first}) but are not marked damaged")
        report(items=len(payloads), cycles=bench.cycle(), refused=len(refused),
               first_refused_cycle=first, clean_blocks=len(clean),
               damaged_blocks=len(later))
        return

    assert not refused, (f"{len(refused)} samples refused (first at cycle {refused[0]}): "
                         f"the FIFO did not absorb the coder's stalls")
    for index, (block, want) in enumerate(zip(got, expected)):
        have = (block["words"], block["empty"], block["damaged"])
        at = next((k for k, (a, b) in enumerate(zip(have[0], want[0])) if a != b),
                  min(len(have[0]), len(want[0])))
        assert have == want, (
            f"block {index} of {len(expected)} (ended cycle {block['cycle']}): from word "
            f"{at} RTL {[hex(w) for w in have[0][at:at + 6]]} ({len(have[0])} words) "
            f"empty={have[1]} damaged={have[2]}; model {[hex(w) for w in want[0][at:at + 6]]}"
            f" ({len(want[0])} words) empty={want[1]} damaged={want[2]}")
    assert len(got) == len(expected), f"{len(got)} blocks out, model {len(expected)}"
    assert not open_words, f"{len(open_words)} words after the last block's end"
    assert len(starts) == len(expected), (
        f"block_start pulsed {len(starts)} times for {len(expected)} blocks")
    damaged = sum(d for _, _, d in expected)
    if not damaged:
        blocks = [b"".join(w.to_bytes(2, "little") for w in b["words"]) for b in got]
        decoded = decode_v2(blocks, channels, golden, grid, weights, sweeps=sweeps,
                            prior=prior)
        mismatch = (decoded != samples).nonzero()
        assert not len(mismatch[0]), (
            f"decode_v2 of the RTL's words differs from the samples at sweep "
            f"{mismatch[0][0]}, channel {mismatch[1][0]}")
    report(items=len(payloads), cycles=bench.cycle(), blocks=len(got),
           words=len(words), empty_blocks=sum(b["empty"] for b in got),
           damaged_blocks=damaged, decoded=int(not damaged),
           coded_worst_words=limit)
