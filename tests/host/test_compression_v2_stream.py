"""The host side of the v2 lossless coder: word-cut blocks (``cut_words``, the link's
COMPRESSED payloads) decode, and the segment decoder turns COMPRESSED frames into samples,
losing exactly the sync segment a missing block belongs to."""

import numpy as np
import pytest

from spikeforge.firmware.compression_v2 import CodecV2Config, ValueGrid, cut_words
from spikeforge.firmware.errors import ConfigError
from spikeforge.host.compression import CompressedBlockError, decode_v2
from spikeforge.host.compression_v2_stream import V2Chunk, V2SegmentDecoder
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


# -- the segment decoder: COMPRESSED frames (seq, payload) -> chunks --

def _stitch(chunks: list[V2Chunk], sweeps: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The chunks laid out on the sweep axis, and which sweeps they covered."""
    out = np.zeros((sweeps, channels), np.int16)
    seen = np.zeros(sweeps, bool)
    for chunk in chunks:
        end = chunk.first_sweep + len(chunk.samples)
        assert not seen[chunk.first_sweep:end].any()
        out[chunk.first_sweep:end] = chunk.samples
        seen[chunk.first_sweep:end] = True
    return out, seen


def _run(decoder: V2SegmentDecoder, frames, flushed: bool = False) -> list[V2Chunk]:
    chunks = []
    for seq, payload in frames:
        chunks += decoder.push(seq, payload)
    return chunks + decoder.finish(flushed=flushed)


@pytest.mark.parametrize("sync_blocks", [1, 2, 5])
def test_a_whole_stream_decodes_segment_by_segment(sync_blocks: int) -> None:
    config = CodecV2Config(enabled=True, block_sweeps=4, sync_blocks=sync_blocks)
    samples = _signal(80, 3)                      # 20 blocks: whole segments
    blocks = link_blocks(samples, config)
    decoder = V2SegmentDecoder(3, config)
    chunks = []
    for seq, payload in enumerate(blocks):
        got = decoder.push(seq, payload)
        # a segment decodes as soon as its last (flushed) block is in
        assert len(got) == (1 if (seq + 1) % sync_blocks == 0 else 0)
        chunks += got
    assert decoder.finish() == []
    out, seen = _stitch(chunks, 80, 3)
    assert seen.all() and np.array_equal(out, samples)
    assert (decoder.decoded_sweeps, decoder.lost_sweeps, decoder.undecoded_sweeps,
            decoder.damaged_sweeps, decoder.gaps) == (80, 0, 0, 0, 0)


def test_a_lost_block_loses_exactly_its_segment() -> None:
    config = CodecV2Config(enabled=True, block_sweeps=4, sync_blocks=5)
    samples = _signal(80, 2, seed=7)               # segments: blocks 0-4, 5-9, 10-14, 15-19
    blocks = link_blocks(samples, config)
    frames = [(seq, b) for seq, b in enumerate(blocks) if seq != 7]
    decoder = V2SegmentDecoder(2, config)
    chunks = _run(decoder, frames)
    out, seen = _stitch(chunks, 80, 2)
    assert not seen[20:40].any() and seen[:20].all() and seen[40:].all()
    assert np.array_equal(out[seen], samples[seen])
    assert (decoder.decoded_sweeps, decoder.lost_sweeps, decoder.gaps) == (60, 20, 1)


def test_what_the_framer_drops_after_a_loss_is_counted_once() -> None:
    """The framer drops the rest of a segment after a lost block: seq jumps to the next
    sync block; a lost sync block's whole segment, and then some, likewise."""
    config = CodecV2Config(enabled=True, block_sweeps=2, sync_blocks=4)
    samples = _signal(64, 1, seed=3)                # 32 blocks, 8 segments
    blocks = link_blocks(samples, config)
    lost = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18, 19}   # blocks 5.. up to 16; 18, 19
    decoder = V2SegmentDecoder(1, config)
    chunks = _run(decoder, [(s, b) for s, b in enumerate(blocks) if s not in lost])
    out, seen = _stitch(chunks, 64, 1)
    expect = np.ones(64, bool)
    expect[8:32] = False       # segments 4-7, 8-11, 12-15 (block 4 came but its segment did not)
    expect[32:40] = False      # segment 16-19: 16, 17 came, 18, 19 did not
    assert np.array_equal(seen, expect)
    assert np.array_equal(out[seen], samples[seen])
    assert decoder.lost_sweeps == 32 and decoder.decoded_sweeps == 32
    assert decoder.lost_sweeps + decoder.decoded_sweeps == 64


