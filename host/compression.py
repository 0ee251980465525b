"""Host decoder of the lossless coder: the exact inverse of the gateware and its model.

The bit layout is :mod:`spikeforge.firmware.compression` (``docs/compression.md``). Decoding
is sequential within a block (adaptive per-channel state, variable-length codes), so the
loop is compiled with numba; all blocks handed to :func:`decode` go through one compiled
call. No Amaranth, no sim/ import: a lab PC that records needs neither.
"""

from pathlib import Path

import numba
import numpy as np

from spikeforge.firmware import compression_v2 as v2
from spikeforge.firmware.compression import (
    K_MAX,
    RAW_BITS,
    U_CAP,
    WORD_BITS,
    Codebook,
    CodecConfig,
    initial_rice_sum,
)
from spikeforge.firmware.compression_v2 import CodecV2Config
from spikeforge.firmware.errors import ConfigError, WireFormatError

__all__ = ["decode_block", "decode", "CompressedBlockError", "codebook_from_file", "decode_v2"]


class CompressedBlockError(WireFormatError):
    """A compressed block that does not decode to the expected number of samples."""


def decode_block(data: bytes, channels: int, config: CodecConfig,
                 codebook: Codebook | None = None, *, sweeps: int | None = None) -> np.ndarray:
    """Decode one block into int16 samples of shape ``(sweeps, channels)``.

    ``sweeps`` defaults to ``config.block_sweeps`` (pass it for a shorter last block).
    """
    return decode([data], channels, config, codebook,
                  sweeps=config.block_sweeps if sweeps is None else sweeps)


def _total_sweeps(count: int, block_sweeps: int, sweeps: int | None) -> int:
    """The sweeps ``count`` blocks of ``block_sweeps`` hold: all of them, or ``sweeps`` when
    given (the last block holding the remainder)."""
    full = count * block_sweeps
    total = full if sweeps is None else sweeps
    if count and not full - block_sweeps < total <= full:
        raise CompressedBlockError(
            f"{count} blocks of {block_sweeps} sweeps cannot hold {total} sweeps; "
            f"pass the sweep count the encoder was given")
    return total


