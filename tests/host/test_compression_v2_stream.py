"""The host side of the v2 lossless coder: word-cut blocks (``cut_words``, the link's
COMPRESSED payloads) decode, and the segment decoder turns COMPRESSED frames into samples,
losing exactly the sync segment a missing block belongs to."""

import numpy as np
import pytest

from spikeforge.firmware.compression_v2 import CodecV2Config, ValueGrid, cut_words
from spikeforge.host.compression import CompressedBlockError, decode_v2
from spikeforge.sim.models.compressor_v2 import encode_v2_stream


def _signal(sweeps: int, channels: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.integers(-40, 41, (sweeps, channels)), axis=0)
    return np.clip(walk + rng.integers(-5, 6, (sweeps, channels)), -32768,
                   32767).astype(np.int16)


def _grid_signal(sweeps: int, channels: int, seed: int = 2) -> tuple[np.ndarray, ValueGrid]:
    grid = ValueGrid.full_scale(10, "toward_zero")
    rng = np.random.default_rng(seed)
    codes = np.clip(512 + np.cumsum(rng.integers(-3, 4, (sweeps, channels)), axis=0), 0, 1023)
    return grid.table()[codes].astype(np.int16), grid


def link_blocks(samples: np.ndarray, config: CodecV2Config,
                grid: ValueGrid | None = None) -> list[bytes]:
    """Each block's COMPRESSED payload as the device sends it: the golden model's stream,
    flushed at the block before each sync block and at the last, cut into words."""
    stream, ends, _ = encode_v2_stream(samples, config, grid)
    count = len(ends)
    sync = config.sync_blocks
    flushed = [b == count - 1 or (sync > 0 and (b + 1) % sync == 0) for b in range(count)]
    return cut_words(bytes(stream), ends, flushed)


@pytest.mark.parametrize("sync_blocks", [1, 2, 5])
@pytest.mark.parametrize("sweeps", [37, 40, 41])
@pytest.mark.parametrize("channels", [1, 3])
def test_word_cut_blocks_decode(sync_blocks: int, sweeps: int, channels: int) -> None:
    config = CodecV2Config(enabled=True, block_sweeps=4, sync_blocks=sync_blocks)
    samples = _signal(sweeps, channels, seed=sweeps + channels)
    blocks = link_blocks(samples, config)
    assert all(len(b) % 2 == 0 for b in blocks)
    back = decode_v2(blocks, channels, config, sweeps=sweeps)
    assert np.array_equal(back, samples)


def test_some_word_cut_streams_need_a_pad_and_still_decode() -> None:
    """The test above must cover pads: some flush leaves an odd segment (a 0x00 pad)."""
    padded = 0
    for seed in range(12):
        config = CodecV2Config(enabled=True, block_sweeps=3, sync_blocks=2)
        samples = _signal(30, 2, seed=seed)
        stream, ends, _ = encode_v2_stream(samples, config)
        starts = [0, *ends[1:-1:2]]
        stops = list(ends[1::2]) + ([ends[-1]] if len(ends) % 2 else [])
        padded += sum((int(e) - int(s)) % 2 for s, e in zip(starts, stops))
        assert np.array_equal(decode_v2(link_blocks(samples, config), 2, config, sweeps=30),
                              samples)
    assert padded > 0


def test_empty_blocks_decode() -> None:
    """One channel, a constant signal, a sweep per block: most blocks carry no word."""
    config = CodecV2Config(enabled=True, block_sweeps=1, sync_blocks=50)
    samples = np.full((200, 1), 123, np.int16)
    blocks = link_blocks(samples, config)
    assert sum(1 for b in blocks if not b) > 100
    assert np.array_equal(decode_v2(blocks, 1, config, sweeps=200), samples)


def test_word_cut_blocks_decode_over_a_grid() -> None:
    config = CodecV2Config(enabled=True, block_sweeps=8, sync_blocks=3, grid=True)
    samples, grid = _grid_signal(101, 2)
    back = decode_v2(link_blocks(samples, config, grid), 2, config, grid, sweeps=101)
    assert np.array_equal(back, samples)


def _odd_segment_blocks() -> tuple[list[bytes], CodecV2Config, np.ndarray, int]:
    """Word-cut blocks with a pad at the end of some segment; the index of that pad's
    block."""
    for seed in range(40):
        config = CodecV2Config(enabled=True, block_sweeps=3, sync_blocks=2)
        samples = _signal(24, 2, seed=seed)
        stream, ends, _ = encode_v2_stream(samples, config)
        for b in range(1, len(ends) - 1, 2):
            start = 0 if b == 1 else int(ends[b - 2])
            if (int(ends[b]) - start) % 2:
                return link_blocks(samples, config), config, samples, b
    raise AssertionError("no padded segment found")


def test_only_one_zero_pad_after_an_odd_flush_is_accepted() -> None:
    blocks, config, samples, b = _odd_segment_blocks()
    assert blocks[b][-1] == 0
    assert np.array_equal(decode_v2(blocks, 2, config, sweeps=24), samples)
    for bad in (blocks[b][:-1] + b"\x01",          # the pad must be 0x00
                blocks[b] + b"\x00\x00",           # no more than the pad
                blocks[b][:-2]):                   # nothing missing
        damaged = [*blocks[:b], bad, *blocks[b + 1:]]
        with pytest.raises(CompressedBlockError):
            decode_v2(damaged, 2, config, sweeps=24)


def test_a_flush_without_a_pad_takes_no_extra_byte() -> None:
    """An even segment ends where its flush ends: a trailing byte more is refused."""
    config = CodecV2Config(enabled=True, block_sweeps=4, sync_blocks=1)
    for seed in range(20):
        samples = _signal(4, 1, seed=seed)
        stream, ends, _ = encode_v2_stream(samples, config)
        if len(stream) % 2 == 0:
            break
    blocks = link_blocks(samples, config)
    assert blocks == [bytes(stream)]
    with pytest.raises(CompressedBlockError):
        decode_v2([blocks[0] + b"\x00"], 1, config, sweeps=4)
    with pytest.raises(CompressedBlockError):
        decode_v2([blocks[0] + b"\x00\x00"], 1, config, sweeps=4)
