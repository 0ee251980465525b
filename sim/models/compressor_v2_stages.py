"""The v2 coder split at the range coder's input: per sample the context, the symbol, its
cumulative and own frequency, the raw bits that follow it and the sample's 16 bits (what
the gateware's symbol stage, :class:`spikeforge.hdl.compressor_v2.CompressorV2Symbols`,
puts out), and a range coder with the running budget that turns that sequence into the
golden model's bytes.

:func:`symbol_stream_v2` is :mod:`spikeforge.sim.models.compressor_v2`'s kernel with the
range coder taken out (with or without a value grid and code weights, with sync resets);
the symbol stage does not know the budget (the model's state moves on every sample as if
it had been coded). :func:`range_code_v2` is the range coder and the running budget
(:func:`budget_v2`: per block, a sample is coded while the account of the coded samples'
cost bound beyond raw is at most
:data:`~spikeforge.firmware.compression_v2.BUDGET_SLACK_EIGHTHS`, else it is verbatim: no
symbol, its 16 bits raw); ``tests/hdl/test_compressor_v2_hdl.py`` checks that the two
together give :func:`~spikeforge.sim.models.compressor_v2.encode_v2_stream`'s bytes and
block ends exactly, for every stimulus, so the split is the model, not a second
definition. Plain Python loops (bench sizes: thousands of samples).
"""

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
    SYMBOLS,
    WEIGHT_STATE_BITS,
    WEIGHT_UNIT_BITS,
    CodecV2Config,
    ValueGrid,
    context_and_shift,
    cost_eighths,
    reciprocal_table,
    restart_tables,
)
from spikeforge.firmware.errors import ConfigError
from spikeforge.hdl.compressor_v2 import check_symbol_config

from .compressor_v2 import grid_arrays

__all__ = ["SYMBOL_FIELDS", "symbol_stream_v2", "sample_cost_eighths", "budget_v2",
           "range_code_v2",
           "range_step_v2", "range_code_v2_by_sample"]

#: One row per sample, in stream order (``value``: the sample's 16 bits, ``v & 0xFFFF``,
#: what a verbatim sample sends). An ESCAPE's raw fields (a sample off the value grid):
#: ``length_e`` (LENGTH_BITS raw), ``high_bits`` (``high_count`` raw), ``length_o``,
#: ``low_bits`` (``low_count``): zigzag(e) and zigzag(v - table[s]) length-coded.
SYMBOL_FIELDS = ("context", "symbol", "low", "frequency", "high_bits", "high_count",
                 "low_bits", "low_count", "value", "length_e", "length_o")

_DROP = CDF_STATE_BITS - CDF_BITS


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def _length_coded(x: int) -> tuple[int, int, int]:
    """x >= 0 as the model's ``_encode_length_coded``: (bit length, bits below the leading
    one, their count)."""
    n = x.bit_length()
    return (n, x - (1 << (n - 1)), n - 1) if n > 1 else (n, 0, 0)


