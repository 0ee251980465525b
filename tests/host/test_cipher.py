"""The host opens sealed frames transparently: the decoder yields exactly what the plain
stream gives; wrong key, tampered frame, missing tag and no key are each counted, located
and never delivered."""

import random

import numpy as np
import pytest

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.framing import FrameType, build_frame
from spikeforge.firmware.stream_cipher import derive_keys
from spikeforge.firmware.wire import encode_identity
from spikeforge.host.frames import DataBlock, StreamDecoder
from spikeforge.sim.models.cipher import seal_stream, split_frames

pytest.importorskip("cryptography")
from spikeforge.host.cipher import FrameOpener  # noqa: E402

KEY = bytes(range(16))
SESSION = 0x0123456789ABCD
CONFIG = SystemConfig(channels=4, sweeps_per_frame=2)


def _plain_stream(frames: int = 5) -> bytes:
    rng = random.Random(1)
    out = [build_frame(FrameType.IDENTITY, 0, encode_identity(CONFIG))]
    for seq in range(frames):
        samples = rng.randbytes(2 * CONFIG.sweeps_per_frame * CONFIG.channels)
        out.append(build_frame(FrameType.DATA, seq, samples))
    return b"".join(out)


def _sealed(stream: bytes, key: bytes = KEY, session: int = SESSION) -> bytes:
    return seal_stream(stream, *derive_keys(key), session).sent


def _blocks(items) -> list[DataBlock]:
    return [item for item in items if isinstance(item, DataBlock)]


def test_decrypts_to_exactly_the_plain_stream():
    plain = StreamDecoder().feed(_plain_stream())
    decoder = StreamDecoder(opener=FrameOpener(KEY, SESSION))
    opened = decoder.feed(_sealed(_plain_stream()))
    assert len(_blocks(opened)) == 5
    for a, b in zip(_blocks(plain), _blocks(opened), strict=True):
        assert a.seq == b.seq and np.array_equal(a.samples, b.samples)
    assert decoder.stats.cipher_failures == 0 and decoder.stats.frames_unknown_type == 0


def test_a_lost_frame_costs_nothing_more():
    frames = split_frames(_sealed(_plain_stream()))
    del frames[3]                                     # DATA seq 2 lost on the link
    decoder = StreamDecoder(opener=FrameOpener(KEY, SESSION))
    blocks = _blocks(decoder.feed(b"".join(frames)))
    assert [b.seq for b in blocks] == [0, 1, 3, 4]
    assert decoder.stats.sequence_gaps == 1 and decoder.stats.cipher_failures == 0


def test_wrong_key_every_frame_refused_and_located():
    opener = FrameOpener(bytes(16), SESSION)
    decoder = StreamDecoder(opener=opener)
    assert _blocks(decoder.feed(_sealed(_plain_stream()))) == []
    assert decoder.stats.cipher_failures == 5 == opener.counts["wrong tag"]
    assert [f.seq for f in opener.failures] == [0, 1, 2, 3, 4]
    assert "key or the session is wrong" in str(decoder.last_error)


def test_wrong_session_refused():
    decoder = StreamDecoder(opener=FrameOpener(KEY, SESSION + 1))
    assert _blocks(decoder.feed(_sealed(_plain_stream()))) == []
    assert decoder.stats.cipher_failures == 5


def test_tampered_frame_refused_others_delivered():
    frames = split_frames(_sealed(_plain_stream()))
    body = bytearray(frames[2][2:-4])
    body[10] ^= 0x01                                  # one ciphertext bit of DATA seq 1
    from spikeforge.firmware.framing import crc32
    frames[2] = frames[2][:2] + bytes(body) + crc32(bytes(body)).to_bytes(4, "little")
    opener = FrameOpener(KEY, SESSION)
    decoder = StreamDecoder(opener=opener)
    assert [b.seq for b in _blocks(decoder.feed(b"".join(frames)))] == [0, 2, 3, 4]
    assert opener.counts == {"wrong tag": 1}
    failure = opener.failures[0]
    assert (failure.frame_type, failure.seq) == (FrameType.DATA, 1)
    assert "DATA frame seq 1 has a wrong tag; the frame was altered" in failure.message


def test_missing_tag_plain_frame_never_delivered_when_a_key_is_given():
    opener = FrameOpener(KEY, SESSION)
    decoder = StreamDecoder(opener=opener)
    assert _blocks(decoder.feed(_plain_stream())) == []     # a plain (forged) stream
    assert opener.counts == {"missing tag": 5}
    assert "is not sealed" in str(decoder.last_error)
    # a sealed frame too short for its tag
    short = build_frame(FrameType.DATA | 0x80, 9, b"abc")
    assert decoder.feed(short) == [] and opener.counts["missing tag"] == 6


def test_no_key_sealed_frames_counted_never_decoded():
    decoder = StreamDecoder()
    items = decoder.feed(_sealed(_plain_stream()))
    assert _blocks(items) == [] and decoder.stats.cipher_failures == 5
    assert decoder.stats.frames_unknown_type == 0
    assert "encrypts its stream; give its control key" in str(decoder.last_error)
