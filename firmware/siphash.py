"""SipHash-2-4 (Aumasson and Bernstein, 2012): the message authentication code of the
control protocol (:mod:`spikeforge.firmware.control_protocol`, authenticated commands).

A 64-bit tag under a 128-bit key, built only from 64-bit additions, rotations and XORs, so
the device computes it with one small core (:class:`spikeforge.hdl.siphash.SipHash`) and the
host in a few lines of Python. The key and the message are byte strings; the tag is returned
as the little-endian integer of its 8 bytes (as the reference implementation writes it).
"""

from collections.abc import Iterator

from .errors import ConfigError

__all__ = ["KEY_BYTES", "TAG_BYTES", "siphash24", "sip_round", "initial_state", "key_words",
           "message_blocks", "MASK64"]

KEY_BYTES = 16
TAG_BYTES = 8
MASK64 = (1 << 64) - 1
#: "somepseudorandomlygeneratedbytes", the initial constants of v0..v3.
_CONSTANTS = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & MASK64


def sip_round(v: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """One SipRound on the state ``(v0, v1, v2, v3)``."""
    v0, v1, v2, v3 = v
    v0 = (v0 + v1) & MASK64
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & MASK64
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & MASK64
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & MASK64
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def key_words(key: bytes) -> tuple[int, int]:
    """The key as its two little-endian 64-bit words (k0, k1)."""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"a SipHash key must be {KEY_BYTES} bytes, not {len(key)}")
    return int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")


def initial_state(key: bytes) -> tuple[int, int, int, int]:
    """The state before the first message block."""
    k0, k1 = key_words(key)
    return (_CONSTANTS[0] ^ k0, _CONSTANTS[1] ^ k1, _CONSTANTS[2] ^ k0, _CONSTANTS[3] ^ k1)


def message_blocks(message: bytes) -> Iterator[int]:
    """The message as SipHash absorbs it: 64-bit little-endian words, the last one holding
    the remaining bytes and the message length (mod 256) in its top byte."""
    whole = len(message) - len(message) % 8
    for offset in range(0, whole, 8):
        yield int.from_bytes(message[offset:offset + 8], "little")
    yield int.from_bytes(message[whole:], "little") | (len(message) & 0xFF) << 56


def siphash24(key: bytes, message: bytes) -> int:
    """The SipHash-2-4 tag of ``message`` under ``key``."""
    v = initial_state(key)
    for block in message_blocks(message):
        v = (v[0], v[1], v[2], v[3] ^ block)
        v = sip_round(sip_round(v))
        v = (v[0] ^ block, v[1], v[2], v[3])
    v = (v[0], v[1], v[2] ^ 0xFF, v[3])
    for _ in range(4):
        v = sip_round(v)
    return v[0] ^ v[1] ^ v[2] ^ v[3]