def symbol_stream_v2(samples: np.ndarray, config: CodecV2Config,
                     grid: ValueGrid | None = None, *,
                     prior: np.ndarray | None = None,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """Per sample of ``samples`` (int16, ``(sweeps, channels)``, channel-serial order) the
    row :data:`SYMBOL_FIELDS`: context, symbol, ``low`` (cumulative frequency below the
    symbol), ``frequency`` (total 2**CDF_BITS), the bucket's raw bits (``high_bits``,
    ``high_count`` bits), the shift's raw low bits (``low_bits``, ``low_count``) and the
    sample's 16 bits (``value``). Every sample has its symbol: whether the range coder
    codes it or sends it verbatim is :func:`budget_v2`'s decision, after this stage.

    With ``config.grid`` the samples are coded as their codes on ``grid`` (the model's
    ``s``); a sample off the grid is an ESCAPE, its raw fields ``length_e``, ``high_bits``
    (``high_count``), ``length_o``, ``low_bits`` (``low_count``). ``prior``: the tables
    every start and sync block begins from (:func:`~spikeforge.firmware.compression_v2.
    restart_tables`; None: the initial CDF). ``weights`` (``config.code_weights``): the
    code weights (:func:`~spikeforge.firmware.compression_v2.learn_code_weights`); None:
    coded as without them (the gateware's ``weights_on`` low)."""
    check_symbol_config(config)
    if config.grid and grid is None:
        raise ConfigError("codec v2 configured with grid=True but no value grid given; "
                          "learn one from the stream's first samples (learn_grid)")
    use_weights = config.code_weights and weights is not None
    table, _, _, _, padded = grid_arrays(grid if config.grid else None,
                                         weights if use_weights else None, config.grid_bits)
    recip = reciprocal_table()
    samples = np.asarray(samples, dtype=np.int64)
    sweeps, channels = samples.shape
    taps = config.taps
    count_max = 16 * (config.rate_max - 4)
    w_lim = (1 << (WEIGHT_STATE_BITS - 1)) - 1
    h_lim = (1 << (HISTORY_BITS - 1)) - 1
    half = 1 << (config.weight_bits - 1)
    out = np.zeros((sweeps * channels, len(SYMBOL_FIELDS)), np.int64)
    rows0, count0 = restart_tables(config, prior)
    row = 0
    sync_sweeps = config.sync_blocks * config.block_sweeps
    for n in range(sweeps):
        if n == 0 or (sync_sweeps and n % sync_sweeps == 0):
            cdf = [[int(c) for c in row] for row in rows0]
            count = [count0] * config.contexts
            weights = [[0] * taps for _ in range(channels)]
            hist = [[0] * taps for _ in range(channels)]
            prev = [0] * channels
            mean = [0] * channels
            level_weight = [0] * channels
            dc = [0] * channels
            started = [False] * channels
        for c in range(channels):
            v = int(samples[n, c])
            escape = False
            if config.grid:
                s = int(grid.code_of(v))
                escape = int(table[s]) != v
            else:
                s = v
            d = s - prev[c]
            acc = sum(weights[c][t] * hist[c][t] for t in range(taps))
            xl = prev[c] - (dc[c] >> DC_FRAC_BITS)
            if config.level_tap:
                acc += level_weight[c] * xl
            p = min(max((acc + half) >> config.weight_bits, -65536), 65535)
            e = d - p
            ctx, k = context_and_shift(mean[c], config.contexts, config.shift_offset)
            es = e >> k
            u = 2 * es if es >= 0 else -2 * es - 1
            high_bits = high_count = low_bits = low_count = length_e = length_o = 0
            ue = 2 * e if e >= 0 else -2 * e - 1
            if escape:
                sym = ESCAPE
                off = v - int(table[s])
                length_e, high_bits, high_count = _length_coded(ue)
                length_o, low_bits, low_count = _length_coded(2 * off if off >= 0
                                                              else -2 * off - 1)
            elif u < LITERALS:
                sym = es + LITERALS // 2
            else:
                nb = u.bit_length()
                sym = LITERALS + nb - LITERAL_BITS - 1
                high_bits, high_count = u - (1 << (nb - 1)), nb - 1
            if not escape:
                low_bits, low_count = e - (es << k), k
            crow = cdf[ctx]
            top = [crow[j] >> _DROP for j in range(SYMBOLS + 1)]
            low = top[sym] + sym
            frequency = top[sym + 1] - top[sym] + 1
            if use_weights and k == 0:
                low, frequency = _weighted(top, sym, padded, prev[c] + p, len(table) - 1,
                                           recip)
            out[row] = (ctx, sym, low, frequency, high_bits, high_count, low_bits, low_count,
                        v & 0xFFFF, length_e, length_o)
            row += 1
            rate = 4 + (count[ctx] >> 4)
            span = crow[SYMBOLS]
            for j in range(1, SYMBOLS):
                if j > sym:
                    crow[j] += (span - crow[j]) >> rate
                else:
                    crow[j] -= crow[j] >> rate
            count[ctx] = min(count[ctx] + 1, count_max)
            mean[c] += ((ue << 4) - mean[c]) >> MEAN_SHIFT
            sg = _sign(e)
            for t in range(taps):
                weights[c][t] = min(max(weights[c][t] + config.mu * sg * _sign(hist[c][t]),
                                        -w_lim), w_lim)
            if config.level_tap:
                level_weight[c] = min(max(level_weight[c] + config.mu * sg * _sign(xl),
                                          -w_lim), w_lim)
            hist[c] = [min(max(d, -h_lim), h_lim)] + hist[c][:-1]
            if not started[c]:
                dc[c] = s << DC_FRAC_BITS
                started[c] = True
            else:
                dc[c] += ((s << DC_FRAC_BITS) - dc[c]) >> DC_RATE
            prev[c] = s
    return out


def _weighted(top: list[int], sym: int, padded: np.ndarray, c0: int, code_max: int,
              recip: np.ndarray) -> tuple[int, int]:
    """A symbol's (low, frequency) of CDF_TOTAL with code weights: the model's
    ``_frequencies`` and ``_to_power_of_two``, step by step as the gateware's W1..W6."""
    start = min(max(c0 - LITERALS // 2, -LITERALS), code_max + 1) + LITERALS
    freq = [top[j + 1] - top[j] + 1 for j in range(SYMBOLS)]
    for j in range(LITERALS):
        freq[j] = max(1, (freq[j] * int(padded[start + j])) >> WEIGHT_UNIT_BITS)
    total, lo = sum(freq), sum(freq[:sym])
    sh = max(total.bit_length() - RECIPROCAL_BITS, 0)
    q = -(-total >> sh)
    mult = int(recip[q]) - (int(recip[q]) >> 9)
    low = ((lo * mult) >> (18 + sh)) + sym
    return low, (((lo + freq[sym]) * mult) >> (18 + sh)) + sym + 1 - low


class _RangeCoder:
    """The model's range coder (LZMA-style carry: a cached byte and a count of 0xFF)."""

    def __init__(self) -> None:
        self.low, self.range, self.cache, self.cache_size = 0, 0xFFFFFFFF, 0, 1
        self.skip_first = True
        self.out = bytearray()

    def shift_low(self) -> None:
        if self.low < 0xFF000000 or self.low >= 1 << 32:
            carry = self.low >> 32
            temp = self.cache
            while True:
                if self.skip_first:
                    self.skip_first = False
                else:
                    self.out.append((temp + carry) & 0xFF)
                temp = 0xFF
                self.cache_size -= 1
                if self.cache_size == 0:
                    break
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def normalise(self) -> None:
        while self.range < RANGE_TOP:
            self.range <<= 8
            self.shift_low()

    def encode(self, low: int, frequency: int) -> None:
        r = self.range >> CDF_BITS
        self.low += r * low
        self.range = r * frequency
        self.normalise()

    def raw(self, value: int, count: int) -> None:
        while count > 0:
            k = min(count, 8)
            count -= k
            r = self.range >> k
            self.low += r * ((value >> count) & ((1 << k) - 1))
            self.range = r
            self.normalise()


def sample_cost_eighths(row) -> int:
    """A coded sample's cost bound beyond raw, in eighths of a bit: :func:`~spikeforge.
    firmware.compression_v2.cost_eighths` of its frequency (total 2**CDF_BITS: no code
    weights) and raw bits (an ESCAPE's: its two LENGTH_BITS fields too), less 16 bits."""
    frequency, high_count, low_count = int(row[3]), int(row[5]), int(row[7])
    lengths = 2 * LENGTH_BITS if int(row[1]) == ESCAPE else 0
    return cost_eighths(frequency, CDF_TOTAL, lengths + high_count + low_count) - 128


def budget_v2(rows: np.ndarray, samples_per_block: int) -> np.ndarray:
    """The running budget over :func:`symbol_stream_v2`'s rows: per sample, whether it is
    coded (True) or verbatim (False). Each block's account starts at 0; a sample is coded
    while the account is at most BUDGET_SLACK_EIGHTHS, and a coded sample moves the account
    by its cost beyond raw (:func:`sample_cost_eighths`, kept down to
    ACCOUNT_FLOOR_EIGHTHS); a verbatim sample leaves it."""
    coded = np.zeros(len(rows), np.bool_)
    account = 0
    for index, row in enumerate(rows.tolist()):
        if index % samples_per_block == 0:
            account = 0
        if account <= BUDGET_SLACK_EIGHTHS:
            coded[index] = True
            account = max(account + sample_cost_eighths(row), ACCOUNT_FLOOR_EIGHTHS)
    return coded


def _sync_flush(index: int, samples_per_block: int, sync_blocks: int) -> bool:
    """Whether the sample at ``index`` starts a sync block after the first (the coder
    flushes before it, the flush the previous block's, and restarts)."""
    if not sync_blocks or index == 0 or index % samples_per_block:
        return False
    return (index // samples_per_block) % sync_blocks == 0


def range_code_v2(rows: np.ndarray, samples_per_block: int,
                  sync_blocks: int = 0) -> tuple[bytes, list[int]]:
    """The coded stream of :func:`symbol_stream_v2`'s rows under the running budget
    (:func:`budget_v2`: a coded sample is its symbol and raw bits, a verbatim one its 16
    bits raw in two 8-bit pieces), flushed at the end, and each block's end offset. With
    ``sync_blocks`` the coder also flushes at the end of the block before each sync block
    (the flush's bytes are that block's) and restarts (the model's low, range, cache and
    first byte skipped)."""
    coder = _RangeCoder()
    ends = []
    coded = budget_v2(rows, samples_per_block)
    for index, (_context, symbol, low, frequency, high_bits, high_count, low_bits,
                low_count, value, length_e, length_o) in enumerate(rows.tolist()):
        if _sync_flush(index, samples_per_block, sync_blocks):
            for _ in range(5):
                coder.shift_low()
            ends[-1] = len(coder.out)
            out, coder = coder.out, _RangeCoder()
            coder.out = out
        if coded[index]:
            coder.encode(low, frequency)
            if symbol == ESCAPE:
                coder.raw(length_e, LENGTH_BITS)
            coder.raw(high_bits, high_count)
            if symbol == ESCAPE:
                coder.raw(length_o, LENGTH_BITS)
            coder.raw(low_bits, low_count)
        else:
            coder.raw(value, 16)
        if index % samples_per_block == samples_per_block - 1:
            ends.append(len(coder.out))
    if len(rows) % samples_per_block:
        ends.append(len(coder.out))
    for _ in range(5):
        coder.shift_low()
    if ends:
        ends[-1] = len(coder.out)
    return bytes(coder.out), ends


# -- the same range coder, one sample per step (the formulation a one-sample-per-clock
# gateware computes) -------------------------------------------------------------------------

def _raw_chunks(value: int, count: int) -> list[tuple[int, int]]:
    """``(bits, piece)`` of :meth:`_RangeCoder.raw`: <= 8-bit pieces, most significant
    first."""
    out = []
    while count > 0:
        k = min(count, 8)
        count -= k
        out.append((k, (value >> count) & ((1 << k) - 1)))
    return out


def range_step_v2(state: tuple[int, int], row, coded: bool) -> tuple[tuple[int, int],
                                                                     list[tuple[int, int]]]:
    """One sample's range coding in the two recurrences a gateware pipelines apart:
    ``coded``, its symbol then its raw bits; else (verbatim) no symbol, its 16 bits raw.

    ``state`` is ``(range, low)``; returns the new state and the sample's byte slots, each
    ``(carry, byte)``: what the model's ``shift_low`` sees, in order (the cache / 0xFF-run
    logic after them is the model's, unchanged).

    Range loop (depends on the range alone): each operation's multiplier ``r_i`` and the
    bytes it shifts ``n_i``; the raw pieces after the symbol only truncate and shift the
    range, so a range ``R0 >> t << s`` is tracked by two small counters. Low loop: the
    additions ``a_i = r_i * v_i`` (independent of ``low``) summed per byte slot ``A_j``, the
    prefix ``Q_j = sum A_i 2**(8 (j - i))``; slot j sees ``Y_j = (PS_{j-1} mod 2**24) * 2**8
    + A_j`` with ``PS_j = low * 2**(8 (j - 1)) + Q_j``: its carry is bit 32, its byte bits
    24..31; the new low is ``(PS_N mod 2**24) << 8`` plus the additions after the last
    shift.
    """
    rng, low = state
    ops: list[tuple[int, int]] = []        # (addition, bytes shifted after it)

    def normalise() -> int:
        nonlocal rng
        n = 0
        while rng < RANGE_TOP:
            rng <<= 8
            n += 1
        return n

    (_, symbol, lo, frequency, high_bits, high_count, low_bits, low_count, value, length_e,
     length_o) = (int(x) for x in row)
    if coded:
        r = rng >> CDF_BITS
        rng = r * frequency
        ops.append((r * lo, normalise()))
        lengths = LENGTH_BITS if symbol == ESCAPE else 0
        pieces = (_raw_chunks(length_e, lengths) + _raw_chunks(high_bits, high_count)
                  + _raw_chunks(length_o, lengths) + _raw_chunks(low_bits, low_count))
    else:
        # No symbol: the range (normalised, 25..32 bits) goes straight to the pieces.
        pieces = _raw_chunks(value, 16)
    # The raw pieces: range = (R0 >> t) << s, no multiply.
    base, t, s = rng, 0, 0
    bits = rng.bit_length()
    for k, piece in pieces:
        if s >= k:
            s -= k
        else:
            t, s = t + k - s, 0
        bits -= k
        r = (base >> t) << s
        n = 0
        if bits <= 24:
            s, bits, n = s + 8, bits + 8, 1
        ops.append((r * piece, n))
    rng = (base >> t) << s
    # Low loop: additions per slot.
    slots_a: list[int] = []
    pending = 0
    for addition, n in ops:
        pending += addition
        for _ in range(n):
            slots_a.append(pending)
            pending = 0
    slots = []
    ps_prev = None
    for j, a in enumerate(slots_a):
        y = low + a if j == 0 else ((ps_prev & 0xFFFFFF) << 8) + a
        slots.append((y >> 32, (y >> 24) & 0xFF))
        ps_prev = y
    if slots_a:
        low = ((ps_prev & 0xFFFFFF) << 8) + pending
    else:
        low += pending
    return (rng, low), slots


def range_code_v2_by_sample(rows: np.ndarray, samples_per_block: int,
                            sync_blocks: int = 0) -> tuple[bytes, list[int]]:
    """:func:`range_code_v2` computed by :func:`range_step_v2` (the same bytes)."""
    coder = _RangeCoder()
    state = (coder.range, coder.low)
    ends = []
    coded = budget_v2(rows, samples_per_block)
    for index, row in enumerate(rows.tolist()):
        if _sync_flush(index, samples_per_block, sync_blocks):
            coder.low = state[1]
            for _ in range(5):
                coder.shift_low()
            ends[-1] = len(coder.out)
            out, coder = coder.out, _RangeCoder()
            coder.out = out
            state = (coder.range, coder.low)
        state, slots = range_step_v2(state, row, bool(coded[index]))
        for carry, byte in slots:
            coder.low = (carry << 32) | (byte << 24)
            coder.shift_low()
        if index % samples_per_block == samples_per_block - 1 or index == len(rows) - 1:
            ends.append(len(coder.out))
    coder.low = state[1]
    for _ in range(5):
        coder.shift_low()
    if ends:
        ends[-1] = len(coder.out)
    return bytes(coder.out), ends
