"""Golden model of the v2 lossless coder: sign-sign LMS prediction and a multi-symbol range
coder with adaptive CDFs, optionally over an ADC's value grid with per-code weights, bit
exact (the definition the gateware must match).

The contract (alphabet, parameters, grid, worst case) is
:mod:`spikeforge.firmware.compression_v2`; the host decoder
:func:`spikeforge.host.compression.decode_v2`. The coder is sequential per channel, so the
kernel is one loop, compiled with numba. Integer only; the encoder never divides (with code
weights, a symbol's weighted interval is scaled to the coder's power-of-two total through
:func:`~spikeforge.firmware.compression_v2.reciprocal_table`, outside the range's loop).
"""

import numba
import numpy as np

from spikeforge.firmware.compression_v2 import (
    ACCOUNT_FLOOR_EIGHTHS,
    BUDGET_SLACK_EIGHTHS,
    CDF_BITS,
    CDF_STATE_BITS,
    CDF_TOTAL,
    DC_FRAC_BITS,
    DC_RATE,
    ESCAPE,
    HISTORY_BITS,
    LENGTH_BITS,
    LITERAL_BITS,
    LITERALS,
    MEAN_SHIFT,
    RANGE_TOP,
    RECIPROCAL_BITS,
    SHIFT_MAX,
    SYMBOLS,
    WEIGHT_STATE_BITS,
    WEIGHT_UNIT_BITS,
    CodecV2Config,
    ValueGrid,
    padded_code_weights,
    reciprocal_table,
    restart_tables,
)
from spikeforge.firmware.errors import ConfigError

__all__ = ["encode_v2", "encode_v2_stream", "grid_arrays"]

def grid_arrays(grid: ValueGrid | None, weights: np.ndarray | None, grid_bits: int):
    """The arrays the kernels take: value table (int64), base, reciprocal, shift, and the
    code-weight table padded by LITERALS entries of weight 1 on both sides."""
    if grid is None:
        return (np.zeros(1, np.int64), 0, 0, 1, padded_code_weights(None, 1))
    if grid.bits > grid_bits:
        raise ConfigError(f"the value grid has {grid.bits}-bit codes but the coder was built "
                          f"for {grid_bits}; build with grid_bits={grid.bits}")
    table = grid.table().astype(np.int64)
    reciprocal, shift = grid.reciprocal
    padded = padded_code_weights(weights, len(table))
    return table, grid.base, reciprocal, shift, padded


def encode_v2(samples: np.ndarray, config: CodecV2Config, grid: ValueGrid | None = None,
              weights: np.ndarray | None = None, *,
              prior: np.ndarray | None = None) -> list[bytes]:
    """Code ``samples`` (int16, ``(sweeps, channels)``); one bytes object per block (the last
    block ends with the coder's flush). ``prior``: as :func:`encode_v2_stream`."""
    stream, ends, _ = encode_v2_stream(samples, config, grid, weights, prior=prior)
    out, start = [], 0
    for end in ends:
        out.append(stream[start:end].tobytes())
        start = end
    return out


