"""Golden model of the SipHash-2-4 core (:class:`spikeforge.hdl.siphash.SipHash`).

The function itself is :func:`spikeforge.firmware.siphash.siphash24` (checked against the
64 test vectors of the SipHash paper's reference implementation in
``tests/sim/test_siphash_model.py``); this model adds what the core's ports see: the blocks
a message becomes, as :data:`~spikeforge.hdl.siphash.BlockLayout` integers, and when the tag
comes out.
"""

from spikeforge.firmware.siphash import message_blocks, siphash24

__all__ = ["core_blocks", "core_key", "siphash_tag", "tag_latency_cycles", "BUSY_CYCLES"]

#: Cycles the core is busy after taking a block that is not the last (its two compression
#: rounds); after the last it is busy for these and the four finalization rounds.
BUSY_CYCLES = 2


def core_key(key: bytes) -> int:
    """The core's ``key`` port value: the 16 key bytes as one little-endian integer."""
    return int.from_bytes(key, "little")


def core_blocks(message: bytes) -> list[int]:
    """The ``i`` payloads that carry ``message``: block in bits 0..63, ``first`` bit 64,
    ``last`` bit 65."""
    words = list(message_blocks(message))
    return [word | int(k == 0) << 64 | int(k == len(words) - 1) << 65
            for k, word in enumerate(words)]


def siphash_tag(key: bytes, message: bytes) -> int:
    """The tag the core offers on ``o`` for ``message`` under ``key``."""
    return siphash24(key, message)


def tag_latency_cycles() -> int:
    """Cycles from the clock edge that takes the last block to the first cycle the tag is
    offered: two compression and four finalization rounds."""
    return BUSY_CYCLES + 4
