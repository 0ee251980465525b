"""The v2 coder as the system builds it (hdl/lossless_v2.py: sample FIFO, CompressorV2,
CodedWordsV2, the framer's word limit), in Amaranth's simulator, against the golden model
cut into link words (firmware.compression_v2.cut_words), and the host decoding those words."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from test_compressor_v2_hdl import _load_grid

from spikeforge.boards.registry import ULX3S_CLOCK_HZ
from spikeforge.boards.ulx3s import CODER_CLOCK_HZ
from spikeforge.firmware.compression_v2 import CodecV2Config, ValueGrid, cut_words
from spikeforge.firmware.config import SystemConfig
from spikeforge.host.compression import decode_v2
from spikeforge.sim.compressor_v2_cases import grid_of, v2_stimulus
from spikeforge.sim.models.compressor_v2 import encode_v2_stream


def _config(channels: int, codec: CodecV2Config) -> SystemConfig:
    return SystemConfig(channels=channels, clock_hz=12_000_000, sample_rate_hz=30_000,
                        link_buffer_samples=4096, codec_v2=codec)


def _expected(samples: np.ndarray, codec: CodecV2Config, grid: ValueGrid | None
              ) -> list[bytes]:
    """The link's blocks: the model's stream (it ends at a sync period's end, so its final
    flush is the sync flush the device makes there) cut into words."""
    stream, ends, _ = encode_v2_stream(samples, codec, grid)
    flushed = [(b + 1) % codec.sync_blocks == 0 for b in range(len(ends))]
    return cut_words(bytes(stream), list(ends), flushed)


def _run(samples: np.ndarray, config: SystemConfig, grid: ValueGrid | None, *,
         gap: int, coder_period: float | None = None) -> tuple[list[bytes], list[dict]]:
    """Feed ``samples`` one every ``gap`` cycles (the source never waits); collect each
    block's payload bytes and its last word's flags. ``coder_period``: the coder in a
    clock domain of its own with this period (``sync``'s is 1)."""
    from spikeforge.hdl.lossless_v2 import LosslessV2

    dut = LosslessV2(config, "sync" if coder_period is None else "coder")
    sweeps, channels = samples.shape
    blocks_total = sweeps // config.codec_v2.block_sweeps
    blocks: list[bytes] = []
    flags: list[dict] = []
    current = bytearray()

    async def source(ctx):
        await _load_grid(ctx, dut, grid)
        for n in range(sweeps):
            for c in range(channels):
                ctx.set(dut.i.payload, {"channel": c, "value": int(samples[n, c]),
                                        "first": int(c == 0)})
                ctx.set(dut.i.valid, 1)
                await ctx.tick()
                ctx.set(dut.i.valid, 0)
                for _ in range(gap - 1):
                    await ctx.tick()

    async def sink(ctx):
        nonlocal current
        for _ in range(gap * sweeps * channels + 4096 + 2000):
            _, _, valid, word = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if not valid:
                continue
            if not (word.empty or word.damaged):
                current += bytes([int(word.data) & 0xFF, int(word.data) >> 8])
            if word.last:
                blocks.append(bytes(current))
                flags.append({"empty": int(word.empty), "damaged": int(word.damaged)})
                current = bytearray()
                if len(blocks) == blocks_total:
                    return

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    if coder_period is not None:
        sim.add_clock(coder_period * 1e-6, domain="coder")
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return blocks, flags


@pytest.mark.parametrize("kind,channels,codec,gap", [
    ("spikes", 3, CodecV2Config(enabled=True, block_sweeps=2, sync_blocks=3), 2),
    # one sample a clock: the FIFO takes the coder's stalls (escapes, flushes)
    ("grid-n1", 4, CodecV2Config(enabled=True, grid=True, block_sweeps=2, sync_blocks=2), 1),
    # off-grid noise: blocks go verbatim, two bytes a sample
    ("grid-white", 4, CodecV2Config(enabled=True, grid=True, block_sweeps=3, sync_blocks=1),
     1),
    # silence: blocks that carry no word
    ("quiet", 1, CodecV2Config(enabled=True, block_sweeps=1, sync_blocks=4), 3),
])
def test_the_system_coder_sends_the_models_words_and_the_host_decodes_them(
        kind, channels, codec, gap):
    period = codec.block_sweeps * codec.sync_blocks
    samples = v2_stimulus(kind, 2 * period if period >= 4 else 4 * period, channels, seed=2)
    grid = grid_of(kind) if codec.grid else None
    config = _config(channels, codec)
    blocks, flags = _run(samples, config, grid, gap=gap)
    expected = _expected(samples, codec, grid)
    assert not any(f["damaged"] for f in flags)
    assert [f["empty"] for f in flags] == [int(not b) for b in expected]
    assert blocks == expected
    decoded = decode_v2(blocks, channels, codec, grid, sweeps=samples.shape[0])
    np.testing.assert_array_equal(decoded, samples)


#: The ULX3S's clocks for codec_v2 builds: ``sync`` 45 MHz, ``coder`` 36.5625 MHz.
ULX3S_CODER_PERIOD = ULX3S_CLOCK_HZ / CODER_CLOCK_HZ


@pytest.mark.parametrize("kind,channels,codec,gap,coder_period", [
    # the ULX3S's ratio, grid and escapes, a sample every 2 sync cycles (the coder
    # keeps up with its stalls through the FIFO)
    ("grid-n1", 4, CodecV2Config(enabled=True, grid=True, block_sweeps=2, sync_blocks=2), 2,
     ULX3S_CODER_PERIOD),
    # verbatim blocks, the coder at the ULX3S's ratio, 3 sync cycles a sample
    ("grid-white", 3, CodecV2Config(enabled=True, grid=True, block_sweeps=3, sync_blocks=1),
     3, ULX3S_CODER_PERIOD),
    # the load of 1024 channels at 30 kS/s on the ULX3S: 1500 / 1024 sync cycles a sample,
    # 1.19 coder cycles (here 2 sync cycles, the coder's period 2 / 1.19)
    ("grid-n1", 4, CodecV2Config(enabled=True, grid=True, block_sweeps=4, sync_blocks=2), 2,
     2 / (1500 / 1024 / ULX3S_CODER_PERIOD)),
    # a coder faster than sync, unrelated periods: words wait in the return FIFO
    ("spikes", 3, CodecV2Config(enabled=True, block_sweeps=2, sync_blocks=3), 1, 0.37),
])
def test_the_coder_in_its_own_clock_domain_sends_the_same_words(
        kind, channels, codec, gap, coder_period):
    """LosslessV2(config, "coder"): the coder and its serialiser on another clock,
    the grid written from sync: the same words as the golden model, no sample lost."""
    period = codec.block_sweeps * codec.sync_blocks
    samples = v2_stimulus(kind, 2 * period if period >= 4 else 4 * period, channels, seed=3)
    grid = grid_of(kind) if codec.grid else None
    blocks, flags = _run(samples, _config(channels, codec), grid, gap=gap,
                         coder_period=coder_period)
    expected = _expected(samples, codec, grid)
    assert not any(f["damaged"] for f in flags)
    assert blocks == expected
    np.testing.assert_array_equal(
        decode_v2(blocks, channels, codec, grid, sweeps=samples.shape[0]), samples)
