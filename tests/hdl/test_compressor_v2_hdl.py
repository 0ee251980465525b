"""The v2 symbol stage (hdl/compressor_v2.py) and the whole coder (hdl/compressor_v2_coder.py,
with the running budget) against their models, in Amaranth's simulator, and the model's
split (symbols + running budget + range coder) against the v2 golden model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from spikeforge.firmware.compression_v2 import (
    ACCOUNT_FLOOR_EIGHTHS,
    ESCAPE,
    CodecV2Config,
    ValueGrid,
    weight_pair_words,
)
from spikeforge.firmware.errors import ConfigError
from spikeforge.hdl.compressor_v2 import CompressorV2Symbols
from spikeforge.sim.compressor_v2_cases import (
    GRID_STIMULI,
    WEIGHT_KINDS,
    grid_of,
    v2_stimulus,
    weights_of,
)
from spikeforge.sim.models.compressor_v2 import encode_v2_stream
from spikeforge.sim.models.compressor_v2_stages import (
    SYMBOL_FIELDS,
    budget_v2,
    range_code_v2,
    range_code_v2_by_sample,
    sample_cost_eighths,
    symbol_stream_v2,
)

SMALL = CodecV2Config(enabled=True, block_sweeps=5, taps=3, level_tap=False, contexts=5,
                      shift_offset=0, rate_max=6, mu=3, weight_bits=6)


@pytest.mark.parametrize("kind", ["spikes", "dc-steps", "quiet", "same-context", "steps",
                                  "white", "rails", "mixed", "saturation", "spike-early",
                                  "bursts"])
@pytest.mark.parametrize("config", [CodecV2Config(enabled=True, block_sweeps=8), SMALL],
                         ids=["default", "small"])
def test_symbols_and_range_coder_are_the_golden_model(kind: str, config: CodecV2Config):
    """Every stimulus, whether the budget sends samples verbatim or not."""
    samples = v2_stimulus(kind, 48, 6, seed=5)
    stream, ends, verbatim = encode_v2_stream(samples, config)
    rows = symbol_stream_v2(samples, config)
    per_block = 6 * config.block_sweeps
    got, got_ends = range_code_v2(rows, per_block)
    assert got == bytes(stream)
    assert got_ends == list(ends)
    coded = budget_v2(rows, per_block)
    assert [int((~coded[i:i + per_block]).sum()) for i in range(0, len(rows), per_block)] \
        == list(verbatim)


def test_the_budget_account_is_kept_down_to_the_floor():
    """A long block: silence saves far below ACCOUNT_FLOOR_EIGHTHS, then full-scale noise
    spends it; only with the floor does the block's end go verbatim (and the split model
    agrees with the golden model)."""
    rng = np.random.default_rng(1)
    samples = np.concatenate([np.zeros((700, 2), np.int64),
                              rng.integers(-32768, 32768, (3396, 2))]).astype(np.int16)
    config = CodecV2Config(enabled=True, block_sweeps=4096)
    rows = symbol_stream_v2(samples, config)
    unclamped = np.cumsum([sample_cost_eighths(row) for row in rows])
    assert unclamped.min() < ACCOUNT_FLOOR_EIGHTHS and unclamped[-1] < 0
    stream, ends, verbatim = encode_v2_stream(samples, config)
    assert verbatim[0] > 0
    assert range_code_v2(rows, 2 * 4096) == (bytes(stream), list(ends))
    assert int((~budget_v2(rows, 2 * 4096)).sum()) == verbatim[0]


def test_the_budget_switches_mid_block_and_the_slack_absorbs_a_spike():
    """The stimuli the benches rely on: white noise goes verbatim part of the way into a
    block; a spike at a block's start is coded (the slack), and no sample of its block is
    verbatim."""
    config = CodecV2Config(enabled=True, block_sweeps=8)
    rows = symbol_stream_v2(v2_stimulus("white", 48, 6, seed=5), config)
    coded = budget_v2(rows, 48).reshape(-1, 48)
    assert coded[:, 0].all() and (~coded).any(axis=1).all()
    rows = symbol_stream_v2(v2_stimulus("spike-early", 48, 6, seed=5), config)
    assert budget_v2(rows, 48).all()
    # with no slack, each block's second sample would be verbatim
    assert all(sample_cost_eighths(row) > 0 for row in rows[::48])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["white", "rails", "steps", "same-context", "quiet", "mixed",
                                  "spikes", "saturation"])
def test_the_per_sample_range_step_is_the_range_coder(kind: str, seed: int):
    """range_step_v2 (range and low as separate loops, the gateware's formulation) gives
    the sequential range coder's bytes and block ends."""
    config = CodecV2Config(enabled=True, block_sweeps=3, shift_offset=1 + seed)
    rows = symbol_stream_v2(v2_stimulus(kind, 48, 5, seed), config)
    assert range_code_v2_by_sample(rows, 15) == range_code_v2(rows, 15)


GRID = CodecV2Config(enabled=True, grid=True, block_sweeps=8)
GRID_SMALL = CodecV2Config(enabled=True, grid=True, block_sweeps=4, taps=3, level_tap=False,
                           contexts=5, shift_offset=0, rate_max=6, mu=3, weight_bits=6,
                           grid_bits=12)


@pytest.mark.parametrize("kind", GRID_STIMULI)
@pytest.mark.parametrize("config", [GRID, GRID_SMALL], ids=["default", "small"])
def test_symbols_and_range_coder_are_the_golden_model_with_a_grid(kind: str,
                                                                   config: CodecV2Config):
    """Over a value grid: codes, ESCAPEs (their length-coded raw fields, their cost in the
    budget), clipped samples and verbatim blocks give the golden model's bytes."""
    samples = v2_stimulus(kind, 48, 6, seed=5)
    grid = grid_of(kind)
    stream, ends, verbatim = encode_v2_stream(samples, config, grid)
    rows = symbol_stream_v2(samples, config, grid)
    per_block = 6 * config.block_sweeps
    assert range_code_v2(rows, per_block) == (bytes(stream), list(ends))
    assert range_code_v2_by_sample(rows, per_block) == (bytes(stream), list(ends))
    coded = budget_v2(rows, per_block)
    assert [int((~coded[i:i + per_block]).sum()) for i in range(0, len(rows), per_block)] \
        == list(verbatim)
    escapes = rows[:, 1] == ESCAPE
    if kind == "grid-white":
        assert escapes.mean() > 0.9 and verbatim.sum() > len(rows) // 2
    else:
        assert 0 < escapes.sum() < len(rows) // 2
    if kind == "grid-wide":
        # the widest fields: zigzag(v - table[s]) of 16 or 17 bits
        assert rows[escapes, SYMBOL_FIELDS.index("length_o")].max() >= 16


@pytest.mark.parametrize("channels", [1, 3, 5])
@pytest.mark.parametrize("kind", ["steps", "spikes", "white", "grid-n1", "grid-white"])
@pytest.mark.parametrize("sync_blocks", [1, 2, 3])
def test_symbols_and_range_coder_are_the_golden_model_with_sync_blocks(
        sync_blocks: int, kind: str, channels: int):
    """Sync blocks: every state reset at a sync block's first sample, the coder flushed at
    the end of the block before it (its end offset after the flush's bytes) and restarted;
    with and without a grid, and the budget going verbatim (white noise)."""
    grid = grid_of(kind)
    config = CodecV2Config(enabled=True, grid=grid is not None, block_sweeps=4,
                           sync_blocks=sync_blocks)
    samples = v2_stimulus(kind, 37, channels, seed=3)     # a last, partial block
    stream, ends, verbatim = encode_v2_stream(samples, config, grid)
    rows = symbol_stream_v2(samples, config, grid)
    per_block = channels * config.block_sweeps
    assert range_code_v2(rows, per_block, sync_blocks) == (bytes(stream), list(ends))
    assert range_code_v2_by_sample(rows, per_block, sync_blocks) == (bytes(stream),
                                                                     list(ends))
    # the resets are real: without them the symbols (or the bytes) differ
    free = symbol_stream_v2(samples, CodecV2Config(**{**config.to_dict(), "sync_blocks": 0}),
                            grid)
    assert not np.array_equal(free, rows) or kind == "grid-white"
    if kind in ("white", "grid-white") and channels > 1:
        assert verbatim.sum() > 0       # blocks of 4 samples: the slack absorbs them


@pytest.mark.parametrize("kind", GRID_STIMULI)
@pytest.mark.parametrize("weights", WEIGHT_KINDS)
@pytest.mark.parametrize("sync_blocks", [0, 2])
def test_symbols_and_range_coder_are_the_golden_model_with_code_weights(
        kind: str, weights: str, sync_blocks: int):
    """Code weights (learned, random, the widest and narrowest totals, alternating) over
    codes, escapes and verbatim blocks: the split's weighted frequencies, onto the coder's
    2**15, give the golden model's bytes, and the weights change them."""
    grid = grid_of(kind)
    config = CodecV2Config(enabled=True, grid=True, code_weights=True, grid_bits=12,
                           block_sweeps=4, sync_blocks=sync_blocks)
    table = weights_of({"weights": weights, "stimulus": kind}, grid)
    samples = v2_stimulus(kind, 48, 5, seed=3)
    stream, ends, _ = encode_v2_stream(samples, config, grid, table)
    rows = symbol_stream_v2(samples, config, grid, weights=table)
    assert range_code_v2(rows, 5 * config.block_sweeps, sync_blocks) == (bytes(stream),
                                                                        list(ends))
    plain = symbol_stream_v2(samples, config, grid)
    assert (plain[:, 2:4] != rows[:, 2:4]).any(), "the weights changed no frequency"
    assert np.array_equal(plain, symbol_stream_v2(
        samples, CodecV2Config(**{**config.to_dict(), "code_weights": False}), grid))


def test_a_bad_weight_table_is_refused():
    grid = grid_of("grid-n1")
    config = CodecV2Config(enabled=True, grid=True, code_weights=True)
    samples = v2_stimulus("grid-n1", 4, 2)
    for bad in (np.zeros(1 << grid.bits), np.full(1 << grid.bits, 256), np.ones(5)):
        with pytest.raises(ConfigError, match="code weights must be"):
            symbol_stream_v2(samples, config, grid, weights=bad)


async def _load_grid(ctx, dut, grid: ValueGrid | None) -> None:
    """The host's set-up before lossless starts: the table, one entry a cycle, and the
    value -> code map's registers."""
    if grid is None:
        return
    reciprocal, shift = grid.reciprocal
    ctx.set(dut.grid_base, grid.base)
    ctx.set(dut.grid_reciprocal, reciprocal)
    ctx.set(dut.grid_shift, shift)
    ctx.set(dut.grid_code_max, (1 << grid.bits) - 1)
    for address, value in enumerate(grid.table().tolist()):
        ctx.set(dut.grid_addr, address)
        ctx.set(dut.grid_data, max(min(value, (1 << 17) - 1), -(1 << 17)))
        ctx.set(dut.grid_write, 1)
        await ctx.tick()
    ctx.set(dut.grid_write, 0)


async def _load_weights(ctx, dut, grid: ValueGrid | None, weights: np.ndarray | None) -> None:
    """The code weights' pairs, one a cycle, then ``weights_on``."""
    if weights is None:
        return
    for word in weight_pair_words(weights, 1 << grid.bits):
        ctx.set(dut.weight_pair, word & 0xFFF)
        ctx.set(dut.weight_data, word >> 16)
        ctx.set(dut.weight_write, 1)
        await ctx.tick()
    ctx.set(dut.weight_write, 0)
    ctx.set(dut.weights_on, 1)


def _run_rtl(samples: np.ndarray, config: CodecV2Config, *, stall_every: int = 0,
             gap_every: int = 0, grid: ValueGrid | None = None,
             weights: np.ndarray | None = None) -> np.ndarray:
    sweeps, channels = samples.shape
    dut = CompressorV2Symbols(channels, config)
    got: list[list[int]] = []
    total = sweeps * channels

    async def source(ctx):
        await _load_grid(ctx, dut, grid)
        await _load_weights(ctx, dut, grid, weights)
        index = 0
        cycle = 0
        while index < total:
            cycle += 1
            if gap_every and cycle % gap_every == 0:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
                continue
            n, c = divmod(index, channels)
            ctx.set(dut.i.payload, {"channel": c, "value": int(samples[n, c]),
                                    "first": int(c == 0)})
            ctx.set(dut.i.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            if ready:
                index += 1
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        cycle = 0
        while len(got) < total:
            cycle += 1
            assert cycle < 20 * total + 100 + 4096, "the coder stopped"
            ready = not (stall_every and cycle % stall_every == 0)
            ctx.set(dut.o.ready, int(ready))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append([int(getattr(payload, name)) for name in SYMBOL_FIELDS])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return np.array(got, np.int64)


WEIGHTED = CodecV2Config(enabled=True, grid=True, code_weights=True)


@pytest.mark.parametrize("kind,channels,config,stall,gap", [
    ("spikes", 6, CodecV2Config(enabled=True), 0, 0),
    ("white", 4, CodecV2Config(enabled=True), 3, 0),
    ("same-context", 5, CodecV2Config(enabled=True), 0, 7),
    ("rails", 2, SMALL, 5, 0),          # 2 channels: the channel hazard stalls the input
    # rate_max 12: a table's count reaches 128 (8 bits)
    ("saturation", 6, CodecV2Config(enabled=True, taps=16, contexts=12, shift_offset=2,
                                    rate_max=12, weight_bits=12), 0, 0),
    # the value grid: codes, escapes (the widest fields), clipped samples, a narrower grid
    # than the build's (grid-wide: 8 of 12 bits), the channel hazard with the front stages
    ("grid-n1", 6, GRID, 3, 0),
    ("grid-wide", 5, GRID_SMALL, 0, 5),
    ("grid-white", 4, GRID, 0, 0),
    ("grid-n1", 2, GRID_SMALL, 4, 0),
    # sync blocks: the channels' epoch bits, the tables' fresh bits (consecutive samples
    # on one table across a sync: the forwarded row is not taken), the hazard (2 channels)
    ("same-context", 5, CodecV2Config(enabled=True, block_sweeps=3, sync_blocks=1), 0, 7),
    ("quiet", 3, CodecV2Config(enabled=True, block_sweeps=2, sync_blocks=3), 3, 0),
    ("rails", 2, CodecV2Config(**{**SMALL.to_dict(), "block_sweeps": 2, "sync_blocks": 2}),
     5, 0),
    ("grid-n1", 4, CodecV2Config(enabled=True, grid=True, block_sweeps=2, sync_blocks=3),
     0, 0),
    # code weights: random (over escapes and clipped samples, with stalls), the widest
    # weighted totals, a narrower grid than the build's
    ("grid-n1", 5, WEIGHTED, 3, 0),
    ("grid-n1", 3, WEIGHTED, 0, 4),
    ("grid-wide", 4, CodecV2Config(enabled=True, grid=True, code_weights=True,
                                   grid_bits=12), 2, 0),
])
def test_rtl_symbols_match_the_model(kind, channels, config, stall, gap):
    samples = v2_stimulus(kind, 48 if kind == "saturation" else 24, channels, seed=1)
    grid = grid_of(kind) if config.grid else None
    weights = None
    if config.code_weights:
        weights = weights_of({"weights": "random" if stall else "heavy", "stimulus": kind},
                             grid)
    expected = symbol_stream_v2(samples, config, grid, weights=weights)
    got = _run_rtl(samples, config, stall_every=stall, gap_every=gap, grid=grid,
                   weights=weights)
    assert got.shape == expected.shape
    for index in range(len(expected)):
        assert list(got[index]) == list(expected[index]), (
            f"sample {index} (sweep {index // channels}, channel {index % channels}): "
            f"{dict(zip(SYMBOL_FIELDS, got[index]))} != "
            f"{dict(zip(SYMBOL_FIELDS, expected[index]))}")


def _run_coder(samples: np.ndarray, config: CodecV2Config, *, stall_every: int = 0,
               grid: ValueGrid | None = None):
    from spikeforge.hdl.compressor_v2_coder import SLOTS, CompressorV2

    sweeps, channels = samples.shape
    dut = CompressorV2(channels, config)
    out = bytearray()
    ends: list[int] = []
    flushed = []
    # the sync blocks' flushes (each ends the block before a sync block), then the
    # stream's (none when the stream ended with a sync flush)
    period = config.sync_blocks * config.block_sweeps
    flushes = sweeps // period if period else 0
    if not period or sweeps % period:
        flushes += 1

    async def source(ctx):
        await _load_grid(ctx, dut, grid)
        for n in range(sweeps):
            for c in range(channels):
                ctx.set(dut.i.payload, {"channel": c, "value": int(samples[n, c]),
                                        "first": int(c == 0)})
                ctx.set(dut.i.valid, 1)
                while not (await ctx.tick().sample(dut.i.ready))[2]:
                    pass
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.flush, 1)          # at once: the flush must wait for the samples
        await ctx.tick()
        ctx.set(dut.flush, 0)

    async def sink(ctx):
        for cycle in range(4 * sweeps * channels + 300 + 4096):
            ready = not (stall_every and cycle % stall_every == 0)
            ctx.set(dut.o.ready, int(ready))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if not (valid and ready):
                continue
            for j in range(SLOTS):
                token = payload.tokens[j]
                if token.valid:
                    if not token.skip:
                        out.append(int(token.byte))
                    out.extend([0x00 if token.carry else 0xFF] * int(token.run))
            if payload.block_end:
                ends.append(len(out))
            if payload.flush:
                flushed.append(len(out))
                if len(flushed) == flushes:
                    return

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert len(flushed) == flushes, f"{len(flushed)} of the coder's {flushes} flushes came out"
    return bytes(out), ends


@pytest.mark.parametrize("kind,stall,config,channels", [
    ("spikes", 0, CodecV2Config(enabled=True, block_sweeps=4), 5),
    ("white", 3, CodecV2Config(enabled=True, block_sweeps=4), 5),  # every bucket, long raw
    ("same-context", 0, CodecV2Config(enabled=True, block_sweeps=3), 5),
    ("rails", 4, SMALL, 5),
    ("bursts", 0, CodecV2Config(enabled=True, block_sweeps=8), 4),   # verbatim mid-block
    # 2 channels: bubbles between the symbols while samples are still inside the symbol
    # stage; the flush must not overtake them
    ("steps", 0, CodecV2Config(enabled=True, block_sweeps=4), 2),
    # the value grid: escapes (7 raw pieces, the widest offsets), verbatim blocks of
    # off-grid noise, a grid narrower than the build's
    ("grid-n1", 3, GRID, 5),
    ("grid-wide", 0, GRID_SMALL, 5),
    ("grid-white", 2, GRID, 4),
    # sync blocks: a flush at the end of the block before each, the coder restarted; the
    # stream ending inside a sync period, and right at its end (no second flush)
    ("steps", 3, CodecV2Config(enabled=True, block_sweeps=3, sync_blocks=1), 3),
    ("spikes", 0, CodecV2Config(enabled=True, block_sweeps=2, sync_blocks=2), 5),
    ("grid-n1", 2, CodecV2Config(enabled=True, grid=True, block_sweeps=2, sync_blocks=3), 4),
    ("white", 3, CodecV2Config(enabled=True, block_sweeps=4, sync_blocks=1), 5),
])
def test_rtl_coder_bytes_match_the_model(kind, stall, config, channels):
    samples = v2_stimulus(kind, 16, channels, seed=1)
    grid = grid_of(kind) if config.grid else None
    stream, expected_ends, verbatim = encode_v2_stream(samples, config, grid)
    got, ends = _run_coder(samples, config, stall_every=stall, grid=grid)
    assert got == bytes(stream)
    # A block's end counts the bytes out by then; the model's last end includes the flush.
    full_blocks = len(samples) // config.block_sweeps
    assert len(ends) == full_blocks
    partial = len(samples) % config.block_sweeps != 0
    assert ends[:full_blocks - 1 + partial] == list(expected_ends[:full_blocks - 1 + partial])
    # (a block that ends with a sync flush ends after the flush's bytes, as the model's)
    if config.sync_blocks and len(samples) % (config.sync_blocks * config.block_sweeps) == 0:
        assert ends == list(expected_ends)      # the stream ended with a sync flush
    if kind in ("white", "bursts", "grid-white"):
        assert verbatim.any(), "the stimulus no longer sends samples verbatim"
