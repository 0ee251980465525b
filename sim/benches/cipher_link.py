"""Link cipher bench: random wire frames in under back-pressure, the output exactly the
model's byte for byte, and every sealed frame decrypted by ``cryptography`` back to its
payload with the right SipHash-2-4 tag.

Frames of every type (IDENTITY passes in the clear; DATA, EVENTS, COMPRESSED, LFP are
sealed) with random payloads of 0..300 bytes (0, 1, 63, 64, 65 and 128 among them: the
keystream block edges) and random seqs. The first frames go while no session is set: the
sealable ones must be withheld (counted, nothing sent). Then a random 56-bit session is set
and the rest go sealed. ``frames_sealed``/``frames_withheld`` must equal the model's counts.
"""

import random

import cocotb
from cocotb.triggers import ClockCycles
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from spikeforge.firmware.framing import CRC_BYTES, HEADER_BYTES, FrameType, build_frame, crc32
from spikeforge.firmware.siphash import siphash24
from spikeforge.firmware.stream_cipher import (
    SEALED,
    TAG_BYTES,
    frame_nonce,
    mac_message,
)
from spikeforge.sim.drivers import Bench, StreamSink, StreamSource, idle_gaps, ready_pattern
from spikeforge.sim.models.cipher import seal_stream, split_frames
from spikeforge.sim.runner import bench_parameters, report

_TYPES = [FrameType.IDENTITY, FrameType.DATA, FrameType.DATA, FrameType.EVENTS,
          FrameType.COMPRESSED, FrameType.LFP]
_EDGES = [0, 1, 63, 64, 65, 128]


def _frames(rng: random.Random, count: int) -> list[bytes]:
    frames = []
    for _ in range(count):
        length = rng.choice(_EDGES) if rng.random() < 0.3 else rng.randrange(301)
        seq = rng.choice([0, rng.randrange(2**32), 2**32 - 1])
        frames.append(build_frame(rng.choice(_TYPES), seq, rng.randbytes(length)))
    return frames


def _decrypt(frame: bytes, cipher_key: bytes, mac_key: bytes, session: int) -> bytes:
    """A sealed frame's plaintext payload, by ``cryptography``; checks the tag and CRC."""
    body, crc = frame[2:-CRC_BYTES], frame[-CRC_BYTES:]
    assert crc32(body) == int.from_bytes(crc, "little"), "sealed frame's CRC is wrong"
    frame_type, seq = frame[2] & ~SEALED, int.from_bytes(frame[3:7], "little")
    ciphertext, tag = frame[HEADER_BYTES:-CRC_BYTES - TAG_BYTES], frame[-CRC_BYTES - TAG_BYTES:-4]
    want = siphash24(mac_key, mac_message(session, frame[2:9], ciphertext))
    assert tag == want.to_bytes(TAG_BYTES, "little"), f"seq {seq}: wrong tag"
    nonce = frame_nonce(session, frame_type, seq)
    decryptor = Cipher(algorithms.ChaCha20(cipher_key, bytes(4) + nonce), mode=None).decryptor()
    return decryptor.update(ciphertext)


@cocotb.test()
async def frames_match_model_and_decrypt(dut):
    params = bench_parameters()
    rng = random.Random(int(params.get("seed", 1)))
    stall = params.get("stall", "some")
    cipher_key, mac_key = bytes.fromhex(params["cipher_key"]), bytes.fromhex(params["mac_key"])
    bench = Bench(dut)
    dut.session.value = 0
    dut.session_valid.value = 0
    source = StreamSource(dut, "i", idle_gaps(rng, stall))
    sink = StreamSink(dut, "o", ready_pattern(rng, stall, busy=0.4))
    await bench.reset()

    before = _frames(rng, int(params["frames_before_session"]))
    after = _frames(rng, int(params["frames"]))
    session = rng.randrange(2**56)
    await source.send(b"".join(before))
    await ClockCycles(dut.clk, 2)
    dut.session.value = session
    dut.session_valid.value = 1
    await source.send(b"".join(after))

    held = seal_stream(b"".join(before), cipher_key, mac_key, None)
    sealed = seal_stream(b"".join(after), cipher_key, mac_key, session)
    want = held.sent + sealed.sent
    got = bytearray()
    for _ in range(len(want)):
        got.append(await sink.recv())
    await ClockCycles(dut.clk, 20)
    assert sink.empty(), "the cipher sent more than the model"
    for at, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a == b, f"byte {at}: cipher {a:#04x}, model {b:#04x}"
    assert int(dut.frames_withheld.value) == held.withheld
    assert int(dut.frames_sealed.value) == sealed.sealed

    # Every sealed frame decrypts (cryptography) to its plaintext payload; clear ones pass.
    out = split_frames(sealed.sent)
    for original, frame in zip(after, out, strict=True):
        if frame[2] & SEALED:
            assert _decrypt(frame, cipher_key, mac_key, session) == original[9:-4]
        else:
            assert frame == original
    report(items=len(want), frames=len(before) + len(after), sealed=sealed.sealed,
           withheld=held.withheld, cycles=bench.cycle())
