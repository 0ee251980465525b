"""The host frame parser and stream decoder against streams built by the firmware's own
``build_frame``: exact samples for any chunking, garbage and corruption survived, counters
that add up."""

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikeforge.firmware import config as firmware_config
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.wire import HEADER, SYNC, FrameType, build_frame, encode_identity
from spikeforge.host.frames import (
    DataBlock,
    Frame,
    FrameParser,
    Identity,
    LinkStats,
    StreamDecoder,
)

CONFIG = SystemConfig(channels=4, sweeps_per_frame=8)
SEQ_MODULUS = 2**32

FAST = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class SentFrame:
    start: int
    data: bytes
    seq: int
    block: np.ndarray | None  # None for a non-DATA frame


def random_blocks(seed: int, count: int, config: SystemConfig = CONFIG) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-(2**15), 2**15, size=(count, config.sweeps_per_frame, config.channels),
                        dtype=np.int16)


def data_frame(seq: int, block: np.ndarray) -> bytes:
    return build_frame(FrameType.DATA, seq, block.astype("<i2").tobytes())


def identity_frame(seq: int, config: SystemConfig = CONFIG) -> bytes:
    return build_frame(FrameType.IDENTITY, seq, encode_identity(config))


def build_stream(seed: int, count: int, first_seq: int = 0,
                 identity_every: int = 0) -> tuple[bytes, list[SentFrame]]:
    """``count`` DATA frames of random samples, seq numbers from ``first_seq`` (wrapping),
    with an identity frame before the first and every ``identity_every`` data frames."""
    sent: list[SentFrame] = []
    stream = bytearray()
    for index, block in enumerate(random_blocks(seed, count)):
        if identity_every and index % identity_every == 0:
            frame = identity_frame(index // identity_every)
            sent.append(SentFrame(len(stream), frame, index // identity_every, None))
            stream += frame
        seq = (first_seq + index) % SEQ_MODULUS
        frame = data_frame(seq, block)
        sent.append(SentFrame(len(stream), frame, seq, block))
        stream += frame
    return bytes(stream), sent


def decode(chunks: list[bytes], config: SystemConfig | None = CONFIG,
           **kwargs: int) -> tuple[list, StreamDecoder]:
    decoder = StreamDecoder(config, **kwargs)
    items = []
    for chunk in chunks:
        items += decoder.feed(chunk)
    items += decoder.flush()
    return items, decoder


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def blocks_by_seq(items: list) -> dict[int, DataBlock]:
    blocks = [item for item in items if isinstance(item, DataBlock)]
    by_seq = {block.seq: block for block in blocks}
    assert len(by_seq) == len(blocks), "a seq was decoded twice"
    return by_seq


def assert_blocks_true(items: list, sent: list[SentFrame]) -> None:
    truth = {frame.seq: frame.block for frame in sent if frame.block is not None}
    for seq, block in blocks_by_seq(items).items():
        assert seq in truth
        assert block.samples.dtype == np.int16
        assert block.samples.shape == (CONFIG.sweeps_per_frame, CONFIG.channels)
        np.testing.assert_array_equal(block.samples, truth[seq])
        assert block.first_sample == seq * CONFIG.sweeps_per_frame


# -- (1) exact samples, any chunking -----------------------------------------------------------


@FAST
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 20), data=st.data())
def test_samples_are_exact_for_any_split_points(seed: int, count: int, data: st.DataObject):
    stream, sent = build_stream(seed, count, identity_every=7)
    cuts = data.draw(st.lists(st.integers(1, len(stream) - 1), max_size=40))
    items, decoder = decode(split(stream, cuts), config=None)

    assert sorted(blocks_by_seq(items)) == list(range(count))
    assert_blocks_true(items, sent)
    assert decoder.stats == LinkStats(bytes_received=len(stream), frames_ok=len(sent))


def test_byte_at_a_time_equals_all_at_once():
    stream, sent = build_stream(seed=1, count=30, identity_every=10)
    rng = np.random.default_rng(2)
    garbled = bytearray(stream)
    for position in rng.choice(len(stream), size=12, replace=False):
        garbled[position] ^= 1 << int(rng.integers(8))
    garbled = bytes(garbled[:500]) + SYNC + b"\x01junk" + bytes(garbled[500:])

    whole, whole_decoder = decode([garbled])
    bytewise, bytewise_decoder = decode([garbled[i:i + 1] for i in range(len(garbled))])

    assert whole_decoder.stats == bytewise_decoder.stats
    assert whole_decoder.stats.crc_errors > 0
    assert [type(item) for item in whole] == [type(item) for item in bytewise]
    assert blocks_by_seq(whole).keys() == blocks_by_seq(bytewise).keys()
    assert_blocks_true(bytewise, sent)


# -- (2) garbage between frames ----------------------------------------------------------------


def decoy(kind: int, seed: int) -> bytes:
    """Garbage that looks like the start of a frame."""
    foreign = data_frame(10**6 + seed, random_blocks(seed, 1)[0])
    if kind == 0:  # a frame cut short: its length swallows the next real frame
        return foreign[: 1 + seed % (len(foreign) - 1)]
    if kind == 1:  # a whole frame with one bit flipped
        return foreign[:20] + bytes([foreign[20] ^ 0x10]) + foreign[21:]
    if kind == 2:  # sync with a huge length
        return SYNC + HEADER.pack(FrameType.DATA, 0, 0xFFFF)
    return SYNC  # a bare sync


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 12),
    garbage=st.lists(
        st.one_of(st.binary(max_size=60), st.builds(decoy, st.integers(0, 3), st.integers(0, 99))),
        min_size=1, max_size=13,
    ),
    chunk_bytes=st.integers(1, 300),
)
def test_garbage_is_skipped_and_counted(seed: int, count: int, garbage: list[bytes],
                                        chunk_bytes: int):
    _, sent = build_stream(seed, count)
    pieces = []
    for index, frame in enumerate(sent):
        pieces += [garbage[index % len(garbage)], frame.data]
    stream = b"".join([*pieces, garbage[-1]])
    garbage_bytes = len(stream) - sum(len(frame.data) for frame in sent)

    chunks = [stream[i:i + chunk_bytes] for i in range(0, len(stream), chunk_bytes)]
    items, decoder = decode(chunks)

    assert sorted(blocks_by_seq(items)) == list(range(count))
    assert_blocks_true(items, sent)
    assert decoder.stats.frames_ok == count
    assert decoder.stats.bytes_discarded == garbage_bytes
    assert decoder.stats.sequence_gaps == 0
    assert decoder.parser.buffered_bytes == 0


