"""The v2 coded-word serialiser: its model (sim/models/compressor_v2_words.py) against the
contract's cut_words on edge cases, the range coder's entries against the range coder's
bytes, and the core (hdl/compressor_v2_words.py) in Amaranth's simulator against the model
(the cocotb bench, `spikeforge sim compressor_v2_words`, runs the larger cases)."""

import random

import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from spikeforge.firmware.compression_v2 import CodecV2Config, cut_words
from spikeforge.hdl.compressor_v2_words import CodedWordsV2
from spikeforge.sim.compressor_v2_cases import v2_stimulus
from spikeforge.sim.compressor_v2_words_cases import (
    SYNTHETIC,
    blocks_of_transfers,
    pack_entry,
    synthetic_entries,
)
from spikeforge.sim.models.compressor_v2_stages import range_code_v2, symbol_stream_v2
from spikeforge.sim.models.compressor_v2_words import (
    Token,
    TokenEntry,
    expand_entries,
    token_entries_v2,
    words_of_tokens,
)


def _entry(*data: int, block_end: bool = False, flush: bool = False) -> TokenEntry:
    return TokenEntry(tuple(Token(b) for b in data), block_end, flush)


def test_a_block_carries_whole_words_and_the_odd_byte_waits():
    entries = [_entry(1, 2, 3, block_end=True), _entry(4, block_end=True), _entry(5),
               _entry(flush=True)]
    # bytes 1 2 3 | 4 | 5 + pad: the words (1,2) | (3,4) | (5,0); the first byte is low
    assert words_of_tokens(entries) == [([0x0201], False), ([0x0403], False),
                                        ([0x0005], False)]


def test_a_flush_after_a_block_end_joins_that_block_and_pads_an_odd_count():
    entries = [_entry(1, 2, 3, block_end=True), _entry(9, flush=True), _entry(7, 8),
               _entry(block_end=True), _entry(flush=True)]
    stream, ends, flushed = expand_entries(entries)
    assert (stream, ends, flushed) == (bytes([1, 2, 3, 9, 7, 8]), [4, 6], [True, True])
    assert words_of_tokens(entries) == [([0x0201, 0x0903], False), ([0x0807], False)]
    assert [list(b) for b in cut_words(stream, ends, flushed)] == [[1, 2, 3, 9], [7, 8]]


def test_blocks_without_a_word_are_empty_and_an_open_block_end_is_not_a_block():
    entries = [_entry(block_end=True), _entry(5, block_end=True), _entry(block_end=True),
               _entry(6, block_end=True), _entry(block_end=True), _entry(7, block_end=True)]
    # ends 0, 1, 1, 2, 2 (the last block end has no entry after it: still open)
    assert words_of_tokens(entries) == [([], True), ([], True), ([], True),
                                        ([0x0605], False), ([], True)]


def test_a_flush_with_block_end_ends_its_block_once():
    entries = [_entry(1, block_end=True, flush=True), _entry(2, 3, block_end=True, flush=True)]
    assert words_of_tokens(entries) == [([0x0001], False), ([0x0302], False)]


def test_runs_skip_and_carry_expand_as_the_coder_writes_them():
    entries = [TokenEntry((None, Token(0, 2, skip=True), None, Token(0x12, 3, carry=True))),
               _entry(flush=True)]
    stream, _, _ = expand_entries(entries)
    assert stream == bytes([0xFF, 0xFF, 0x12, 0, 0, 0])
    assert words_of_tokens(entries) == [([0xFFFF, 0x0012, 0x0000], False)]


@pytest.mark.parametrize("kind,block_sweeps,sync_blocks", [
    ("white", 8, 0), ("quiet", 1, 0), ("bursts", 4, 0), ("steps", 32, 0), ("white", 4, 3),
    ("quiet", 1, 2), ("bursts", 2, 1)])
def test_the_coder_entries_are_the_range_coders_bytes(kind: str, block_sweeps: int,
                                                      sync_blocks: int):
    """token_entries_v2 (range_step_v2 + the cache / run logic) gives range_code_v2's
    stream and block ends (a partial last block ends with the flush; with sync blocks, the
    block before each sync block ends with a flush)."""
    config = CodecV2Config(enabled=True, block_sweeps=block_sweeps)
    rows = symbol_stream_v2(v2_stimulus(kind, 41, 5, seed=3), config)
    per_block = 5 * block_sweeps
    expected = range_code_v2(rows, per_block, sync_blocks)
    stream, ends, flushed = expand_entries(token_entries_v2(rows, per_block, sync_blocks))
    assert (stream, ends) == expected
    blocks = len(ends)
    syncs = [bool(sync_blocks) and b % sync_blocks == sync_blocks - 1 for b in range(blocks)]
    assert flushed == syncs[:-1] + [True]


def test_the_core_elaborates():
    assert "module" in rtlil.convert(CodedWordsV2())


def _run_core(entries: list[TokenEntry], *, gap_every: int = 0, stall_every: int = 0,
              settle: int = 200) -> tuple[list[int], int, int]:
    """Drives the core; returns its transfers, the cycle the last entry went in and the
    cycles the input was offered (valid) in all."""
    dut = CodedWordsV2()
    packed = [pack_entry(entry) for entry in entries]
    got: list[int] = []
    state = {"last_in": 0, "offered": 0, "done": False}

    async def source(ctx):
        cycle = 0
        index = 0
        while index < len(packed):
            cycle += 1
            if gap_every and cycle % gap_every == 0:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
                continue
            ctx.set(dut.i.payload.as_value(), packed[index])
            ctx.set(dut.i.valid, 1)
            state["offered"] += 1
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            if ready:
                index += 1
        state["last_in"] = cycle
        ctx.set(dut.i.valid, 0)
        await ctx.tick().repeat(settle)
        state["done"] = True

    async def sink(ctx):
        cycle = 0
        while not state["done"]:
            cycle += 1
            ready = not (stall_every and cycle % stall_every == 0)
            ctx.set(dut.o.ready, int(ready))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid,
                                                           dut.o.payload.as_value())
            if valid and ready:
                got.append(int(payload))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return got, state["last_in"], state["offered"]


@pytest.mark.parametrize("kind", SYNTHETIC)
@pytest.mark.parametrize("gap,stall", [(0, 0), (3, 4)])
def test_the_core_is_the_model_on_adversarial_entries(kind: str, gap: int, stall: int):
    entries = synthetic_entries(kind, random.Random(7), 60 if kind != "long-runs" else 20)
    got, _, _ = _run_core(entries, gap_every=gap, stall_every=stall, settle=2000)
    blocks, open_words = blocks_of_transfers(got)
    assert blocks == words_of_tokens(entries)
    assert open_words == []


def test_the_core_takes_a_two_byte_entry_per_clock():
    """2 bytes (2 tokens) an entry, no run, offered every cycle, ``o`` always ready: one
    entry a clock, so one word a clock out."""
    rng = random.Random(3)
    entries = [_entry(rng.randrange(256), rng.randrange(256)) for _ in range(200)]
    entries.append(_entry(flush=True))
    got, last_in, offered = _run_core(entries)
    assert offered == len(entries)          # never refused
    assert last_in == len(entries)
    assert blocks_of_transfers(got)[0] == words_of_tokens(entries)