def test_frames_before_the_first_sync_block_are_lost_and_counted() -> None:
    config = CodecV2Config(enabled=True, block_sweeps=3, sync_blocks=3)
    samples = _signal(36, 2, seed=5)
    blocks = link_blocks(samples, config)
    decoder = V2SegmentDecoder(2, config)
    chunks = _run(decoder, list(enumerate(blocks))[4:])     # joined at block 4
    out, seen = _stitch(chunks, 36, 2)
    assert not seen[:18].any() and seen[18:].all()
    assert np.array_equal(out[18:], samples[18:])
    assert decoder.lost_sweeps == 6        # blocks 4, 5 came but cannot decode


def test_an_open_segment_at_stop_is_not_decoded_unless_known_flushed() -> None:
    config = CodecV2Config(enabled=True, block_sweeps=4, sync_blocks=4)
    samples = _signal(56, 2, seed=11)               # 14 blocks: the last segment has 2
    blocks = link_blocks(samples, config)
    decoder = V2SegmentDecoder(2, config)
    chunks = _run(decoder, enumerate(blocks))
    assert sum(len(c.samples) for c in chunks) == 48
    assert decoder.undecoded_sweeps == 8 and decoder.lost_sweeps == 0
    assert "8 not decoded at stop" in decoder.report()
    # the golden model flushed its last block: a caller that knows it decodes it all
    decoder = V2SegmentDecoder(2, config)
    out, seen = _stitch(_run(decoder, enumerate(blocks), flushed=True), 56, 2)
    assert seen.all() and np.array_equal(out, samples)
    assert decoder.undecoded_sweeps == 0


def test_a_device_whose_coder_did_not_flush_at_stop_leaves_the_open_segment_undecoded() -> None:
    """The device's stream stops mid-segment without a flush: the blocks it sent are the
    word-cut prefix of a longer stream; the complete segments decode, the open one not."""
    config = CodecV2Config(enabled=True, block_sweeps=4, sync_blocks=4)
    samples = _signal(64, 2, seed=13)               # 16 blocks
    blocks = link_blocks(samples, config)[:14]      # the device stopped after block 13
    decoder = V2SegmentDecoder(2, config)
    chunks = _run(decoder, enumerate(blocks))
    out, seen = _stitch(chunks, 64, 2)
    assert seen[:48].all() and not seen[48:].any()
    assert np.array_equal(out[:48], samples[:48])
    assert decoder.undecoded_sweeps == 8


def test_empty_payload_frames_decode() -> None:
    config = CodecV2Config(enabled=True, block_sweeps=1, sync_blocks=10)
    samples = np.full((100, 1), -7, np.int16)
    blocks = link_blocks(samples, config)
    assert sum(1 for b in blocks if b == b"") > 50
    decoder = V2SegmentDecoder(1, config)
    out, seen = _stitch(_run(decoder, enumerate(blocks)), 100, 1)
    assert seen.all() and np.array_equal(out, samples)


def test_the_segment_decoder_decodes_over_the_grid_it_is_given() -> None:
    config = CodecV2Config(enabled=True, block_sweeps=8, sync_blocks=3, grid=True)
    samples, grid = _grid_signal(96, 2)             # 12 blocks, 4 segments
    blocks = link_blocks(samples, config, grid)
    decoder = V2SegmentDecoder(2, config, grid)
    out, seen = _stitch(_run(decoder, [(s, b) for s, b in enumerate(blocks) if s != 4]), 96, 2)
    assert np.array_equal(seen, np.r_[np.ones(24, bool), np.zeros(24, bool), np.ones(48, bool)])
    assert np.array_equal(out[seen], samples[seen])
    with pytest.raises(ConfigError, match="grid"):
        V2SegmentDecoder(2, config)
    # a wrong grid: the segments are counted as not decoding, with the reason
    wrong = ValueGrid.full_scale(9, "toward_zero")
    decoder = V2SegmentDecoder(2, config, wrong)
    assert _run(decoder, enumerate(blocks)) == []
    assert decoder.damaged_sweeps == 96 and "does not decode" in decoder.errors[0]


