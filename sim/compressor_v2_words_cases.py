"""`make sim` cases of the v2 coded-word serialiser (hdl/compressor_v2_words.py) and the
entries they drive: the range coder's own entries on real symbol streams (the split model's
:func:`~spikeforge.sim.models.compressor_v2_words.token_entries_v2`), and adversarial
synthetic entries (every slot valid, long runs of 0xFF and of 0x00 after a carry, the
skipped first byte, blocks with no byte, flushes leaving odd and even counts, a flush that
is its block's end, a block end left open at the stream's end). Every case is compared
word for word, ``last`` and ``empty`` included, with
:func:`~spikeforge.sim.models.compressor_v2_words.words_of_tokens`."""

import random
from typing import Any

from spikeforge.firmware.compression_v2 import CodecV2Config

from .models.compressor_v2_words import Token, TokenEntry
from .suite_case import BenchCase

__all__ = ["CASES", "SYNTHETIC", "pack_entry", "unpack_word", "blocks_of_transfers",
           "words_bench_entries", "synthetic_entries"]

#: Kinds of :func:`synthetic_entries`.
SYNTHETIC = ("full-slots", "long-runs", "empty-blocks", "flushes", "mixed")


def pack_entry(entry: TokenEntry) -> int:
    """``entry`` as the bits of a :class:`~spikeforge.hdl.compressor_v2_coder.
    CodedTokensLayout` value."""
    from spikeforge.hdl.compressor_v2_coder import SLOTS, CodedTokensLayout

    if len(entry.tokens) > SLOTS:
        raise ValueError(f"an entry has at most {SLOTS} token slots, not {len(entry.tokens)}")
    tokens = [{"valid": 1, "skip": int(t.skip), "byte": t.byte, "run": t.run,
               "carry": int(t.carry)} if t is not None else {} for t in entry.tokens]
    tokens += [{}] * (SLOTS - len(tokens))
    return CodedTokensLayout().const({"tokens": tokens, "block_end": int(entry.block_end),
                                      "flush": int(entry.flush)}).as_bits()


def unpack_word(value: int) -> tuple[int, bool, bool]:
    """A :class:`~spikeforge.hdl.compressor_v2_words.CodedWordLayoutV2` value as
    ``(data, last, empty)``."""
    return value & 0xFFFF, bool(value >> 16 & 1), bool(value >> 17 & 1)


def blocks_of_transfers(values: list[int]) -> tuple[list[tuple[list[int], bool]], list[int]]:
    """Transfers -> closed blocks ``(words, empty)`` (the model's form), and the words after
    the last ``last`` (a block not ended yet)."""
    blocks, words = [], []
    for value in values:
        data, last, empty = unpack_word(value)
        if empty:
            if words or not last:
                raise AssertionError(f"an empty marker after {len(words)} words of its block"
                                     f" (last={last})")
            blocks.append(([], True))
            continue
        words.append(data)
        if last:
            blocks.append((words, False))
            words = []
    return blocks, words


def words_bench_entries(params: dict[str, Any]) -> list[TokenEntry]:
    """A case's entries: ``source`` "coder" (the range coder's entries for a
    :func:`~spikeforge.sim.compressor_v2_cases.v2_stimulus`) or a :data:`SYNTHETIC` kind."""
    seed = int(params.get("seed", 1))
    if params["source"] != "coder":
        return synthetic_entries(params["source"], random.Random(seed),
                                 int(params.get("entries", 400)))
    from .compressor_v2_cases import grid_of, v2_stimulus
    from .models.compressor_v2_stages import symbol_stream_v2
    from .models.compressor_v2_words import token_entries_v2

    codec = CodecV2Config(**params["codec"])
    channels, sweeps = int(params["channels"]), int(params["sweeps"])
    samples = v2_stimulus(params["stimulus"], sweeps, channels, seed)
    grid = grid_of(params["stimulus"]) if codec.grid else None
    rows = symbol_stream_v2(samples, codec, grid)
    return token_entries_v2(rows, channels * codec.block_sweeps, codec.sync_blocks)


def _token(rng: random.Random, run: int = 0, carry: bool | None = None) -> Token:
    return Token(rng.randrange(256), run, rng.random() < 0.5 if carry is None else carry)