def test_a_length_over_the_limit_is_a_false_sync_that_holds_nothing_back():
    _, sent = build_stream(seed=3, count=1)
    false_sync = SYNC + HEADER.pack(FrameType.DATA, 0, CONFIG.payload_bytes + 1)
    parser = FrameParser(max_payload_bytes=CONFIG.payload_bytes)

    frames = parser.feed(false_sync + sent[0].data)  # no flush: must not wait for more bytes

    assert [frame.seq for frame in frames] == [0]
    assert parser.stats.crc_errors == 0
    assert parser.stats.bytes_discarded == len(false_sync)


def test_a_plausible_false_sync_waits_then_its_hidden_frame_is_recovered():
    _, sent = build_stream(seed=4, count=1)
    parser = FrameParser()
    held = parser.feed(SYNC + HEADER.pack(FrameType.DATA, 0, 1000) + sent[0].data)
    assert held == [] and parser.buffered_bytes > 0

    assert [frame.seq for frame in parser.flush()] == [0]
    assert parser.stats.crc_errors == 0  # never complete, so never CRC-checked
    assert parser.buffered_bytes == 0


# -- (3) random corruption of a long stream ----------------------------------------------------


def corrupt(stream: bytes, operations: list[tuple[int, str, int]]) -> bytes:
    """Apply ("flip", bit) / ("drop", _) / ("insert", byte) at positions of the original
    stream; inserts go before the byte at their position."""
    out = bytearray(stream)
    for position, kind, value in sorted(operations, reverse=True):
        if kind == "flip":
            out[position] ^= 1 << (value % 8)
        elif kind == "drop":
            del out[position]
        else:
            out.insert(position, value)
    return bytes(out)


