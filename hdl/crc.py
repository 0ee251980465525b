"""CRC-32 as used by the wire format (zlib's), one byte per cycle."""

from amaranth.hdl import Cat

__all__ = ["crc32_update"]

_POLY_REFLECTED = 0xEDB88320


def _update_matrix() -> list[int]:
    """For each bit of the next CRC, the mask of (crc, byte) input bits XORed into it.

    Found by running the bit-serial algorithm on symbols: bit k of a value is a mask over
    the 40 inputs (bits 0-31 the CRC, 32-39 the byte).
    """
    crc = [1 << k for k in range(32)]
    for k in range(8):
        crc[k] ^= 1 << (32 + k)
    for _ in range(8):
        lsb = crc[0]
        crc = crc[1:] + [0]
        crc = [bit ^ (lsb if (_POLY_REFLECTED >> k) & 1 else 0) for k, bit in enumerate(crc)]
    return crc


_MATRIX = _update_matrix()


def crc32_update(crc, byte):
    """The running CRC-32 register after ``byte`` (reflected, as :func:`zlib.crc32`).

    ``crc`` starts at 0xFFFFFFFF; the transmitted CRC is its complement. Each output bit is
    one XOR of input bits, so the update is a single shallow layer of logic.
    """
    inputs = Cat(crc, byte)
    return Cat(*[(inputs & mask).xor() for mask in _MATRIX])
