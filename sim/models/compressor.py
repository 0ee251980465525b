"""Golden model of the lossless coder (:class:`spikeforge.hdl.compressor.Compressor`).

Bit exact with the RTL: :func:`encode` gives, for each block, the bytes the core emits (its
16-bit words, little-endian). The algorithm and bit layout are in
:mod:`spikeforge.firmware.compression` and ``docs/compression.md``. The coder is sequential
per channel (adaptive state), so the kernel is one clear loop, compiled with numba.
"""

import numba
import numpy as np

from spikeforge.firmware.compression import (
    K_MAX,
    RAW_BITS,
    U_CAP,
    WORD_BITS,
    Codebook,
    CodecConfig,
    initial_rice_sum,
    worst_case_words,
)
from spikeforge.firmware.errors import ConfigError

__all__ = ["encode", "encode_words", "symbols", "code_lengths"]


def encode(samples: np.ndarray, config: CodecConfig,
           codebook: Codebook | None = None) -> list[bytes]:
    """Code ``samples`` (int16, shape ``(sweeps, channels)``) block by block.

    Returns one bytes object per block of ``config.block_sweeps`` sweeps; when ``sweeps`` is
    not a multiple, the last block is shorter (the gateware only emits whole blocks; a
    decoder must then be told the sweep count).
    """
    words, ends = encode_words(samples, config, codebook)
    raw = words.astype("<u2").tobytes()
    out = []
    start = 0
    for end in ends:
        out.append(raw[2 * start:2 * end])
        start = end
    return out


def encode_words(samples: np.ndarray, config: CodecConfig,
                 codebook: Codebook | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All blocks as one uint16 word array, and the end index of each block in it."""
    words, ends, _ = _encode(samples, config, codebook)
    return words, ends


def _encode(samples: np.ndarray, config: CodecConfig, codebook: Codebook | None):
    samples = np.ascontiguousarray(samples, dtype=np.int16)
    if samples.ndim != 2:
        raise ConfigError(f"samples must have shape (sweeps, channels), not {samples.shape}")
    sweeps, channels = samples.shape
    if config.codebook and codebook is None:
        raise ConfigError("the codec is configured with codebook=True but no codebook was "
                          "given; pass learn_codebook(recording) or build without a codebook")
    table, base, multiplier, shift = _codebook_arguments(config, codebook)
    blocks = -(-sweeps // config.block_sweeps)
    capacity = max(1, blocks * worst_case_words(channels, config.block_sweeps, config))
    words = np.zeros(capacity, dtype=np.uint16)
    ends = np.zeros(blocks, dtype=np.int64)
    order = config.fixed_order
    lengths = np.zeros((sweeps, channels), dtype=np.int64)
    _encode_kernel(samples, config.block_sweeps, -1 if order is None else order,
                   config.rice_shift, config.select_shift, initial_rice_sum(config),
                   config.escape_threshold, config.codebook, table, base, multiplier, shift,
                   words, ends, lengths)
    return words[:ends[-1] if blocks else 0], ends, lengths


def code_lengths(samples: np.ndarray, config: CodecConfig,
                 codebook: Codebook | None = None) -> np.ndarray:
    """The length in bits of each sample's code, shape ``(sweeps, channels)``: what the
    framer model needs to know when the coder's words come out (its packer emits a word
    each time 16 bits are complete)."""
    return _encode(samples, config, codebook)[2]


def symbols(samples: np.ndarray, config: CodecConfig,
            codebook: Codebook | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The symbol the coder predicts on for each sample, and whether it must be escaped
    because it is off the codebook's grid (all ``False`` without a codebook)."""
    samples = np.asarray(samples, dtype=np.int16)
    if not config.codebook:
        return samples.astype(np.int64), np.zeros(samples.shape, dtype=bool)
    assert codebook is not None
    table = codebook.table(config.codebook_bits)
    codes = codebook.code_of(samples, config.codebook_bits)
    return codes, table[codes] != samples


def _codebook_arguments(config: CodecConfig, codebook: Codebook | None):
    if not config.codebook:
        return np.zeros(1, dtype=np.int16), 0, 0, 0
    assert codebook is not None
    return (codebook.table(config.codebook_bits), codebook.base, codebook.multiplier,
            codebook.shift)