def synthetic_entries(kind: str, rng: random.Random, count: int) -> list[TokenEntry]:
    """Adversarial entries (not a coder's stream: any slot pattern, any run):

    full-slots: every slot valid, and entries of 0..9 valid slots anywhere; long-runs: runs
    of 1..1000 of 0xFF and of 0x00 (carry), in any slot, several in one entry; empty-blocks:
    blocks of entries with no valid token, one-byte blocks, block ends back to back;
    flushes: flushes leaving odd and even counts, with ``block_end`` on the flush or on the
    entry before, flushes back to back; mixed: all of it. The first token skips (the
    stream's first byte); the stream ends with a flush, except ``empty-blocks`` which ends
    with a block end that no entry follows (its block stays open)."""
    from spikeforge.hdl.compressor_v2_coder import SLOTS

    entries: list[TokenEntry] = []
    for _ in range(count):
        pick = kind if kind != "mixed" else rng.choice(SYNTHETIC[:-1])
        slots: list[Token | None] = [None] * SLOTS
        block_end = flush = False
        if pick == "full-slots":
            valid = SLOTS if rng.random() < 0.4 else rng.randrange(SLOTS + 1)
            for j in rng.sample(range(SLOTS), valid):
                slots[j] = _token(rng, run=rng.choice([0, 0, 0, 1, 2, 3]))
            block_end = rng.random() < 0.05
            flush = rng.random() < 0.02
        elif pick == "long-runs":
            for j in rng.sample(range(SLOTS), rng.randrange(1, 4)):
                slots[j] = _token(rng, run=rng.choice([0, 1, 2, 3, 255, 1000,
                                                       rng.randrange(1, 1001)]))
            block_end = rng.random() < 0.1
            flush = rng.random() < 0.05
        elif pick == "empty-blocks":
            if rng.random() < 0.3:
                slots[rng.randrange(SLOTS)] = _token(rng)
            block_end = rng.random() < 0.5
        else:     # flushes
            for j in sorted(rng.sample(range(SLOTS), rng.randrange(0, 6))):
                slots[j] = _token(rng, run=rng.choice([0, 0, 1, 2]))
            flush = rng.random() < 0.4
            block_end = rng.random() < 0.5
        entries.append(TokenEntry(tuple(slots), block_end, flush))
    # the stream's first byte: the first valid token skips it
    for index, entry in enumerate(entries):
        valid = [j for j, t in enumerate(entry.tokens) if t is not None]
        if valid:
            tokens = list(entry.tokens)
            first = tokens[valid[0]]
            tokens[valid[0]] = Token(0, first.run, first.carry, skip=True)
            entries[index] = TokenEntry(tuple(tokens), entry.block_end, entry.flush)
            break
    if kind == "empty-blocks":
        entries.append(TokenEntry((_token(rng),), block_end=True))
    else:
        entries.append(TokenEntry((_token(rng), None, _token(rng, run=3)), flush=True))
    return entries


def _case(source: str, stall: str, *, entries: int = 400, seed: int = 1,
          **more: Any) -> BenchCase:
    from spikeforge.hdl.compressor_v2_words import CodedWordsV2

    params: dict[str, Any] = {"source": source, "stall": stall, "seed": seed,
                              "entries": entries, **more}
    what = source if source != "coder" else (
        f"coder {more['channels']}ch {more['stimulus']} x{more['sweeps']} "
        f"blocks of {more['codec']['block_sweeps']}")
    return BenchCase(bench="compressor_v2_words", label=f"words {what} stall={stall} seed={seed}",
                     component=CodedWordsV2, params=params)


def _coder(channels: int, stimulus: str, sweeps: int, stall: str, **codec: Any) -> BenchCase:
    if stimulus.startswith("grid"):
        codec = {"grid": True, **codec}
    config = CodecV2Config(enabled=True, **codec)
    return _case("coder", stall, channels=channels, stimulus=stimulus, sweeps=sweeps,
                 codec=config.to_dict())


CASES: tuple[BenchCase, ...] = (
    # the range coder's own entries: white noise (mostly verbatim, 2 bytes a sample),
    # quiet (blocks of 0..1 byte), bursts (coded and verbatim blocks), the grid's escapes
    _coder(8, "white", 64, "random", block_sweeps=8),
    _coder(3, "quiet", 60, "random", block_sweeps=1),
    _coder(6, "bursts", 64, "none", block_sweeps=8),
    _coder(8, "grid-n1", 96, "random", block_sweeps=16),
    # sync blocks: the flush entry carrying block_end, the coder's restart (skip again)
    _coder(5, "bursts", 64, "random", block_sweeps=4, sync_blocks=2),
    # adversarial entries
    _case("full-slots", "random"),
    _case("long-runs", "random", entries=150),
    _case("empty-blocks", "random"),
    _case("flushes", "random"),
    _case("mixed", "random", entries=600, seed=2),
    _case("mixed", "none", entries=600, seed=3),
)