def touched_frames(sent: list[SentFrame], operations: list[tuple[int, str, int]]) -> set[int]:
    starts = [frame.start for frame in sent]
    touched = set()
    for position, kind, _ in operations:
        index = bisect_right(starts, position) - 1
        if kind == "insert" and position == starts[index]:
            continue  # between two frames: garbage, not damage
        touched.add(index)
    return touched


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    first_seq=st.one_of(st.just(SEQ_MODULUS - 20), st.integers(0, SEQ_MODULUS - 1)),
    data=st.data(),
    chunk_bytes=st.integers(1, 700),
)
def test_corruption_loses_exactly_the_touched_frames(seed: int, first_seq: int,
                                                     data: st.DataObject, chunk_bytes: int):
    count = 40
    stream, sent = build_stream(seed, count, first_seq, identity_every=15)
    operations = data.draw(st.lists(
        st.tuples(st.integers(0, len(stream) - 1), st.sampled_from(["flip", "drop", "insert"]),
                  st.integers(0, 255)),
        min_size=1, max_size=10, unique_by=lambda op: op[0],
    ))
    garbled = corrupt(stream, operations)
    chunks = [garbled[i:i + chunk_bytes] for i in range(0, len(garbled), chunk_bytes)]

    items, decoder = decode(chunks)
    stats = decoder.stats

    # Nothing yielded is wrong.
    assert_blocks_true(items, sent)
    for item in items:
        if isinstance(item, Identity):
            assert item.config == CONFIG
    # Exactly the untouched frames come through; a touched one only if corruption happened to
    # leave its bytes intact (e.g. a drop next to an insert of the same byte).
    touched = touched_frames(sent, operations)
    decoded = {(type(item), item.seq) for item in items}
    untouched = {(DataBlock if frame.block is not None else Identity, frame.seq)
                 for index, frame in enumerate(sent) if index not in touched}
    assert untouched <= decoded
    for index in touched:
        frame = sent[index]
        if (DataBlock if frame.block is not None else Identity, frame.seq) in decoded:
            assert frame.data in garbled
    # Counters add up.
    decoded_frames = [frame for frame in sent
                      if (DataBlock if frame.block is not None else Identity, frame.seq) in decoded]
    assert stats.frames_ok == len(decoded) == len(decoded_frames)
    assert stats.bytes_received == len(garbled)
    assert stats.bytes_discarded == len(garbled) - sum(len(frame.data) for frame in decoded_frames)
    assert stats.malformed == stats.frames_unknown_type == 0
    positions = sorted((seq - first_seq) % SEQ_MODULUS for seq in blocks_by_seq(items))
    span = positions[-1] - positions[0] + 1 if positions else 0
    assert stats.sequence_gaps == span - len(positions)


# -- (4) identity ------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [
    SystemConfig(),
    SystemConfig(channels=8, sweeps_per_frame=16, sample_rate_hz=20_000, baud=1_000_000,
                 link_buffer_samples=4096, identity_interval_frames=7,
                 test_source=firmware_config.TestSourceConfig(
                     seed=0xDEADBEEF, noise_shift=3, spike_rate_hz=12.5)),
])
def test_identity_round_trips_the_configuration(config: SystemConfig):
    items, decoder = decode([identity_frame(5, config)], config=None)
    assert items == [Identity(5, config)]
    assert decoder.config == config


def test_data_before_the_first_identity_waits_for_it():
    stream, sent = build_stream(seed=5, count=6)
    items, decoder = decode([stream], config=None)
    assert items == [] and decoder.pending_frames == 6

    items = decoder.feed(identity_frame(0))
    assert isinstance(items[0], Identity)
    assert sorted(blocks_by_seq(items)) == list(range(6))
    assert_blocks_true(items, sent)
    assert decoder.pending_frames == 0


def test_waiting_data_is_bounded_and_the_overflow_counted():
    stream, _ = build_stream(seed=6, count=10)
    items, decoder = decode([stream + identity_frame(0)], config=None, max_pending_frames=4)
    assert sorted(blocks_by_seq(items)) == [6, 7, 8, 9]
    assert decoder.stats.pending_dropped == 6


def test_a_new_configuration_applies_to_later_data_and_restarts_seq_tracking():
    wide = SystemConfig(channels=8, sweeps_per_frame=8)
    wide_block = random_blocks(7, 1, wide)[0]
    stream = (data_frame(0, random_blocks(7, 1)[0]) + identity_frame(1, wide)
              + data_frame(500, wide_block))
    items, decoder = decode([stream])

    assert [type(item) for item in items] == [DataBlock, Identity, DataBlock]
    np.testing.assert_array_equal(items[2].samples, wide_block)
    assert items[2].samples.shape == (8, 8)
    assert decoder.config == wide
    assert decoder.stats.sequence_gaps == 0


def test_an_undecodable_identity_is_malformed():
    payload = bytearray(encode_identity(CONFIG))
    payload[:4] = b"XXXX"
    items, decoder = decode([build_frame(FrameType.IDENTITY, 0, bytes(payload))], config=None)
    assert items == []
    assert decoder.stats.malformed == 1 and decoder.config is None
    assert "magic" in str(decoder.last_error)