@numba.njit(cache=True)
def _bit_length(x):
    n = 0
    while x > 0:
        x >>= 1
        n += 1
    return n


@numba.njit(cache=True)
def _encode_kernel(samples, block_sweeps, fixed_order, rice_shift, select_shift, sum0, q_limit,
                   use_codebook, table, base, multiplier, shift, words, ends, lengths):
    sweeps, channels = samples.shape
    code_max = table.shape[0] - 1
    code_bits = _bit_length(code_max)
    h1 = np.zeros(channels, np.int64)
    h2 = np.zeros(channels, np.int64)
    h3 = np.zeros(channels, np.int64)
    rice_sum = np.zeros(channels, np.int64)
    cost = np.zeros((channels, 4), np.int64)
    pred = np.zeros(4, np.int64)
    out = 0
    block = 0
    acc = np.uint64(0)
    fill = 0
    for n in range(sweeps):
        index = n % block_sweeps
        for c in range(channels):
            v = np.int64(samples[n, c])
            escape = False
            if use_codebook:
                s = ((v - base) * multiplier) >> shift
                s = min(max(s, 0), code_max)
                escape = np.int64(table[s]) != v
            else:
                s = v
            if index == 0:
                if not use_codebook:
                    bits = np.uint64(v & 0xFFFF)
                    length = RAW_BITS
                elif escape:   # flag 1, then the raw value
                    bits = np.uint64(1) | (np.uint64(v & 0xFFFF) << np.uint64(1))
                    length = 1 + RAW_BITS
                else:          # flag 0, then the code
                    bits = np.uint64(s) << np.uint64(1)
                    length = 1 + code_bits
                h1[c] = s
                h2[c] = s
                h3[c] = s
                rice_sum[c] = sum0
                for j in range(4):
                    cost[c, j] = 0
            else:
                pred[0] = 0
                pred[1] = h1[c]
                pred[2] = 2 * h1[c] - h2[c]
                pred[3] = 3 * h1[c] - 3 * h2[c] + h3[c]
                if fixed_order >= 0:
                    order = fixed_order
                else:
                    # SELECT_TIE_ORDER: a later order wins only when strictly cheaper.
                    order = 1
                    if cost[c, 2] < cost[c, order]:
                        order = 2
                    if cost[c, 3] < cost[c, order]:
                        order = 3
                    if cost[c, 0] < cost[c, order]:
                        order = 0
                e = s - pred[order]
                u = 2 * e if e >= 0 else -2 * e - 1
                k = min(K_MAX, _bit_length(rice_sum[c] >> (rice_shift + 1)))
                q = u >> k
                if escape or q >= q_limit:
                    bits = np.uint64((1 << q_limit) - 1) | (np.uint64(v & 0xFFFF)
                                                            << np.uint64(q_limit))
                    length = q_limit + RAW_BITS
                else:
                    bits = np.uint64((1 << q) - 1) | (np.uint64(u & ((1 << k) - 1))
                                                      << np.uint64(q + 1))
                    length = q + 1 + k
                rice_sum[c] += min(u, U_CAP) - (rice_sum[c] >> rice_shift)
                for j in range(4 if fixed_order < 0 else 0):
                    a = s - pred[j]
                    if a < 0:
                        a = -a
                    cost[c, j] += min(a, U_CAP) - (cost[c, j] >> select_shift)
                h3[c] = h2[c]
                h2[c] = h1[c]
                h1[c] = s
            lengths[n, c] = length
            acc |= bits << np.uint64(fill)
            fill += length
            while fill >= WORD_BITS:
                words[out] = np.uint16(acc & np.uint64(0xFFFF))
                out += 1
                acc >>= np.uint64(WORD_BITS)
                fill -= WORD_BITS
        if index == block_sweeps - 1 or n == sweeps - 1:
            if fill > 0:
                words[out] = np.uint16(acc & np.uint64(0xFFFF))
                out += 1
            acc = np.uint64(0)
            fill = 0
            ends[block] = out
            block += 1