def _learned_prior(config: CodecV2Config, seed: int) -> np.ndarray:
    """Context tables learned on another recording: those at the end of coding it once."""
    from dataclasses import replace

    from spikeforge.firmware.compression_v2 import restart_tables

    tables, _ = restart_tables(config)
    encode_v2_stream(_signal(400, 3, seed=seed),
                     replace(config, sync_blocks=0, restart_prior=False),
                     end_tables=tables)
    return tables


def test_the_segment_decoder_decodes_a_stream_restarted_from_a_prior() -> None:
    """A restart_prior build restarts every sync segment from the loaded prior: decoded with
    the same prior, every sample comes back; with none (or another), each segment is
    counted as not decoding, never returned wrong."""
    config = CodecV2Config(enabled=True, block_sweeps=8, sync_blocks=3, restart_prior=True)
    prior = _learned_prior(config, seed=40)
    samples = _signal(96, 3, seed=41)                   # 12 blocks, 4 segments
    stream, ends, _ = encode_v2_stream(samples, config, prior=prior)
    count = len(ends)
    flushed = [b == count - 1 or (b + 1) % config.sync_blocks == 0 for b in range(count)]
    blocks = cut_words(bytes(stream), ends, flushed)
    assert blocks != link_blocks(samples, config)        # the prior changed the coding
    decoder = V2SegmentDecoder(3, config, prior=prior)
    out, seen = _stitch(_run(decoder, enumerate(blocks)), 96, 3)
    assert seen.all() and np.array_equal(out, samples)
    assert decoder.decoded_sweeps == 96 and decoder.damaged_sweeps == 0
    for wrong in (None, _learned_prior(config, seed=42)):
        decoder = V2SegmentDecoder(3, config, prior=wrong)
        assert _run(decoder, enumerate(blocks)) == []
        assert decoder.damaged_sweeps == 96 and decoder.decoded_sweeps == 0
        assert "does not decode" in decoder.errors[0]


def test_a_prior_that_does_not_fit_the_coder_is_refused_up_front() -> None:
    config = CodecV2Config(enabled=True, block_sweeps=8, sync_blocks=3, restart_prior=True)
    prior = _learned_prior(config, seed=40)
    with pytest.raises(ConfigError, match="restart prior"):
        V2SegmentDecoder(3, config, prior=prior[:4])
    with pytest.raises(ConfigError, match="rise"):
        V2SegmentDecoder(3, config, prior=prior[:, ::-1].copy())


def test_a_restarted_device_starts_a_new_run() -> None:
    config = CodecV2Config(enabled=True, block_sweeps=4, sync_blocks=2)
    samples = _signal(32, 1, seed=17)
    blocks = link_blocks(samples, config)
    decoder = V2SegmentDecoder(1, config)
    frames = [*enumerate(blocks[:5]), *enumerate(blocks)]     # reset after block 4
    chunks = _run(decoder, frames)
    assert [c.first_sweep for c in chunks] == [0, 8, 0, 8, 16, 24]
    assert decoder.lost_sweeps == 4                # block 4's open segment
    out, seen = _stitch(chunks[2:], 32, 1)
    assert seen.all() and np.array_equal(out, samples)


# -- StreamDecoder: v2 COMPRESSED frames on the link --