def test_unknown_frame_types_are_yielded_and_counted():
    unknown = build_frame(0x7E, 3, b"from the future")
    status = build_frame(FrameType.STATUS, 4, b"\x00")   # known, not decoded yet
    items, decoder = decode([unknown + status])
    assert items == [Frame(0x7E, 3, b"from the future"), Frame(FrameType.STATUS, 4, b"\x00")]
    assert decoder.stats.frames_unknown_type == 1
    assert decoder.stats.frames_ok == 2


# -- (5) malformed data ------------------------------------------------------------------------


@pytest.mark.parametrize("payload_bytes", [0, CONFIG.payload_bytes - 2, CONFIG.payload_bytes + 2])
def test_data_of_the_wrong_size_is_malformed_and_yields_nothing(payload_bytes: int):
    good = random_blocks(8, 2)
    stream = (data_frame(0, good[0]) + build_frame(FrameType.DATA, 1, bytes(payload_bytes))
              + data_frame(2, good[1]))
    items, decoder = decode([stream])

    assert sorted(blocks_by_seq(items)) == [0, 2]
    assert decoder.stats.malformed == 1
    assert decoder.stats.frames_ok == 3
    assert decoder.stats.sequence_gaps == 0  # seq 1 arrived; it is malformed, not lost
    assert "must carry" in str(decoder.last_error)


# -- (6) sequence gaps -------------------------------------------------------------------------


def seq_stream(seqs: list[int]) -> bytes:
    return b"".join(data_frame(seq, block) for seq, block in zip(
        seqs, random_blocks(9, len(seqs)), strict=True))


def test_sequence_gaps_count_lost_frames_across_the_wrap():
    items, decoder = decode([seq_stream([SEQ_MODULUS - 3, SEQ_MODULUS - 2, 0, 3])])
    assert [item.seq for item in items] == [SEQ_MODULUS - 3, SEQ_MODULUS - 2, 0, 3]
    assert items[2].first_sample == 0
    assert decoder.stats.sequence_gaps == 1 + 2


def test_a_seq_going_backwards_restarts_tracking_without_a_gap():
    _, decoder = decode([seq_stream([100, 101, 5, 7])])
    assert decoder.stats.sequence_gaps == 1


def test_a_bandwidth_mode_switch_is_no_gap_but_losses_within_a_mode_are():
    from spikeforge.firmware.compression import CodecConfig
    from spikeforge.sim.models.compressor import encode

    config = SystemConfig(channels=2, sweeps_per_frame=4,
                          codec=CodecConfig(enabled=True, block_sweeps=8))
    rng = np.random.default_rng(3)
    samples = rng.integers(-300, 300, size=(64, 2)).astype(np.int16)
    blocks = encode(samples, config.codec)

    def data(slot: int) -> bytes:
        block = samples[slot * 4:(slot + 1) * 4]
        return build_frame(FrameType.DATA, slot, block.astype("<i2").tobytes())

    def coded(block: int) -> bytes:
        return build_frame(FrameType.COMPRESSED, block, blocks[block])

    # raw slots 0, 1, (2 lost), 3; lossless blocks 3, (4 lost), 5; raw again from slot 12
    stream = [data(0), data(1), data(3), coded(3), coded(5), data(12), data(13)]
    decoder = StreamDecoder(config)
    items = decoder.feed(build_frame(FrameType.IDENTITY, 0, encode_identity(config))
                         + b"".join(stream))
    got = [i for i in items if isinstance(i, DataBlock)]
    for block in got:
        np.testing.assert_array_equal(
            block.samples, samples[block.first_sample:block.first_sample + len(block.samples)])
    assert [b.first_sample for b in got] == [0, 4, 12, 24, 40, 48, 52]
    assert decoder.stats.sequence_gaps == 2


def test_late_and_duplicate_frames_are_counted_and_dropped_so_time_never_goes_back():
    # A network that reorders and duplicates datagrams: 10, 12, 11 (late), 12 (duplicate), 13.
    items, decoder = decode([seq_stream([10, 12, 11, 12, 13])])
    assert [item.seq for item in items if isinstance(item, DataBlock)] == [10, 12, 13]
    assert decoder.stats.sequence_gaps == 1          # 11: lost to the recording, counted once
    assert decoder.stats.late_frames == 1
    assert decoder.stats.duplicate_frames == 1


def test_a_restart_far_behind_is_not_taken_for_a_late_frame():
    items, decoder = decode([seq_stream([1000, 1001, 0, 1])])
    assert [item.seq for item in items if isinstance(item, DataBlock)] == [1000, 1001, 0, 1]
    assert decoder.stats.late_frames == 0 and decoder.stats.sequence_gaps == 0