def encode_v2_stream(samples: np.ndarray, config: CodecV2Config,
                     grid: ValueGrid | None = None, weights: np.ndarray | None = None, *,
                     prior: np.ndarray | None = None, end_tables: np.ndarray | None = None):
    """The whole coded stream (uint8), each block's end offset, and how many of each
    block's samples went verbatim (the running budget). ``prior``: the tables every
    (re)start begins from (:func:`~spikeforge.firmware.compression_v2.restart_tables`;
    not in the gateware); ``end_tables``, if given, receives the tables at the end."""
    samples = np.ascontiguousarray(samples, dtype=np.int16)
    if samples.ndim != 2:
        raise ConfigError(f"samples must have shape (sweeps, channels), not {samples.shape}")
    if config.grid and grid is None:
        raise ConfigError("codec v2 configured with grid=True but no value grid given; "
                          "learn one from the stream's first samples (learn_grid)")
    if config.code_weights and weights is None:
        raise ConfigError("codec v2 configured with code_weights=True but no weights given; "
                          "learn them from the device's recordings (learn_code_weights)")
    table, base, reciprocal, shift, padded = grid_arrays(
        grid if config.grid else None, weights if config.code_weights else None,
        config.grid_bits)
    sweeps, channels = samples.shape
    blocks = -(-sweeps // config.block_sweeps)
    # The running budget keeps every block to raw plus a few bytes.
    capacity = samples.size * 2 + blocks * 16 + 64
    out = np.zeros(capacity, np.uint8)
    ends = np.zeros(blocks, np.int64)
    verbatim = np.zeros(blocks, np.int64)
    cdf0, count0 = restart_tables(config, prior)
    tables = np.zeros_like(cdf0) if end_tables is None else end_tables
    length = _encode_kernel(samples, config.block_sweeps, config.sync_blocks, config.taps,
                            config.weight_bits, config.mu, config.rate_max, config.grid,
                            config.code_weights, table, base, reciprocal, shift, padded,
                            cdf0, count0, reciprocal_table(), out, ends, verbatim,
                            config.level_tap, config.contexts, config.shift_offset, tables)
    return out[:length], ends, verbatim


# -- range coder (LZMA-style carry handling: a cached byte and a count of 0xFF bytes) --------

@numba.njit(cache=True, inline="always")
def _shift_low(rc, out):
    # rc: [low, range, cache, cache_size, out_pos, skip_first]
    low = rc[0]
    if low < 0xFF000000 or low >= 0x100000000:
        carry = low >> 32
        temp = rc[2]
        while True:
            if rc[5]:
                rc[5] = 0       # the first byte is always 0: not sent
            else:
                out[rc[4]] = (temp + carry) & 0xFF
                rc[4] += 1
            temp = 0xFF
            rc[3] -= 1
            if rc[3] == 0:
                break
        rc[2] = (low >> 24) & 0xFF
    rc[3] += 1
    rc[0] = (low & 0x00FFFFFF) << 8


@numba.njit(cache=True, inline="always")
def _normalise(rc, out):
    while rc[1] < RANGE_TOP:
        rc[1] <<= 8
        _shift_low(rc, out)


@numba.njit(cache=True, inline="always")
def _encode_raw(rc, out, value, nbits):
    while nbits > 0:
        k = 8 if nbits > 8 else nbits
        nbits -= k
        r = rc[1] >> k
        rc[0] += r * ((value >> nbits) & ((1 << k) - 1))
        rc[1] = r
        _normalise(rc, out)


@numba.njit(cache=True, inline="always")
def _encode_length_coded(rc, out, x):
    """x >= 0 as LENGTH_BITS bits of its bit length, then the bits below its leading one."""
    n = _bit_length(x)
    _encode_raw(rc, out, n, LENGTH_BITS)
    if n > 1:
        _encode_raw(rc, out, x - (1 << (n - 1)), n - 1)
        return LENGTH_BITS + n - 1
    return LENGTH_BITS


@numba.njit(cache=True)
def _flush(rc, out):
    for _ in range(5):
        _shift_low(rc, out)


@numba.njit(cache=True, inline="always")
def _bit_length(x):
    n = 0
    while x > 0:
        x >>= 1
        n += 1
    return n


_DROP = CDF_STATE_BITS - CDF_BITS


@numba.njit(cache=True, inline="always")
def _scale(total, recip):
    """(m, shift) putting weighted cumulative frequencies of ``total`` on the coder's
    power-of-two total as ``((cum * m) >> shift) + j`` (symbol j): ``m`` the reciprocal of
    total's top RECIPROCAL_BITS bits (rounded up) less 2**-9 of itself, so that the last
    symbol's scaled end stays below CDF_TOTAL and every symbol keeps a frequency >= 1."""
    sh = _bit_length(total) - RECIPROCAL_BITS
    if sh < 0:
        sh = 0
    q = total >> sh
    if (q << sh) != total:
        q += 1
    return recip[q] - (recip[q] >> 9), 18 + sh


@numba.njit(cache=True, inline="always")
def _to_power_of_two(lo, f, sym, total, recip):
    """A weighted symbol's (low, frequency) of ``total`` as (low, frequency) of CDF_TOTAL:
    feed-forward, so that the range coder's loop is the unweighted one (``range >>
    CDF_BITS``, one multiply)."""
    m, shift = _scale(total, recip)
    low = ((lo * m) >> shift) + sym
    return low, ((lo + f) * m >> shift) + sym + 1 - low


@numba.njit(cache=True, inline="always")
def _log2_floor_eighths(x):
    """firmware.compression_v2.log2_floor_eighths, compiled."""
    n = _bit_length(x) - 1
    return 8 * n + (((x << 3) >> n) & 7)


@numba.njit(cache=True, inline="always")
def _cost_eighths(frequency, total, raw_bits):
    """firmware.compression_v2.cost_eighths, compiled."""
    return (8 * raw_bits + _log2_floor_eighths(total) + 2
            - _log2_floor_eighths(frequency) + 1)


@numba.njit(cache=True, inline="always")
def _context_and_shift(mean, contexts, shift_offset):
    """firmware.compression_v2.context_and_shift, compiled."""
    n = _bit_length(mean >> 4)
    level = 2 * n
    if n >= 2:
        level += (mean >> (n + 2)) & 1
    ctx = min(max(level - 2, 0), contexts - 1)
    k = 0
    if shift_offset > 0:
        k = min(max(n - shift_offset, 0), SHIFT_MAX)
    return ctx, k


@numba.njit(cache=True, inline="always")
def _frequencies(cdf_row, freq, use_weights, padded, c0, code_max):
    """Each symbol's frequency (``freq``), literals scaled by the weight of the code they
    stand for; returns the total."""
    total = 0
    lo_code = c0 - LITERALS // 2
    if lo_code < -LITERALS:
        lo_code = -LITERALS
    if lo_code > code_max + 1:
        lo_code = code_max + 1
    for j in range(SYMBOLS):
        f = (cdf_row[j + 1] >> _DROP) - (cdf_row[j] >> _DROP) + 1
        if use_weights and j < LITERALS:
            f = (f * padded[lo_code + j + LITERALS]) >> WEIGHT_UNIT_BITS
            if f < 1:
                f = 1
        freq[j] = f
        total += f
    return total


@numba.njit(cache=True)
def _reset(cdf, cdf0, count0, weights, hist, prev, count, level):
    cdf[:, :] = cdf0
    weights[:] = 0
    hist[:] = 0
    prev[:] = 0
    count[:] = count0
    level[:] = 0    # per channel: residual mean, level weight, dc, started


@numba.njit(cache=True)
def _encode_kernel(samples, block_sweeps, sync_blocks, taps, weight_bits, mu, rate_max,
                   use_grid, use_weights, table, base, reciprocal, shift, padded, cdf0, count0,
                   recip, out, ends, verbatim, level_tap, contexts, shift_offset, end_tables):
    sweeps, channels = samples.shape
    code_max = table.shape[0] - 1
    ntaps = max(taps, 1)
    cdf = np.zeros((contexts, SYMBOLS + 1), np.int64)     # shared by every channel
    count = np.zeros(contexts, np.int64)
    weights = np.zeros((channels, ntaps), np.int64)
    hist = np.zeros((channels, ntaps), np.int64)
    prev = np.zeros(channels, np.int64)
    # per channel: [residual mean, level weight, dc, started]
    level = np.zeros((channels, 4), np.int64)
    freq = np.zeros(SYMBOLS, np.int64)
    rc = np.zeros(6, np.int64)
    count_max = 16 * (rate_max - 4)
    w_lim = (1 << (WEIGHT_STATE_BITS - 1)) - 1
    h_lim = (1 << (HISTORY_BITS - 1)) - 1
    half = (1 << (weight_bits - 1))
    round_code = 1 << (shift - 1)
    blocks = ends.shape[0]
    if blocks == 0:
        return 0
    for b in range(blocks):
        first = b * block_sweeps
        last = min(sweeps, first + block_sweeps)
        if b == 0 or (sync_blocks > 0 and b % sync_blocks == 0):
            if b > 0:
                _flush(rc, out)
                ends[b - 1] = rc[4]
            _reset(cdf, cdf0, count0, weights, hist, prev, count, level)
            rc[0] = 0
            rc[1] = 0xFFFFFFFF
            rc[2] = 0
            rc[3] = 1
            rc[5] = 1
        account = 0     # the running budget, eighths of a bit beyond raw
        raw_samples = 0
        for n in range(first, last):
            for c in range(channels):
                v = np.int64(samples[n, c])
                escape = False
                if use_grid:
                    s = ((v - base) * reciprocal + round_code) >> shift
                    s = min(max(s, 0), code_max)
                    escape = table[s] != v
                else:
                    s = v
                d = s - prev[c]
                coded = account <= BUDGET_SLACK_EIGHTHS
                acc = 0
                for t in range(taps):
                    acc += weights[c, t] * hist[c, t]
                xl = prev[c] - (level[c, 2] >> DC_FRAC_BITS)
                if level_tap:
                    acc += level[c, 1] * xl
                p = (acc + half) >> weight_bits
                p = min(max(p, -65536), 65535)
                e = d - p
                ctx, k = _context_and_shift(level[c, 0], contexts, shift_offset)
                es = e >> k
                u = 2 * es if es >= 0 else -2 * es - 1
                nb = 0
                if escape:
                    sym = ESCAPE
                elif u < LITERALS:
                    sym = es + LITERALS // 2
                else:
                    nb = _bit_length(u)
                    sym = LITERALS + nb - LITERAL_BITS - 1
                crow = cdf[ctx]
                ue = 2 * e if e >= 0 else -2 * e - 1
                if coded:
                    weighted = use_weights and k == 0
                    total = _frequencies(crow, freq, weighted, padded, prev[c] + p, code_max)
                    lo = 0
                    for j in range(sym):
                        lo += freq[j]
                    fs = freq[sym]
                    if weighted:
                        lo, fs = _to_power_of_two(lo, fs, sym, total, recip)
                        total = CDF_TOTAL
                    r = rc[1] >> CDF_BITS
                    rc[0] += r * lo
                    rc[1] = r * fs
                    _normalise(rc, out)
                    if escape:
                        off = v - table[s]
                        zo = 2 * off if off >= 0 else -2 * off - 1
                        raw = _encode_length_coded(rc, out, ue)
                        raw += _encode_length_coded(rc, out, zo)
                    else:
                        raw = 0
                        if sym >= LITERALS:
                            _encode_raw(rc, out, u - (1 << (nb - 1)), nb - 1)
                            raw += nb - 1
                        if k > 0:
                            _encode_raw(rc, out, e - (es << k), k)
                            raw += k
                    account += _cost_eighths(fs, total, raw) - 128
                    if account < ACCOUNT_FLOOR_EIGHTHS:
                        account = ACCOUNT_FLOOR_EIGHTHS
                else:
                    _encode_raw(rc, out, v & 0xFFFF, 16)
                    raw_samples += 1
                # adapt the context's CDF towards sym (coded or not: the same state)
                rate = 4 + (count[ctx] >> 4)
                span = crow[SYMBOLS]
                for j in range(1, SYMBOLS):
                    if j > sym:
                        crow[j] += (span - crow[j]) >> rate
                    else:
                        crow[j] -= crow[j] >> rate
                if count[ctx] < count_max:
                    count[ctx] += 1
                level[c, 0] += ((ue << 4) - level[c, 0]) >> MEAN_SHIFT
                # sign-sign LMS
                sg = 1 if e > 0 else (-1 if e < 0 else 0)
                for t in range(taps):
                    x = hist[c, t]
                    sx = 1 if x > 0 else (-1 if x < 0 else 0)
                    w = weights[c, t] + mu * sg * sx
                    weights[c, t] = min(max(w, -w_lim), w_lim)
                if level_tap:
                    sx = 1 if xl > 0 else (-1 if xl < 0 else 0)
                    w = level[c, 1] + mu * sg * sx
                    level[c, 1] = min(max(w, -w_lim), w_lim)
                for t in range(taps - 1, 0, -1):
                    hist[c, t] = hist[c, t - 1]
                if taps > 0:
                    hist[c, 0] = min(max(d, -h_lim), h_lim)
                if level[c, 3] == 0:
                    level[c, 2] = s << DC_FRAC_BITS
                    level[c, 3] = 1
                else:
                    level[c, 2] += ((s << DC_FRAC_BITS) - level[c, 2]) >> DC_RATE
                prev[c] = s
        verbatim[b] = raw_samples
        ends[b] = rc[4]
    _flush(rc, out)
    if blocks:
        ends[blocks - 1] = rc[4]
    end_tables[:, :] = cdf
    return rc[4]