def test_stream_decoder_decodes_v2_frames_segment_by_segment() -> None:
    from spikeforge.firmware.config import SystemConfig
    from spikeforge.firmware.wire import FrameType, build_frame, encode_identity
    from spikeforge.host import DataBlock, StreamDecoder

    codec = CodecV2Config(enabled=True, block_sweeps=8, sync_blocks=3, grid=True)
    config = SystemConfig(channels=2, codec_v2=codec)
    samples, grid = _grid_signal(112, 2)              # 14 blocks: segments of 3, last open
    blocks = link_blocks(samples, codec, grid)
    stream = build_frame(FrameType.IDENTITY, 0, encode_identity(config))
    for seq, block in enumerate(blocks):
        if seq != 4:                                   # block 4 lost on the link
            stream += build_frame(FrameType.COMPRESSED, seq, block)
    decoder = StreamDecoder(grid=grid)
    rng = np.random.default_rng(0)
    cuts = sorted(rng.integers(0, len(stream), 30))
    items = [i for a, b in zip([0, *cuts], [*cuts, len(stream)])
             for i in decoder.feed(stream[a:b])]
    items += decoder.flush()
    data = [i for i in items if isinstance(i, DataBlock)]
    assert [(d.seq, d.first_sample, len(d.samples)) for d in data] == [
        (0, 0, 24), (6, 48, 24), (9, 72, 24)]
    for block in data:
        assert block.compressed and block.channels == (0, 1)
        assert not block.samples.flags.writeable
        np.testing.assert_array_equal(
            block.samples, samples[block.first_sample:block.first_sample + 24])
    assert decoder.stats.sequence_gaps == 1 and decoder.stats.malformed == 0
    assert decoder.v2 is not None
    assert decoder.v2.lost_sweeps == 24 and decoder.v2.undecoded_sweeps == 16
    # without the grid the frames are refused, with the reason
    refused = StreamDecoder()
    assert not [i for i in refused.feed(stream) if isinstance(i, DataBlock)]
    assert refused.stats.malformed > 0 and "grid" in str(refused.last_error)


def test_stream_decoder_decodes_v2_frames_with_the_prior_it_is_given() -> None:
    from spikeforge.firmware.config import SystemConfig
    from spikeforge.firmware.wire import FrameType, build_frame, encode_identity
    from spikeforge.host import DataBlock, StreamDecoder

    codec = CodecV2Config(enabled=True, block_sweeps=8, sync_blocks=3, restart_prior=True)
    config = SystemConfig(channels=3, codec_v2=codec)
    prior = _learned_prior(codec, seed=40)
    samples = _signal(48, 3, seed=43)                   # 6 blocks, 2 segments
    stream, ends, _ = encode_v2_stream(samples, codec, prior=prior)
    blocks = cut_words(bytes(stream), ends, [b % 3 == 2 for b in range(len(ends))])
    wire = build_frame(FrameType.IDENTITY, 0, encode_identity(config))
    frames = [build_frame(FrameType.COMPRESSED, seq, b) for seq, b in enumerate(blocks)]

    decoder = StreamDecoder(prior=prior)
    items = decoder.feed(wire + b"".join(frames))
    data = [i for i in items if isinstance(i, DataBlock)]
    assert np.array_equal(np.concatenate([d.samples for d in data]), samples)
    # a prior set once v2 frames flow (Device.load_prior) reaches the segment decoder
    late = StreamDecoder()
    late.feed(wire + frames[0])
    late.prior = prior
    data = [i for i in late.feed(b"".join(frames[1:])) if isinstance(i, DataBlock)]
    assert np.array_equal(np.concatenate([d.samples for d in data]), samples)
    assert late.v2 is not None and late.v2.damaged_sweeps == 0


def test_v1_slots_still_use_the_v1_block() -> None:
    from spikeforge.firmware.compression import CodecConfig
    from spikeforge.firmware.config import SystemConfig
    from spikeforge.firmware.wire import FrameType
    from spikeforge.host.frames import decided_at_sweep

    v1 = SystemConfig(channels=2, codec=CodecConfig(enabled=True, block_sweeps=20))
    v2 = SystemConfig(channels=2, codec_v2=CodecV2Config(enabled=True, block_sweeps=8,
                                                         sync_blocks=4))
    assert decided_at_sweep(v1, FrameType.COMPRESSED, 3) == 60
    assert decided_at_sweep(v2, FrameType.COMPRESSED, 3) == 24
