"""The ChaCha20 model against the ``cryptography`` library and RFC 8439; the link cipher model
seals frames that ``cryptography`` decrypts back to the payloads."""

import random

import pytest

from spikeforge.firmware.framing import FrameType, build_frame
from spikeforge.firmware.siphash import siphash24
from spikeforge.firmware.stream_cipher import (
    SEALED,
    TAG_BYTES,
    derive_keys,
    frame_nonce,
    mac_message,
)
from spikeforge.sim.models.chacha20 import block, keystream, quarter_round
from spikeforge.sim.models.cipher import seal_stream, split_frames

algorithms = pytest.importorskip("cryptography.hazmat.primitives.ciphers.algorithms")
ciphers = pytest.importorskip("cryptography.hazmat.primitives.ciphers")


def _reference(key: bytes, nonce: bytes, counter: int, length: int) -> bytes:
    algorithm = algorithms.ChaCha20(key, counter.to_bytes(4, "little") + nonce)
    return ciphers.Cipher(algorithm, mode=None).encryptor().update(bytes(length))


def test_quarter_round_rfc8439_2_1_1():
    assert quarter_round(0x11111111, 0x01020304, 0x9B8D6F43, 0x01234567) == (
        0xEA2A92F4, 0xCB1CF8CE, 0x4581472E, 0x5881C4BB)


def test_block_rfc8439_2_3_2():
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a00000000")
    assert block(key, nonce, 1)[:16].hex() == "10f1e7e4d13b5915500fdd1fa32071c4"


@pytest.mark.parametrize("seed", range(20))
def test_keystream_matches_cryptography(seed):
    rng = random.Random(seed)
    key, nonce = rng.randbytes(32), rng.randbytes(12)
    counter = rng.choice([0, 1, rng.randrange(2**32 - 4), 2**32 - 4])
    length = rng.randrange(1, 200)
    assert keystream(key, nonce, length, counter) == _reference(key, nonce, counter, length)


def test_keys_derive_from_the_control_key_and_differ():
    cipher_a, mac_a = derive_keys(bytes(16))
    cipher_b, mac_b = derive_keys(bytes(15) + b"\x01")
    assert len(cipher_a) == 32 and len(mac_a) == 16
    assert cipher_a != cipher_b and mac_a != mac_b and cipher_a[:16] != mac_a


def test_sealed_frames_decrypt_with_cryptography():
    rng = random.Random(7)
    cipher_key, mac_key = derive_keys(rng.randbytes(16))
    session = rng.randrange(2**56)
    plain = [
        build_frame(FrameType.IDENTITY, 0, b"identity"),
        build_frame(FrameType.DATA, 5, rng.randbytes(200)),
        build_frame(FrameType.EVENTS, 2**32 - 1, rng.randbytes(70)),
        build_frame(FrameType.COMPRESSED, 9, b""),
        build_frame(FrameType.LFP, 1, rng.randbytes(64)),
    ]
    result = seal_stream(b"".join(plain), cipher_key, mac_key, session)
    sealed = split_frames(result.sent)
    assert sealed[0] == plain[0] and result.sealed == 4 and result.withheld == 0
    for original, frame in zip(plain[1:], sealed[1:], strict=True):
        frame_type = original[2]
        seq = int.from_bytes(original[3:7], "little")
        payload = original[9:-4]
        assert frame[2] == frame_type | SEALED
        assert int.from_bytes(frame[7:9], "little") == len(payload) + TAG_BYTES
        ciphertext, tag = frame[9:-4 - TAG_BYTES], frame[-4 - TAG_BYTES:-4]
        stream = _reference(cipher_key, frame_nonce(session, frame_type, seq), 0,
                            len(payload))
        assert bytes(c ^ k for c, k in zip(ciphertext, stream, strict=True)) == payload
        want = siphash24(mac_key, mac_message(session, frame[2:9], ciphertext))
        assert tag == want.to_bytes(8, "little")


def test_without_a_session_sealable_frames_are_withheld():
    frames = [build_frame(FrameType.IDENTITY, 0, b"id"), build_frame(FrameType.DATA, 0, b"xy")]
    result = seal_stream(b"".join(frames), bytes(32), bytes(16), None)
    assert result.sent == frames[0] and result.withheld == 1
