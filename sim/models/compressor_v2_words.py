"""The v2 coder's output as the link carries it: the range coder's per-entry byte tokens
(what :class:`~spikeforge.hdl.compressor_v2_coder.RangeCoderV2` puts out) -> 16-bit words
cut into blocks (what :class:`~spikeforge.hdl.compressor_v2_words.CodedWordsV2` puts out).

:func:`words_of_tokens` is the golden model of ``CodedWordsV2``. It computes nothing of its
own beyond reading the entries: tokens -> the byte stream and where blocks end, then the
contract's :func:`~spikeforge.firmware.compression_v2.cut_words`, so the gateware is
checked against the contract itself.

Which entry ends a block (the gateware's rule, :data:`CodedWordsV2`'s docstring): an entry
with ``flush`` always ends one (the flush's bytes, then its pad, are the block's); an entry
with ``block_end`` and without ``flush`` ends one unless the next entry is a flush, which
then joins that block (the coder's flush follows the last sample of the block it closes:
the stream's last, the block before a sync block). A ``block_end`` not yet followed by any
entry is still open.

:func:`token_entries_v2` gives the entries the range coder puts out for
:func:`~spikeforge.sim.models.compressor_v2_stages.symbol_stream_v2`'s rows, from
:func:`~spikeforge.sim.models.compressor_v2_stages.range_step_v2`'s byte slots and the
coder's cache / 0xFF-run logic (the gateware's stage E): a bench stimulus drawn from the
real coder, not a second definition of the stream (a test checks its bytes equal
:func:`~spikeforge.sim.models.compressor_v2_stages.range_code_v2`'s).
"""

from dataclasses import dataclass

import numpy as np

from spikeforge.firmware.compression_v2 import cut_words
from spikeforge.sim.models.compressor_v2_stages import _sync_flush, budget_v2, range_step_v2

__all__ = ["Token", "TokenEntry", "WORD_BYTE_ORDER", "expand_entries", "words_of_bytes",
           "words_of_tokens", "token_entries_v2"]

#: The stream's bytes in a 16-bit word: the first of each pair is the word's low byte. The
#: framer sends a payload word low byte first (``hdl/framer_parts.py``), so the link carries
#: the coder's bytes in their own order.
WORD_BYTE_ORDER = "little"


@dataclass(frozen=True)
class Token:
    """A valid token: ``byte`` (not sent when ``skip``: the stream's first byte, always 0),
    then ``run`` bytes of 0xFF (0x00 when ``carry``)."""

    byte: int
    run: int = 0
    carry: bool = False
    skip: bool = False

    def bytes(self) -> bytes:
        head = b"" if self.skip else bytes([self.byte])
        return head + bytes([0x00 if self.carry else 0xFF]) * self.run


@dataclass(frozen=True)
class TokenEntry:
    """One entry of :class:`~spikeforge.hdl.compressor_v2_coder.CodedTokensLayout`: its
    token slots in order (None: an invalid slot), ``block_end`` and ``flush``."""

    tokens: tuple[Token | None, ...] = ()
    block_end: bool = False
    flush: bool = False

    def bytes(self) -> bytes:
        return b"".join(token.bytes() for token in self.tokens if token is not None)


def expand_entries(entries: list[TokenEntry]) -> tuple[bytes, list[int], list[bool]]:
    """The byte stream of ``entries``, and for each block they close (the rule in this
    module's docstring) its end offset and whether it ended with a flush: the arguments
    of :func:`~spikeforge.firmware.compression_v2.cut_words`."""
    stream = bytearray()
    ends: list[int] = []
    flushed: list[bool] = []
    for index, entry in enumerate(entries):
        stream += entry.bytes()
        following = entries[index + 1] if index + 1 < len(entries) else None
        if entry.flush or (entry.block_end and following is not None and not following.flush):
            ends.append(len(stream))
            flushed.append(entry.flush)
    return bytes(stream), ends, flushed


def words_of_bytes(block: bytes) -> list[int]:
    """A block's bytes (even count) as 16-bit words (:data:`WORD_BYTE_ORDER`)."""
    return [int.from_bytes(block[k:k + 2], WORD_BYTE_ORDER) for k in range(0, len(block), 2)]


def words_of_tokens(entries: list[TokenEntry]) -> list[tuple[list[int], bool]]:
    """Per closed block, ``(words, empty)``: its 16-bit words and whether it has none (the
    gateware then sends one ``last``/``empty`` transfer). Tokens -> bytes -> ``cut_words``."""
    stream, ends, flushed = expand_entries(entries)
    blocks = cut_words(stream, ends, flushed)
    return [(words_of_bytes(block), len(block) == 0) for block in blocks]


def token_entries_v2(rows: np.ndarray, samples_per_block: int, sync_blocks: int = 0, *,
                     flush: bool = True) -> list[TokenEntry]:
    """The range coder's entries for ``rows`` (one per sample, ``block_end`` on each full
    block's last; then, with ``flush``, the flush's entry) under the running budget, as
    :class:`~spikeforge.hdl.compressor_v2_coder.CompressorV2` puts them out. With
    ``sync_blocks``, the block before each sync block ends with a flush entry carrying
    ``block_end`` (its last sample then has none) and the coder restarts."""
    coded = budget_v2(rows, samples_per_block)
    entries: list[TokenEntry] = []
    state = (0xFFFFFFFF, 0)
    cache, run, skip = 0, 0, True

    def tokens_of(slots: list[tuple[int, int]]) -> tuple[Token | None, ...]:
        nonlocal cache, run, skip
        out: list[Token | None] = []
        for carry, byte in slots:
            if byte != 0xFF or carry:
                out.append(Token((cache + carry) & 0xFF, run, bool(carry), skip))
                cache, run, skip = byte, 0, False
            else:
                out.append(None)
                run += 1
        return tuple(out)

    def flush_entry(block_end: bool) -> TokenEntry:
        low = state[1]
        slots = []
        for _ in range(5):
            slots.append((low >> 32, (low >> 24) & 0xFF))
            low = (low & 0x00FFFFFF) << 8
        return TokenEntry(tokens_of(slots), block_end=block_end, flush=True)

    for index, row in enumerate(rows.tolist()):
        if _sync_flush(index, samples_per_block, sync_blocks):
            last = entries[-1]
            entries[-1] = TokenEntry(last.tokens, block_end=False)
            entries.append(flush_entry(block_end=True))
            state = (0xFFFFFFFF, 0)
            cache, run, skip = 0, 0, True
        state, slots = range_step_v2(state, row, bool(coded[index]))
        entries.append(TokenEntry(tokens_of(slots),
                                  block_end=index % samples_per_block == samples_per_block - 1))
    if flush:
        entries.append(flush_entry(block_end=False))
    return entries
