"""Golden model of the ChaCha20 block core (:class:`spikeforge.hdl.chacha20.ChaCha20Block`).

The RFC 8439 block function in plain Python: 32-bit words, little-endian. Checked against
the ``cryptography`` library's ChaCha20 in ``tests/sim/test_cipher_model.py``; the core is
checked against this (and ``cryptography``) in the ``cipher_chacha20`` bench.
"""

__all__ = ["CONSTANTS", "initial_state", "block_words", "block", "keystream",
           "quarter_round", "core_input", "ROUND_CYCLES", "BLOCK_CYCLES"]

_MASK = 0xFFFFFFFF
#: "expand 32-byte k" as four little-endian words.
CONSTANTS = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
#: The core does half of a double round's quarter-rounds' work per cycle: each of the 20
#: rounds (4 quarter-rounds in parallel) takes two cycles.
ROUND_CYCLES = 2
#: Cycles from taking a request to offering its block: 20 rounds and the final addition.
BLOCK_CYCLES = 20 * ROUND_CYCLES + 1


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK


def quarter_round(a: int, b: int, c: int, d: int) -> tuple[int, int, int, int]:
    a = (a + b) & _MASK
    d = _rotl(d ^ a, 16)
    c = (c + d) & _MASK
    b = _rotl(b ^ c, 12)
    a = (a + b) & _MASK
    d = _rotl(d ^ a, 8)
    c = (c + d) & _MASK
    b = _rotl(b ^ c, 7)
    return a, b, c, d


def initial_state(key: bytes, nonce: bytes, counter: int) -> list[int]:
    """The 16-word state: constants, key, block counter, nonce (RFC 8439 section 2.3)."""
    if len(key) != 32 or len(nonce) != 12 or not 0 <= counter <= _MASK:
        raise ValueError("ChaCha20 takes a 32-byte key, a 12-byte nonce and a 32-bit counter")
    return (list(CONSTANTS) + [int.from_bytes(key[k:k + 4], "little") for k in range(0, 32, 4)]
            + [counter] + [int.from_bytes(nonce[k:k + 4], "little") for k in range(0, 12, 4)])


_COLUMNS = ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15))
_DIAGONALS = ((0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))


def block_words(key: bytes, nonce: bytes, counter: int) -> list[int]:
    """The 16 output words of one block (state after 20 rounds plus the initial state)."""
    start = initial_state(key, nonce, counter)
    x = list(start)
    for _ in range(10):
        for group in _COLUMNS + _DIAGONALS:
            values = quarter_round(*(x[i] for i in group))
            for index, value in zip(group, values, strict=True):
                x[index] = value
    return [(a + b) & _MASK for a, b in zip(x, start, strict=True)]


def block(key: bytes, nonce: bytes, counter: int) -> bytes:
    """One 64-byte keystream block."""
    return b"".join(word.to_bytes(4, "little") for word in block_words(key, nonce, counter))


def keystream(key: bytes, nonce: bytes, length: int, counter: int = 0) -> bytes:
    """``length`` keystream bytes from block ``counter`` on."""
    blocks = -(-length // 64)
    return b"".join(block(key, nonce, counter + k) for k in range(blocks))[:length]


def core_input(key: bytes, nonce: bytes, counter: int) -> tuple[int, int, int]:
    """The core's ``key``, ``nonce`` and ``counter`` port values (little-endian integers)."""
    return int.from_bytes(key, "little"), int.from_bytes(nonce, "little"), counter