def decode(blocks: list[bytes], channels: int, config: CodecConfig,
           codebook: Codebook | None = None, *, sweeps: int | None = None) -> np.ndarray:
    """Decode consecutive blocks into one ``(sweeps, channels)`` int16 array.

    Every block holds ``config.block_sweeps`` sweeps, except that when ``sweeps`` (the total)
    is given, the last block holds the remainder.
    """
    count = len(blocks)
    total = _total_sweeps(count, config.block_sweeps, sweeps)
    if count == 0:
        return np.zeros((0, channels), dtype=np.int16)
    raw = b"".join(blocks)
    if len(raw) % 2 or any(len(b) % 2 for b in blocks):
        raise CompressedBlockError("a compressed block is a whole number of 16-bit words; "
                                   "this one has an odd number of bytes")
    words = np.frombuffer(raw, dtype="<u2").astype(np.uint16)
    ends = np.cumsum([len(b) // 2 for b in blocks]).astype(np.int64)
    if config.codebook:
        if codebook is None:
            raise CompressedBlockError(
                "these blocks were coded with a codebook; pass the codebook the device was "
                "loaded with (learn_codebook on a recording from it)")
        table = codebook.table(config.codebook_bits)
        base, multiplier, shift = codebook.base, codebook.multiplier, codebook.shift
    else:
        table = np.zeros(1, dtype=np.int16)
        base = multiplier = shift = 0
    out = np.empty((total, channels), dtype=np.int16)
    order = config.fixed_order
    status = _decode_kernel(words, ends, out, config.block_sweeps,
                            -1 if order is None else order, config.rice_shift,
                            config.select_shift, initial_rice_sum(config),
                            config.escape_threshold, config.codebook, table, base, multiplier,
                            shift)
    if status >= 0:
        raise CompressedBlockError(
            f"compressed block {status} ends before its {channels} x {config.block_sweeps} "
            "samples, or has words left over; it was not coded with this configuration "
            "(channels, codec parameters, codebook) or is damaged")
    return out


def _tables() -> tuple[np.ndarray, np.ndarray]:
    trailing = np.zeros(256, dtype=np.int64)
    for byte in range(256):
        while byte >> trailing[byte] & 1:
            trailing[byte] += 1
    # rice_k as a table: rice_sum >> (rice_shift + 1) < U_CAP + 1 (the sum saturates).
    k = np.minimum(K_MAX, np.array([int(i).bit_length() for i in range(U_CAP + 1)]))
    return trailing, k.astype(np.int64)


_TRAILING_ONES, _K_TABLE = _tables()


@numba.njit(inline="always")
def _read_raw(acc, fill, use_codebook, base, multiplier, shift, code_max):
    """Takes one raw (escaped, or a block's first) value off the bit accumulator; returns
    ``(acc, fill, value, code)``: the value is the int16 sample, the code its symbol (the
    value itself, or its codebook code)."""
    v = np.int64(acc & np.uint64(0xFFFF))
    if v >= 32768:
        v -= 65536
    acc >>= np.uint64(RAW_BITS)
    fill -= RAW_BITS
    if use_codebook:
        s = min(max(((v - base) * multiplier) >> shift, 0), code_max)
    else:
        s = v
    return acc, fill, v, s


@numba.njit(cache=True, nogil=True)
def _decode_kernel(words, ends, out, block_sweeps, fixed_order, rice_shift, select_shift, sum0,
                   q_limit, use_codebook, table, base, multiplier, shift):
    """Fills ``out``; returns -1, or the index of the first block that does not fit."""
    sweeps, channels = out.shape
    code_max = table.shape[0] - 1
    code_bits = 0
    while (1 << code_bits) <= code_max:
        code_bits += 1
    h1 = np.zeros(channels, np.int64)
    h2 = np.zeros(channels, np.int64)
    h3 = np.zeros(channels, np.int64)
    rice_sum = np.zeros(channels, np.int64)
    cost = np.zeros((channels, 4), np.int64)
    q_mask = np.uint64((1 << q_limit) - 1)
    trailing_ones = _TRAILING_ONES
    k_table = _K_TABLE
    one = np.uint64(1)
    block = 0
    start = 0          # first word of the block
    pos = 0            # next word to load
    end = ends[0]
    loaded = 0         # words loaded, including zeros past the block's end
    acc = np.uint64(0)
    fill = 0
    for n in range(sweeps):
        index = n % block_sweeps
        if index == 0 and n > 0:
            # The block's bits must end in its last word (then only padding follows).
            consumed = WORD_BITS * loaded - fill
            if -(-consumed // WORD_BITS) != end - start:
                return block
            block += 1
            start = end
            pos = end
            end = ends[block]
            loaded = 0
            acc = np.uint64(0)
            fill = 0
        for c in range(channels):
            # Keep at least 48 bits in hand (the longest code); past the block's end, zeros.
            while fill <= 48:
                if pos < end:
                    acc |= np.uint64(words[pos]) << np.uint64(fill)
                    pos += 1
                loaded += 1
                fill += WORD_BITS
            if index == 0:
                if use_codebook and not (acc & one):
                    # flag 0: the code, on the grid
                    s = np.int64((acc >> one) & np.uint64(code_max))
                    acc >>= np.uint64(1 + code_bits)
                    fill -= 1 + code_bits
                    v = np.int64(table[s])
                else:
                    if use_codebook:   # flag 1: the raw value follows
                        acc >>= one
                        fill -= 1
                    acc, fill, v, s = _read_raw(acc, fill, use_codebook, base, multiplier,
                                                shift, code_max)
                out[n, c] = v
                h1[c] = s
                h2[c] = s
                h3[c] = s
                rice_sum[c] = sum0
                cost[c, 0] = 0
                cost[c, 1] = 0
                cost[c, 2] = 0
                cost[c, 3] = 0
                continue
            c0 = c1 = c2 = c3 = 0
            hc1 = h1[c]
            hc2 = h2[c]
            hc3 = h3[c]
            p1 = hc1
            p2 = 2 * hc1 - hc2
            p3 = 3 * hc1 - 3 * hc2 + hc3
            if fixed_order < 0:
                # The cheapest recent predictor; ties go to SELECT_TIE_ORDER (1, 2, 3, 0).
                c0 = cost[c, 0]
                c1 = cost[c, 1]
                c2 = cost[c, 2]
                c3 = cost[c, 3]
                p = p1
                best = c1
                p = p2 if c2 < best else p
                best = c2 if c2 < best else best
                p = p3 if c3 < best else p
                best = c3 if c3 < best else best
                p = 0 if c0 < best else p
            elif fixed_order == 1:
                p = p1
            elif fixed_order == 2:
                p = p2
            elif fixed_order == 3:
                p = p3
            else:
                p = 0
            # Unary part: count ones, at most q_limit.
            if (acc & q_mask) == q_mask:
                acc >>= np.uint64(q_limit)
                fill -= q_limit
                acc, fill, v, s = _read_raw(acc, fill, use_codebook, base, multiplier, shift,
                                            code_max)
                e = s - p
                u = 2 * e if e >= 0 else -2 * e - 1
            else:
                q = trailing_ones[acc & np.uint64(0xFF)]
                if q == 8:
                    acc >>= np.uint64(8)
                    while acc & one:
                        acc >>= one
                        q += 1
                    acc >>= one
                else:
                    acc >>= np.uint64(q + 1)
                k = k_table[rice_sum[c] >> (rice_shift + 1)]
                u = (q << k) | np.int64(acc & np.uint64((1 << k) - 1))
                acc >>= np.uint64(k)
                fill -= q + 1 + k
                e = (u >> 1) ^ -(u & 1)
                s = p + e
                if use_codebook:
                    v = np.int64(table[min(max(s, 0), code_max)])
                else:
                    v = s
            out[n, c] = v
            rice_sum[c] += min(u, U_CAP) - (rice_sum[c] >> rice_shift)
            if fixed_order < 0:
                cost[c, 0] = c0 + min(abs(s), U_CAP) - (c0 >> select_shift)
                cost[c, 1] = c1 + min(abs(s - p1), U_CAP) - (c1 >> select_shift)
                cost[c, 2] = c2 + min(abs(s - p2), U_CAP) - (c2 >> select_shift)
                cost[c, 3] = c3 + min(abs(s - p3), U_CAP) - (c3 >> select_shift)
            h3[c] = hc2
            h2[c] = hc1
            h1[c] = s
    consumed = WORD_BITS * loaded - fill
    if -(-consumed // WORD_BITS) != end - start:
        return block
    return -1


def codebook_from_file(path: str | Path, channels: int | None = None) -> Codebook:
    """The codebook to load into a device (``spikeforge record --codebook-from``): a JSON
    file as :meth:`Codebook.to_dict` writes it, or a recording
    (:func:`~spikeforge.host.sample_files.read_sample_file`: WAV, or flat int16 with
    ``channels``) from the same ADC, whose grid
    :func:`~spikeforge.firmware.compression.learn_codebook` learns."""
    import json

    from spikeforge.firmware.compression import learn_codebook

    from .sample_files import RecordingFileError, read_sample_file

    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            return Codebook.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RecordingFileError(
                f"{path} is not a codebook file ({exc}); write one with "
                "json.dump(codebook.to_dict(), file), or give a recording to learn from"
            ) from None
    recording = read_sample_file(path, channels)
    book = learn_codebook(recording.samples)
    if book is None:
        raise RecordingFileError(
            f"{path} has no value grid worth a codebook (its samples are not on a sparse "
            "ADC grid); record without --codebook-from: the coder does as well without one")
    return book


# -- v2: sign-sign LMS + range coder with adaptive CDFs (firmware/compression_v2.py) ----------

def decode_v2(blocks: list[bytes], channels: int, config: CodecV2Config,
              grid: "v2.ValueGrid | None" = None, weights: np.ndarray | None = None, *,
              sweeps: int | None = None, prior: np.ndarray | None = None) -> np.ndarray:
    """Decode consecutive v2 blocks (from a sync point: the stream's start) into one
    ``(sweeps, channels)`` int16 array. Blocks carry state: pass them all, in order, with
    the value grid and code weights the device was loaded with (and the restart ``prior``
    they were coded with, :func:`~spikeforge.firmware.compression_v2.restart_tables`)."""
    count = len(blocks)
    total = _total_sweeps(count, config.block_sweeps, sweeps)
    if count == 0:
        return np.zeros((0, channels), dtype=np.int16)
    if config.grid and grid is None:
        raise CompressedBlockError(
            "these blocks were coded over a value grid; pass the one the device was loaded "
            "with (learn_grid on the stream's first samples)")
    if config.code_weights and weights is None:
        raise CompressedBlockError(
            "these blocks were coded with code weights; pass the table the device was "
            "loaded with (learn_code_weights)")
    stream = np.frombuffer(b"".join(blocks), dtype=np.uint8)
    ends = np.cumsum([len(b) for b in blocks]).astype(np.int64)
    table, padded = _v2_grid_arrays(grid if config.grid else None,
                                    weights if config.code_weights else None)
    base, reciprocal, shift = ((grid.base, *grid.reciprocal) if config.grid and grid
                               else (0, 0, 1))
    out = np.empty((total, channels), dtype=np.int16)
    cdf0, count0 = v2.restart_tables(config, prior)
    status = _decode_v2_kernel(stream, ends, out, config.block_sweeps, config.sync_blocks,
                               config.taps, config.weight_bits, config.mu, config.rate_max,
                               config.grid, config.code_weights, table, base, reciprocal,
                               shift, padded, cdf0, count0, v2.reciprocal_table(),
                               config.level_tap, config.contexts, config.shift_offset)
    if status >= 0:
        raise CompressedBlockError(
            f"v2 stream does not decode at block {status}: not coded with this "
            "configuration (channels, codec parameters, grid, code weights), or damaged")
    return out


def _v2_grid_arrays(grid: "v2.ValueGrid | None",
                    weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The grid's value table and the code weights padded by LITERALS weights of 1
    (:func:`~spikeforge.firmware.compression_v2.padded_code_weights`)."""
    if grid is None:
        return np.zeros(1, np.int64), v2.padded_code_weights(None, 1)
    table = grid.table().astype(np.int64)
    try:
        padded = v2.padded_code_weights(weights, len(table))
    except ConfigError as error:
        raise CompressedBlockError(str(error)) from None
    return table, padded


_V2_SYMBOLS = v2.SYMBOLS
_V2_LITERALS = v2.LITERALS
_V2_ESCAPE = v2.ESCAPE
_V2_SLACK = v2.BUDGET_SLACK_EIGHTHS
_V2_FLOOR = v2.ACCOUNT_FLOOR_EIGHTHS
_V2_TOP = v2.RANGE_TOP
_V2_LIT_BITS = v2.LITERAL_BITS
_V2_LENGTH_BITS = v2.LENGTH_BITS
_V2_UNIT_BITS = v2.WEIGHT_UNIT_BITS
_V2_RECIP_BITS = v2.RECIPROCAL_BITS
_V2_DROP = v2.CDF_STATE_BITS - v2.CDF_BITS
_V2_SHIFT_MAX = v2.SHIFT_MAX
_V2_DC_FRAC = v2.DC_FRAC_BITS
_V2_DC_RATE = v2.DC_RATE
_V2_MEAN_SHIFT = v2.MEAN_SHIFT
_V2_W_LIM = (1 << (v2.WEIGHT_STATE_BITS - 1)) - 1
_V2_H_LIM = (1 << (v2.HISTORY_BITS - 1)) - 1


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_quotient(code, r):
    """code // r for 0 <= code < 2**32, 0 < r < 2**32, through a double division (faster
    than a 64-bit integer one): a quotient just below an integer n is at least 1/r below
    it (r·n <= code < 2**32: relatively 2**-32 or more, far above the double's 2**-53), so
    truncation is exact."""
    return np.int64(np.float64(code) / np.float64(r))


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_raw(stream, pos, code, rng, nbits):
    """Takes nbits raw bits off the range decoder: (pos, code, rng, value); value -1 when
    the stream is not a valid one."""
    x = np.int64(0)
    size = stream.shape[0]
    while nbits > 0:
        k = 8 if nbits > 8 else nbits
        nbits -= k
        r = rng >> k
        y = _v2_quotient(code, r)
        if y >= (1 << k):
            return pos, code, rng, np.int64(-1)
        code -= r * y
        rng = r
        x = (x << k) | y
        while rng < _V2_TOP:
            code = ((code << 8) | (np.int64(stream[pos]) if pos < size else 0)) & 0xFFFFFFFF
            pos += 1
            rng <<= 8
    return pos, code, rng, x


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_refill(stream, pos, code, rng):
    """Renormalises the range decoder: bytes in until the range is RANGE_TOP or more."""
    size = stream.shape[0]
    while rng < _V2_TOP:
        code = ((code << 8) | (np.int64(stream[pos]) if pos < size else 0)) & 0xFFFFFFFF
        pos += 1
        rng <<= 8
    return pos, code, rng


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_sync(stream, pos, cdf, cdf0, count0, weights, hist, prev, count, level):
    """A sync point: every table (to ``cdf0``, its count to ``count0``) and channel back to
    its start, the range decoder restarted on the next 4 bytes. Returns (pos, code, rng)."""
    cdf[:, :] = cdf0
    weights[:, :] = 0
    hist[:, :] = 0
    prev[:] = 0
    count[:] = count0
    level[:, :] = 0
    size = stream.shape[0]
    code = np.int64(0)
    for _ in range(4):
        code = (code << 8) | (np.int64(stream[pos]) if pos < size else 0)
        pos += 1
    return pos, code, np.int64(0xFFFFFFFF)


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_segment_end(stream, pos, start, end):
    """Where a flushed sync segment (from ``start``) ends: the flush's end ``pos`` if the
    blocks end there, else one pad byte 0x00 after a flush that left the segment an odd
    length (``cut_words``: segments start on a word); -1 for anything else."""
    if pos == end:
        return pos
    if (pos - start) % 2 == 1 and pos + 1 == end and stream[pos] == 0:
        return end
    return -1


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_bit_length(x):
    """int.bit_length of x >= 0, compiled."""
    n = 0
    while x > 0:
        x >>= 1
        n += 1
    return n


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_log2_floor_eighths(x):
    """firmware.compression_v2.log2_floor_eighths, compiled."""
    n = _v2_bit_length(x) - 1
    return 8 * n + (((x << 3) >> n) & 7)


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_cost_eighths(frequency, total, raw_bits):
    """firmware.compression_v2.cost_eighths, compiled: a coded sample's cost bound."""
    return (8 * raw_bits + _v2_log2_floor_eighths(total) + 2
            - _v2_log2_floor_eighths(frequency) + 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_symbol_of(e, k, escape):
    """The symbol a verbatim sample would have had (its state moves as if coded)."""
    if escape:
        return _V2_ESCAPE
    es = e >> k
    u = 2 * es if es >= 0 else -2 * es - 1
    if u < _V2_LITERALS:
        return es + _V2_LITERALS // 2
    return _V2_LITERALS + _v2_bit_length(u) - _V2_LIT_BITS - 1


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_verbatim(stream, pos, code, rng, use_grid, base, reciprocal, shift, code_max):
    """A verbatim sample: (pos, code, rng, ok, value, its code on the grid)."""
    pos, code, rng, v = _v2_raw(stream, pos, code, rng, 16)
    if v < 0:
        return pos, code, rng, False, v, v
    if v >= 32768:
        v -= 65536
    if use_grid:
        s = ((v - base) * reciprocal + (1 << (shift - 1))) >> shift
        s = min(max(s, 0), code_max)
    else:
        s = v
    return pos, code, rng, True, v, s


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_predict(weights, hist, c, taps, half, weight_bits, level_weight, xl):
    """Channel c's sign-sign LMS prediction of the next difference (xl: the level tap's
    input, 0 without one)."""
    acc = level_weight * xl
    for t in range(taps):
        acc += weights[c, t] * hist[c, t]
    p = (acc + half) >> weight_bits
    return min(max(p, -65536), 65535)


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_weighted_cum(crow, cum, padded, lo_code):
    """Fills ``cum`` with the cumulative frequencies of the channel's CDF, its literals
    weighted by their codes' weights (from ``lo_code`` on); returns the total."""
    nsym = _V2_SYMBOLS
    lit = _V2_LITERALS
    # the weighted literal frequencies first (independent: vectorised), then their sum
    for j in range(lit):
        f = (((crow[j + 1] >> _V2_DROP) - (crow[j] >> _V2_DROP) + 1)
             * padded[lo_code + j]) >> _V2_UNIT_BITS
        cum[j + 1] = f if f > 0 else 1
    cum[0] = 0
    for j in range(1, lit + 1):
        cum[j] += cum[j - 1]
    # the unweighted symbols' cumulative frequencies in closed form
    base = cum[lit] - (crow[lit] >> _V2_DROP) - lit
    for j in range(lit + 1, nsym + 1):
        cum[j] = base + (crow[j] >> _V2_DROP) + j
    return cum[nsym]


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_scale(total, recip):
    """(multiplier, shift) putting weighted cumulative frequencies of ``total`` on the
    coder's 2**15 (the model's ``_scale``)."""
    sh = _v2_bit_length(total) - _V2_RECIP_BITS
    if sh < 0:
        sh = 0
    q = total >> sh
    if (q << sh) != total:
        q += 1
    return recip[q] - (recip[q] >> 9), 18 + sh


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_search_cum(cum, target, m, sh):
    """The symbol whose scaled interval (``((cum[j] * m) >> sh) + j``) holds ``target``:
    (symbol, low, frequency), on the coder's 2**15."""
    # binary search: the last j whose scaled cumulative frequency is <= target
    lo_i = 0
    hi_i = _V2_SYMBOLS
    while hi_i - lo_i > 1:
        mid = (lo_i + hi_i) >> 1
        if ((cum[mid] * m) >> sh) + mid <= target:
            lo_i = mid
        else:
            hi_i = mid
    sym = lo_i
    lo = ((cum[sym] * m) >> sh) + sym
    return sym, lo, ((cum[sym + 1] * m) >> sh) + sym + 1 - lo


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_search_plain(crow, target):
    """The symbol whose interval of the channel's CDF (total 2**15) holds ``target``:
    (symbol, low, frequency)."""
    # cumulative of symbol j is (crow[j] >> DROP) + j
    lo_i = 0
    hi_i = _V2_SYMBOLS
    while hi_i - lo_i > 1:
        mid = (lo_i + hi_i) >> 1
        if (crow[mid] >> _V2_DROP) + mid <= target:
            lo_i = mid
        else:
            hi_i = mid
    sym = lo_i
    lo = (crow[sym] >> _V2_DROP) + sym
    return sym, lo, (crow[sym + 1] >> _V2_DROP) + sym + 1 - lo


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_adapt_cdf(crow, sym, rate):
    """The channel's CDF moves toward the symbol seen, by 2**-rate."""
    nsym = _V2_SYMBOLS
    span = crow[nsym]
    for j in range(1, nsym):    # one loop of selects, no branches (vectorised)
        c = crow[j]
        crow[j] = c + ((span - c) >> rate) if j > sym else c - (c >> rate)


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_adapt_weights(weights, hist, c, e, taps, mu, w_lim):
    """Channel c's LMS weights learn from the residual e by sign-sign."""
    sg = 1 if e > 0 else (-1 if e < 0 else 0)
    for t in range(taps):
        hx = hist[c, t]
        sx = 1 if hx > 0 else (-1 if hx < 0 else 0)
        w = weights[c, t] + mu * sg * sx
        weights[c, t] = min(max(w, -w_lim), w_lim)


@numba.njit(cache=True, nogil=True, inline="always")
def _v2_context_and_shift(mean, contexts, shift_offset):
    """firmware.compression_v2.context_and_shift, compiled."""
    n = _v2_bit_length(mean >> 4)
    level = 2 * n
    if n >= 2:
        level += (mean >> (n + 2)) & 1
    ctx = min(max(level - 2, 0), contexts - 1)
    k = 0
    if shift_offset > 0:
        k = min(max(n - shift_offset, 0), _V2_SHIFT_MAX)
    return ctx, k


@numba.njit(cache=True, nogil=True)
def _decode_v2_kernel(stream, ends, out, block_sweeps, sync_blocks, taps, weight_bits, mu,
                      rate_max, use_grid, use_weights, table, base, reciprocal, shift, padded,
                      cdf0, count0, recip, level_tap, contexts, shift_offset):
    """Decodes every block into ``out``; returns -1, or the first block that does not
    decode. Stages: sync points, then per sample prediction and context, the value (raw
    once the block's running budget is spent, else the symbol), and adaptation."""
    sweeps, channels = out.shape
    code_max = table.shape[0] - 1
    ntaps = max(taps, 1)
    nsym = _V2_SYMBOLS
    lit = _V2_LITERALS
    cdf = np.zeros((contexts, nsym + 1), np.int64)      # shared by every channel
    count = np.zeros(contexts, np.int64)
    weights = np.zeros((channels, ntaps), np.int64)
    hist = np.zeros((channels, ntaps), np.int64)
    prev = np.zeros(channels, np.int64)
    level = np.zeros((channels, 4), np.int64)   # residual mean, level weight, dc, started
    cum = np.zeros(nsym + 1, np.int64)
    count_max = 16 * (rate_max - 4)
    w_lim = _V2_W_LIM
    h_lim = _V2_H_LIM
    half = 1 << (weight_bits - 1)
    blocks = ends.shape[0]
    pos = 0
    start = 0
    code = np.int64(0)
    rng = np.int64(0)
    for b in range(blocks):
        first = b * block_sweeps
        last = min(sweeps, first + block_sweeps)
        if b == 0 or (sync_blocks > 0 and b % sync_blocks == 0):
            if b > 0:
                pos = _v2_segment_end(stream, pos, start, ends[b - 1])
                if pos < 0:
                    return b - 1
            start = pos
            pos, code, rng = _v2_sync(stream, pos, cdf, cdf0, count0, weights, hist, prev,
                                      count, level)
        account = 0     # the running budget (eighths of a bit beyond raw)
        for n in range(first, last):
            for c in range(channels):
                xl = prev[c] - (level[c, 2] >> _V2_DC_FRAC) if level_tap else 0
                p = _v2_predict(weights, hist, c, taps, half, weight_bits, level[c, 1], xl)
                ctx, k = _v2_context_and_shift(level[c, 0], contexts, shift_offset)
                crow = cdf[ctx]
                if account > _V2_SLACK:
                    pos, code, rng, ok, v, s = _v2_verbatim(stream, pos, code, rng, use_grid,
                                                            base, reciprocal, shift, code_max)
                    if not ok:
                        return b
                    d = s - prev[c]
                    e = d - p
                    sym = _v2_symbol_of(e, k, use_grid and table[s] != v)
                else:
                    if use_weights and k == 0:
                        # cumulative frequencies (literals weighted by their codes)
                        lo_code = prev[c] + p - lit // 2
                        lo_code = min(max(lo_code, -lit), code_max + 1) + lit
                        m, sh = _v2_scale(_v2_weighted_cum(crow, cum, padded, lo_code), recip)
                        r = rng >> 15
                        target = _v2_quotient(code, r)
                        if target >= ((cum[_V2_SYMBOLS] * m) >> sh) + _V2_SYMBOLS:
                            return b
                        sym, lo, fs = _v2_search_cum(cum, target, m, sh)
                    else:
                        r = rng >> 15
                        target = _v2_quotient(code, r)
                        if target >= 1 << 15:
                            return b
                        sym, lo, fs = _v2_search_plain(crow, target)
                    total = np.int64(1 << 15)
                    code -= r * lo
                    rng = r * fs
                    pos, code, rng = _v2_refill(stream, pos, code, rng)
                    if sym == _V2_ESCAPE:
                        pos, code, rng, nb = _v2_raw(stream, pos, code, rng, _V2_LENGTH_BITS)
                        raw = _V2_LENGTH_BITS
                        u = np.int64(0)
                        if nb > 0:
                            raw += nb - 1
                            pos, code, rng, x = _v2_raw(stream, pos, code, rng, nb - 1)
                            u = (np.int64(1) << (nb - 1)) + x
                        pos, code, rng, nb = _v2_raw(stream, pos, code, rng, _V2_LENGTH_BITS)
                        raw += _V2_LENGTH_BITS
                        zo = np.int64(0)
                        if nb > 0:
                            raw += nb - 1
                            pos, code, rng, x = _v2_raw(stream, pos, code, rng, nb - 1)
                            zo = (np.int64(1) << (nb - 1)) + x
                        if nb < 0 or u < 0 or zo < 0 or not use_grid:
                            return b
                        e = (u >> 1) ^ -(u & 1)
                        d = p + e
                        s = prev[c] + d
                        if s < 0 or s > code_max:
                            return b
                        v = table[s] + ((zo >> 1) ^ -(zo & 1))
                    else:
                        raw = 0
                        if sym < lit:
                            es = np.int64(sym - lit // 2)
                        else:
                            nb = sym - lit + _V2_LIT_BITS + 1
                            raw = nb - 1
                            pos, code, rng, x = _v2_raw(stream, pos, code, rng, nb - 1)
                            if x < 0:
                                return b
                            u = (np.int64(1) << (nb - 1)) + x
                            es = (u >> 1) ^ -(u & 1)
                        e = es
                        if k > 0:
                            raw += k
                            pos, code, rng, x = _v2_raw(stream, pos, code, rng, k)
                            if x < 0:
                                return b
                            e = (es << k) + x
                        d = p + e
                        s = prev[c] + d
                        if use_grid:
                            if s < 0 or s > code_max:
                                return b
                            v = table[s]
                        else:
                            v = s
                    account = max(account + _v2_cost_eighths(fs, total, raw) - 128, _V2_FLOOR)
                if v < -32768 or v > 32767:
                    return b
                out[n, c] = v
                # adapt (coded or verbatim alike): the context's CDF (faster while it is
                # young), the residual mean, the LMS weights
                _v2_adapt_cdf(crow, sym, 4 + (count[ctx] >> 4))
                if count[ctx] < count_max:
                    count[ctx] += 1
                ue = 2 * e if e >= 0 else -2 * e - 1
                level[c, 0] += ((ue << 4) - level[c, 0]) >> _V2_MEAN_SHIFT
                _v2_adapt_weights(weights, hist, c, e, taps, mu, w_lim)
                if level_tap:
                    sg = 1 if e > 0 else (-1 if e < 0 else 0)
                    sx = 1 if xl > 0 else (-1 if xl < 0 else 0)
                    level[c, 1] = min(max(level[c, 1] + mu * sg * sx, -w_lim), w_lim)
                for t in range(taps - 1, 0, -1):
                    hist[c, t] = hist[c, t - 1]
                if taps > 0:
                    hist[c, 0] = min(max(d, -h_lim), h_lim)
                if level[c, 3] == 0:
                    level[c, 2] = s << _V2_DC_FRAC
                    level[c, 3] = 1
                else:
                    level[c, 2] += ((s << _V2_DC_FRAC) - level[c, 2]) >> _V2_DC_RATE
                prev[c] = s
    if _v2_segment_end(stream, pos, start, ends[blocks - 1]) < 0:
        return blocks - 1
    return -1
