"""The v2 lossless sample codec: parameters, alphabet, value grid and stream layout, defined
once.

v2 replaces v1's Rice code by a multi-symbol range coder with adaptive cumulative
frequencies (one symbol per sample) and v1's fixed predictors by a sign-sign LMS predictor
on first differences. The golden model is :mod:`spikeforge.sim.models.compressor_v2`, the
host decoder :func:`spikeforge.host.compression.decode_v2`; ``docs/compression.md`` ("v2")
explains the design and the measurements. Per sample ``v`` (int16) of channel ``c``::

    s = grid.code_of(v) with a value grid (an ADC's k-bit code), else v
    d = s - h0 (h0: the channel's previous symbol)
    p = (sum_t w[t] * x[t] + wl * (h0 - (dc >> DC_FRAC_BITS)) + 2**(W-1)) >> W
        (x: the last taps differences; the level tap wl on the distance of h0 from the
        channel's running mean dc, when level_tap)
    e = d - p
    context: the half-octave of the channel's running mean m of zigzag(e) (m holds 16 x the
        mean): n = bitlen(m >> 4); level = 2n (+ the bit below m's leading one when n >= 2);
        ctx = clamp(level - 2, 0, contexts - 1)
    shift k = clamp(n - shift_offset, 0, SHIFT_MAX) (0 when shift_offset is 0);
        es = e >> k (floor); u = zigzag(es)
    symbol = es + LITERALS/2                if u < LITERALS (literals ordered by es)
           = LITERALS + bitlen(u) - 6       else, then bitlen(u) - 1 raw bits of u
           = ESCAPE                         v off the grid: then zigzag(e) and v - value(s),
                                            each as 5 raw bits of bit length + the bits
                                            below the leading one
        then (not after ESCAPE) the k low bits of e raw
    frequencies: the CDF of context ctx, a table shared by all channels, kept in
        CDF_STATE_BITS and coded with its top CDF_BITS; with code weights and k = 0, literal
        es's frequency is scaled by the weight of the code it stands for (s = h0 + p + es);
        total T. Range-code the symbol (range / T through a table of reciprocals, no
        division); adapt the context's CDF towards the symbol (shift by rate)
    m += ((zigzag(e) << 4) - m) >> 4
    w[t] += mu * sign(e) * sign(x[t]), wl likewise (saturated to WEIGHT_STATE_BITS);
    x = (d saturated to HISTORY_BITS, x[0..T-2]);
    dc += ((s << DC_FRAC_BITS) - dc) >> DC_RATE (dc = s << DC_FRAC_BITS at the channel's
    first sample); h0 = s

State carries across blocks; every ``sync_blocks`` blocks it is reset and the range coder
flushed, so a decoder can join the stream there. The coded stream is cut into blocks at
block ends (the bytes the coder has emitted by then).

Bounded expansion (the running budget; nothing is buffered or coded twice). Each block
keeps an account ``a`` of what its coded samples cost beyond raw, in eighths of a bit,
from an upper bound of each sample's cost that the decoder computes too
(:func:`cost_eighths`: 8 x the raw bits + a bound of 8 log2(T / f) from the frequency's
and the total's leading bits, + 1 for the coder's rounding); ``a`` starts at 0 with the
block. A sample is coded as above while ``a <= BUDGET_SLACK_EIGHTHS``; then
``a = max(a + cost - 128, ACCOUNT_FLOOR_EIGHTHS)``. Once ``a`` is above the slack, every
further sample of the block is **verbatim**: no symbol, its 16 bits raw (two 8-bit
pieces, < 0.0001 bit beyond 16), and ``a`` stays. The model
state moves on every sample as if it had been coded (CDF, LMS, means: the symbol stage does
not know the decision). So no block costs more than raw + the slack + one sample's worst
excess (:func:`worst_case_bits_v2`).
"""

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["CodecV2Config", "LITERALS", "SYMBOLS", "ESCAPE", "CDF_BITS", "CDF_TOTAL",
           "BUDGET_SLACK_EIGHTHS", "ACCOUNT_FLOOR_EIGHTHS", "cost_eighths",
           "log2_floor_eighths", "max_excess_eighths", "worst_case_bits_v2",
           "worst_case_ratio_v2", "cut_words",
           "initial_cdf", "restart_tables", "RANGE_TOP", "LITERAL_BITS", "ValueGrid", "learn_grid",
           "GRID_FRAC_BITS", "GRID_MAX_BITS", "ROUNDINGS", "WEIGHT_UNIT_BITS", "learn_code_weights",
           "reciprocal_table", "RECIPROCAL_BITS", "LENGTH_BITS", "literal_of", "CDF_STATE_BITS",
           "SHIFT_MAX", "DC_FRAC_BITS", "DC_RATE", "MEAN_SHIFT", "context_and_shift",
           "HISTORY_BITS", "WEIGHT_STATE_BITS",
           "state_bits_v2", "PRIOR_ENTRIES", "prior_entry_word", "prior_words",
           "padded_code_weights", "weight_pair_word", "weight_pair_words", "coded_config"]

#: Zigzagged residuals below ``LITERALS = 2**LITERAL_BITS`` are their own symbol.
LITERAL_BITS = 5
LITERALS = 1 << LITERAL_BITS
#: Residual buckets: symbol LITERALS + b - LITERAL_BITS - 1 holds u with bitlen(u) = b,
#: b = LITERAL_BITS + 1 .. 18, followed by the b - 1 low bits of u raw.
_BUCKETS = 18 - LITERAL_BITS
#: The escape symbol (a sample off the value grid).
ESCAPE = LITERALS + _BUCKETS
#: Alphabet size of the range coder.
SYMBOLS = ESCAPE + 1
#: The CDF is coded with this many bits; every symbol has a frequency of at least 1.
CDF_BITS = 15
CDF_TOTAL = 1 << CDF_BITS
#: ... and kept in this many (its top CDF_BITS are coded): a slow adaptation (rate 11)
#: can still move small frequencies, which a 15-bit state shifted by 9 or more cannot.
CDF_STATE_BITS = 22
#: Widest shift of the residual (its low bits go raw).
SHIFT_MAX = 12
#: The level tap's running mean: DC_FRAC_BITS fraction bits, moves 2**-DC_RATE a sample.
DC_FRAC_BITS = 8
DC_RATE = 8
#: The context's running mean of zigzag(e) moves 2**-MEAN_SHIFT a sample.
MEAN_SHIFT = 4
#: The LMS history holds differences saturated to HISTORY_BITS (signed), the weights (and
#: the level tap's) are saturated to WEIGHT_STATE_BITS. With 10-bit history the coded bytes
#: of N1 (24 files), SpikeInterface and the test source are those of 16-bit history to the
#: byte: a difference beyond +-511 is a spike's edge, which no predictor foresees. 10 bits
#: keep a channel's state to 251 bits: 14 DP16KD at 1024 channels (12 bits: 267, 15).
HISTORY_BITS = 10
WEIGHT_STATE_BITS = 12
#: The running budget (see the module docstring): a block's samples are coded while their
#: cost bound beyond raw is at most BUDGET_SLACK_EIGHTHS (eighths of a bit), then verbatim.
BUDGET_SLACK_EIGHTHS = 256
#: ... and the account's savings are kept down to this (a fixed-width register).
ACCOUNT_FLOOR_EIGHTHS = -(1 << 16)
#: The range coder renormalises (shifts a byte out) while its range is below this.
RANGE_TOP = 1 << 24
#: After an ESCAPE, u and the offset from the grid are each sent as LENGTH_BITS raw bits
#: holding their bit length, then the bits below the leading one.
LENGTH_BITS = 5
#: A code weight of 2**WEIGHT_UNIT_BITS is 1.0 (weights are 1..255: 1/64 .. ~4).
WEIGHT_UNIT_BITS = 6
#: With code weights the total frequency is not a power of two; the coder divides the range
#: by it through a table of reciprocals of its top RECIPROCAL_BITS bits (rounded up, so the
#: coder never overflows; the loss is < 2**-(RECIPROCAL_BITS-1) of a bit).
RECIPROCAL_BITS = 10
#: Fixed-point fraction bits of a fitted (not full-scale) grid's step and offset.
GRID_FRAC_BITS = 24
#: Widest code the grid (and the code-weight table) supports.
GRID_MAX_BITS = 12


@dataclass(frozen=True)
class CodecV2Config:
    """Parameters of the v2 coder (build-time, fixed in the bitstream).

    block_sweeps: sweeps per block (a frame's payload; the coder's delay).
    sync_blocks: state reset and coder flush every this many blocks (0: only at the start).
    taps: LMS taps on first differences; weight_bits: the weights' fractional bits;
    mu: the sign-sign step (integer, added to a weight); level_tap: one more LMS tap on
    the previous value's distance from the channel's running mean (lets the predictor
    leave the unit-sum constraint of a difference predictor: near-white noise is
    predicted towards its mean). rate_max: slowest CDF adaptation (a CDF moves 2**-rate
    of the way to the symbol; rate grows from 4 to rate_max as its symbols are counted).
    contexts: CDF tables, shared by all channels, chosen by the half-octave of the
    channel's running mean residual; shift_offset: residuals are shifted right by
    (bitlen(mean) - shift_offset), their low bits sent raw, so the literals cover the
    core of any scale (0: no shift).
    grid: code samples through a :class:`ValueGrid` (learned from the live stream's first
    samples by :func:`learn_grid`, loaded before lossless starts); grid_bits: the widest
    grid the build holds. code_weights: scale literal frequencies by a device-wide table of
    per-code weights (:func:`learn_code_weights`; the ADC's unequal code widths).
    restart_prior: the build holds a loadable table of restart tables (a prior,
    :func:`restart_tables`): with it loaded and switched on, every start and sync block
    begins its context tables from the prior at the slow rate (needs ``sync_blocks > 0``).
    """

    enabled: bool = False
    block_sweeps: int = 32
    sync_blocks: int = 0
    taps: int = 8
    weight_bits: int = 10
    mu: int = 1
    level_tap: bool = True
    rate_max: int = 11
    contexts: int = 16
    shift_offset: int = 4
    grid: bool = False
    grid_bits: int = 10
    code_weights: bool = False
    restart_prior: bool = False

    def __post_init__(self) -> None:
        ranges = {"block_sweeps": (1, 4096), "sync_blocks": (0, 1 << 20), "taps": (0, 32),
                  "weight_bits": (4, 14), "mu": (1, 64), "rate_max": (4, 12),
                  "contexts": (1, 16), "shift_offset": (0, 18),
                  "grid_bits": (1, GRID_MAX_BITS)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"codec v2 {name} must be an integer {low}..{high}, not "
                                  f"{value!r}")
        for name in ("enabled", "grid", "code_weights", "level_tap", "restart_prior"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"codec v2 {name} must be True or False")
        if self.code_weights and not self.grid:
            raise ConfigError("codec v2 code_weights needs grid=True (the weights are per "
                              "ADC code); set grid=True or code_weights=False")
        if self.restart_prior and not self.sync_blocks:
            raise ConfigError("codec v2 restart_prior needs sync_blocks > 0 (the prior is "
                              "read where a sync block restarts the tables); set sync_blocks, "
                              "e.g. 512, or restart_prior=False")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: How a grid value is rounded to an integer (learn_grid tries them in this order: when the
#: values seen fit several, truncation, as C converts, goes first).
ROUNDINGS = ("toward_zero", "nearest", "floor")


@dataclass(frozen=True)
class ValueGrid:
    """The ADC's value grid: code ``k`` (``bits`` wide) is the int16 value
    ``(offset_num + k * step_num) / step_den``, rounded as ``rounding`` says (``nearest``:
    halves up; ``floor``; ``toward_zero``: as C's integer conversion).

    Device side: ``k = clamp(((v - base) * reciprocal + 2**(shift-1)) >> shift)`` (one
    multiply), then one read of :meth:`table` verifies ``table[k] == v``; a value off the
    grid is escaped. The table is what the host loads (``2**bits`` entries of 17 bits:
    codes whose value is outside int16 never match).
    """

    bits: int
    offset_num: int
    step_num: int
    step_den: int
    rounding: str = "nearest"

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= GRID_MAX_BITS:
            raise ConfigError(f"a value grid has 1..{GRID_MAX_BITS} code bits, not "
                              f"{self.bits}")
        if self.step_den < 1 or self.step_num < 2 * self.step_den:
            raise ConfigError("a value grid's step must be at least 2 (a step of 1 is no "
                              "grid: code without one)")
        if self.rounding not in ROUNDINGS:
            raise ConfigError(f"a value grid's rounding is one of {ROUNDINGS}, not "
                              f"{self.rounding!r}")

    @classmethod
    def full_scale(cls, bits: int, rounding: str = "nearest") -> "ValueGrid":
        """Code k -> k * 65535 / (2**bits - 1) - 32768, rounded: a k-bit ADC spread over
        the whole int16 range (code 0 is -32768, so clipped samples are on the grid)."""
        den = (1 << bits) - 1
        return cls(bits, -32768 * den, 65535, den, rounding)

    @property
    def step(self) -> float:
        return self.step_num / self.step_den

    @property
    def base(self) -> int:
        """Value of code 0, rounded down."""
        return self.offset_num // self.step_den

    def table(self) -> np.ndarray:
        """Every code's value (int64; values outside int16 never match a sample)."""
        q = self.offset_num + np.arange(1 << self.bits, dtype=np.int64) * self.step_num
        den = self.step_den
        if self.rounding == "nearest":
            return (2 * q + den) // (2 * den)
        if self.rounding == "floor":
            return q // den
        return np.where(q >= 0, q // den, -((-q) // den))

    @property
    def reciprocal(self) -> tuple[int, int]:
        """``(reciprocal, shift)`` of the device's value -> code step; every grid value in
        int16 maps to its own code (checked)."""
        table = self.table()
        inside = (table >= -32768) & (table <= 32767)
        codes = np.flatnonzero(inside)
        for shift in range(16, 31):
            reciprocal = round((1 << shift) * self.step_den / self.step_num)
            got = ((table[inside] - self.base) * reciprocal + (1 << (shift - 1))) >> shift
            if np.array_equal(got, codes):
                return reciprocal, shift
        raise ConfigError("no reciprocal maps this grid's values to their codes")

    def code_of(self, values: np.ndarray) -> np.ndarray:
        reciprocal, shift = self.reciprocal
        v = np.asarray(values, dtype=np.int64)
        return np.clip(((v - self.base) * reciprocal + (1 << (shift - 1))) >> shift, 0,
                       (1 << self.bits) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {"bits": self.bits, "offset_num": self.offset_num, "step_num": self.step_num,
                "step_den": self.step_den, "rounding": self.rounding}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ValueGrid":
        return cls(int(data["bits"]), int(data["offset_num"]), int(data["step_num"]),
                   int(data["step_den"]), str(data.get("rounding", "nearest")))


#: Fewest distinct values :func:`learn_grid` wants before it believes in a grid.
_MIN_DISTINCT = 6


def learn_grid(samples: np.ndarray, max_bits: int = GRID_MAX_BITS) -> ValueGrid | None:
    """The value grid of the live stream's first samples, or None when they show none.

    An ADC's k-bit code is an affine map into int16. First the full-scale maps (code 0 at
    -32768, code 2**k - 1 at 32767) are tried, coarsest first: the first on which every
    distinct value seen sits is the grid. Else a general affine map is fitted (step from
    the typical gap between distinct values, offset and step by least squares over the
    values' codes) and kept if every value seen sits on it. Either way every value of the
    full scale has a code, so later values outside the range seen are not escapes; values
    off the grid are (cheaply). Needs at least 6 distinct values.
    """
    distinct = np.unique(np.asarray(samples, dtype=np.int64).ravel())
    if len(distinct) < _MIN_DISTINCT:
        return None
    for bits in range(1, max_bits + 1):
        if 65535 / ((1 << bits) - 1) < 2:
            break
        for rounding in ROUNDINGS:
            grid = ValueGrid.full_scale(bits, rounding)
            if np.array_equal(grid.table()[grid.code_of(distinct)], distinct):
                return grid
    return _affine_grid(distinct, max_bits)


def _affine_grid(distinct: np.ndarray, max_bits: int) -> ValueGrid | None:
    gaps = np.diff(distinct)
    typical = float(np.median(gaps))
    if typical < 2:
        return None
    codes = np.concatenate([[0], np.cumsum(np.maximum(1, np.rint(gaps / typical)))])
    step, offset = np.polyfit(codes, distinct, 1)
    if step < 2:
        return None
    # An integer step and offset (an ADC's codes shifted into int16) come out of the fit a
    # rounding error away; snapped, code 0 lands on -32768 itself, not a step below it.
    if abs(step - round(step)) < 1e-6 * step:
        step = float(round(step))
    if abs(offset - round(offset)) < 1e-3:
        offset = float(round(offset))
    # Code 0 at or below -32768; codes up to the last at or below 32767.
    below = int(np.ceil((offset + 32768) / step))
    size = below + int(np.floor((32767 - offset) / step)) + 1
    bits = max(1, (size - 1).bit_length())
    if bits > max_bits:
        return None
    one = 1 << GRID_FRAC_BITS
    grid = ValueGrid(bits, round((offset - below * step) * one), round(step * one), one)
    if not np.array_equal(grid.table()[grid.code_of(distinct)], distinct):
        return None
    return grid


def learn_code_weights(samples: list[np.ndarray], grid: ValueGrid, *,
                       smooth_codes: int = 8, min_count: float = 200.0) -> np.ndarray:
    """The device-wide code-weight table (``2**grid.bits`` entries, 1..255, unit
    ``2**WEIGHT_UNIT_BITS``): how much more (or less) often each code occurs than its
    neighbours, from recordings of the same ADC (all channels' first second, or earlier
    recordings — never the file being coded). A code's weight is its count over the
    count smoothed across ``2 * smooth_codes + 1`` codes; codes seen too rarely to tell
    weigh 1."""
    size = 1 << grid.bits
    counts = np.zeros(size)
    table = grid.table()
    for s in samples:
        v = np.asarray(s, dtype=np.int64).ravel()
        k = grid.code_of(v)
        k = k[table[k] == v]
        counts += np.bincount(k, minlength=size)[:size]
    kernel = np.ones(2 * smooth_codes + 1)
    smooth = np.convolve(counts, kernel, mode="same") / np.convolve(np.ones(size), kernel,
                                                                    mode="same")
    ratio = np.ones(size)
    known = smooth >= min_count
    ratio[known] = counts[known] / smooth[known]
    unit = 1 << WEIGHT_UNIT_BITS
    return np.clip(np.rint(ratio * unit), 1, 255).astype(np.int64)


def reciprocal_table() -> np.ndarray:
    """``floor(2**33 / q)`` for q = 0 .. 2**RECIPROCAL_BITS (entry 0 unused): the coder's
    range divided by a total frequency T is ``((range >> 8) * table[q]) >> (25 + sh)``,
    T = m * 2**sh with m its top RECIPROCAL_BITS bits, q = m, or m + 1 when bits below m
    are set (rounded up: never more than range / T)."""
    q = np.arange((1 << RECIPROCAL_BITS) + 1, dtype=np.int64)
    out = np.zeros_like(q)
    out[1:] = (1 << 33) // q[1:]
    return out


def literal_of(e: int) -> int:
    """The symbol of residual ``e`` when it is a literal (-LITERALS/2 <= e < LITERALS/2):
    literals are ordered by e, so that the codes they stand for are consecutive."""
    return e + LITERALS // 2


def initial_cdf() -> list[int]:
    """The CDF every channel starts from (a design constant, not learned from data):
    cumulative frequencies ``c[0..SYMBOLS]``, ``c[0] = 0``, ``c[SYMBOLS] = CDF_TOTAL -
    SYMBOLS``; symbol ``i`` has frequency ``c[i+1] - c[i] + 1``. A geometric prior over
    the literals (0.93 per step of zigzag(e)), halving per bucket, escape rare. The
    kept state is this shifted left by CDF_STATE_BITS - CDF_BITS."""
    weights = []
    for i in range(LITERALS):
        e = i - LITERALS // 2
        weights.append(0.93 ** (2 * e if e >= 0 else -2 * e - 1))
    weights += [0.93 ** (LITERALS - 1) * 4 * 0.5 ** b for b in range(_BUCKETS)]
    weights += [1e-4]
    total = sum(weights)
    span = CDF_TOTAL - SYMBOLS
    out, acc = [0], 0.0
    for w in weights:
        acc += w
        out.append(round(acc / total * span))
    out[-1] = span
    return out


def restart_tables(config: "CodecV2Config", prior: np.ndarray | None = None
                   ) -> tuple[np.ndarray, int]:
    """The context tables every start and restart (sync block) of the coder begins from,
    as ``(rows, count)``: ``rows`` ``(contexts, SYMBOLS + 1)`` cumulative frequencies at
    CDF_STATE_BITS, every table's adaptation count ``count``.

    Default: :func:`initial_cdf` in every table, count 0 (the fast first rates). With a
    ``prior`` (rows of the same shape learned from other recordings of the same ADC, e.g.
    the tables at the end of coding them): those rows, count at its maximum (the slow rate:
    a primed table is not relearned). The model and decoder take it as
    ``encode_v2_stream(..., prior=)``, ``decode_v2(..., prior=)``; a build with
    ``restart_prior`` holds it in a loadable table (:func:`prior_words`, switched on by
    PRIOR_ON); ``spikeforge bench compress --restart-prior`` measures it."""
    span = CDF_TOTAL - SYMBOLS
    if prior is None:
        row = np.array(initial_cdf(), np.int64) << (CDF_STATE_BITS - CDF_BITS)
        return np.tile(row, (config.contexts, 1)), 0
    rows = np.asarray(prior)
    shape = (config.contexts, SYMBOLS + 1)
    if rows.shape != shape or not np.issubdtype(rows.dtype, np.integer):
        raise ConfigError(f"a restart prior is {shape[0]} x {shape[1]} integer rows (one per "
                          f"context table), not {rows.dtype} {rows.shape}")
    top = span << (CDF_STATE_BITS - CDF_BITS)
    if (rows[:, 0] != 0).any() or (rows[:, -1] != top).any() or (np.diff(rows) < 0).any():
        raise ConfigError(f"a restart prior's rows must rise from 0 to {top} (cumulative "
                          "frequencies at CDF_STATE_BITS): learn it with the coder's own "
                          "tables (sim.compression_bench.restart_prior_from)")
    return rows.astype(np.int64), 16 * (config.rate_max - 4)


#: A prior row's loadable entries: c[1] .. c[SYMBOLS-1] (c[0] = 0 and c[SYMBOLS] are fixed).
PRIOR_ENTRIES = SYMBOLS - 1


def prior_entry_word(context: int, index: int, value: int) -> int:
    """The PRIOR_ENTRY register word storing ``value`` (a cumulative frequency at
    CDF_STATE_BITS) as entry ``index`` (0 .. PRIOR_ENTRIES - 1: c[index + 1]) of context
    table ``context``: the context in bits 0..3, the index in bits 4..9, the value in bits
    10..31."""
    if not (0 <= context < 16 and 0 <= index < PRIOR_ENTRIES
            and 0 <= value < 1 << CDF_STATE_BITS):
        raise ConfigError(f"a prior entry is context 0..15, index 0..{PRIOR_ENTRIES - 1} and a "
                          f"{CDF_STATE_BITS}-bit value, not ({context}, {index}, {value})")
    return context | index << 4 | value << 10


def prior_words(config: "CodecV2Config", prior: np.ndarray) -> list[int]:
    """Every PRIOR_ENTRY word that loads ``prior`` (checked as :func:`restart_tables`
    checks it), context by context."""
    rows, _ = restart_tables(config, prior)
    return [prior_entry_word(c, j - 1, int(rows[c, j]))
            for c in range(config.contexts) for j in range(1, SYMBOLS)]


def padded_code_weights(weights: np.ndarray | None, codes: int) -> np.ndarray:
    """The code-weight table as the coder reads it: ``codes`` weights (one per grid code,
    1..255; None: all 1) with LITERALS entries of weight 1 (``2**WEIGHT_UNIT_BITS``) on
    both sides; a sample predicted at code ``c0`` reads the LITERALS entries from
    ``clamp(c0 - LITERALS/2, -LITERALS, codes) + LITERALS``."""
    unit = 1 << WEIGHT_UNIT_BITS
    padded = np.full(codes + 2 * LITERALS, unit, np.int64)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.int64)
        if weights.shape != (codes,) or weights.min() < 1 or weights.max() > 255:
            raise ConfigError(f"code weights must be {codes} integers 1..255 (one per code of "
                              "the grid); learn them with learn_code_weights")
        padded[LITERALS:LITERALS + codes] = weights
    return padded


def coded_config(config: "CodecV2Config", weights: np.ndarray | None) -> "CodecV2Config":
    """The configuration blocks are coded with: ``config``, except that a code-weights build
    with no weights loaded (WEIGHTS_ON 0, ``weights`` None) codes as one without them."""
    if config.code_weights and weights is None:
        return replace(config, code_weights=False)
    return config


def weight_pair_word(pair: int, even: int, odd: int) -> int:
    """The WEIGHT_PAIR register word storing padded table entries ``2 * pair`` (``even``)
    and ``2 * pair + 1`` (``odd``): the pair's index in bits 0..11, the weights in bits
    16..23 and 24..31."""
    if not (0 <= pair < 1 << 12 and 1 <= even <= 255 and 1 <= odd <= 255):
        raise ConfigError(f"a weight pair is an index 0..4095 and two weights 1..255, not "
                          f"({pair}, {even}, {odd})")
    return pair | even << 16 | odd << 24


def weight_pair_words(weights: np.ndarray | None, codes: int) -> list[int]:
    """Every WEIGHT_PAIR word that loads the padded table of ``weights`` for a grid of
    ``codes`` codes (:func:`padded_code_weights`): everything a sample of that grid can
    read, so nothing of an earlier load remains in reach."""
    padded = padded_code_weights(weights, codes)
    if len(padded) % 2:
        padded = np.append(padded, 1 << WEIGHT_UNIT_BITS)
    return [weight_pair_word(p, int(padded[2 * p]), int(padded[2 * p + 1]))
            for p in range(len(padded) // 2)]


def context_and_shift(mean: int, contexts: int, shift_offset: int) -> tuple[int, int]:
    """The CDF table and the residual shift for a channel whose running mean of zigzag(e)
    is ``mean`` (16 x the mean): half-octave level of the mean, less 2, clamped to the
    tables; shift bitlen(mean >> 4) - shift_offset, clamped to 0..SHIFT_MAX."""
    n = (mean >> 4).bit_length()
    level = 2 * n + ((mean >> (n + 2)) & 1 if n >= 2 else 0)
    ctx = min(max(level - 2, 0), contexts - 1)
    k = min(max(n - shift_offset, 0), SHIFT_MAX) if shift_offset else 0
    return ctx, k


def state_bits_v2(config: CodecV2Config) -> tuple[int, int]:
    """(bits a channel keeps, bits the device keeps once): per channel the LMS weights
    (WEIGHT_STATE_BITS) and history (HISTORY_BITS), the previous code or value (16), the
    residual mean (22), the level tap's weight (WEIGHT_STATE_BITS), mean (16 +
    DC_FRAC_BITS) and started flag; device-wide the context tables (SYMBOLS - 1 entries of
    CDF_STATE_BITS each, plus a 8-bit count each)."""
    per_channel = config.taps * (WEIGHT_STATE_BITS + HISTORY_BITS) + 16 + 22
    if config.level_tap:
        per_channel += WEIGHT_STATE_BITS + 16 + DC_FRAC_BITS + 1
    device = config.contexts * ((SYMBOLS - 1) * CDF_STATE_BITS + 8)
    return per_channel, device


def log2_floor_eighths(x: int) -> int:
    """A lower bound of 8 log2(x) for x >= 1: 8 (bitlen(x) - 1) + the 3 bits below x's
    leading one (8 log2(1 + m/8) >= m for m = 0..8)."""
    n = x.bit_length() - 1
    return 8 * n + (((x << 3) >> n) & 7)


def cost_eighths(frequency: int, total: int, raw_bits: int) -> int:
    """An upper bound of a coded sample's cost in eighths of a bit, the same in encoder and
    decoder: ``8 raw_bits + (log2_floor_eighths(total) + 2) - log2_floor_eighths(frequency)
    + 1`` (the + 2 bounds the total's fraction from above, the + 1 the coder's rounding:
    range / total is rounded down by < 2**-7 of itself, each raw piece by < 2**-16)."""
    return 8 * raw_bits + log2_floor_eighths(total) + 2 - log2_floor_eighths(frequency) + 1


def max_excess_eighths() -> int:
    """The most one coded sample can cost beyond 16 bits, by :func:`cost_eighths`: the
    widest total (every literal weighted 255/64), frequency 1, and an ESCAPE's two
    length-coded fields (a residual below 2**18, an offset below 2**17 zigzagged)."""
    widest_total = ((CDF_TOTAL * 255) >> WEIGHT_UNIT_BITS) + LITERALS
    escape_raw = 2 * LENGTH_BITS + (18 - 1) + (17 - 1)
    return cost_eighths(1, widest_total, escape_raw) - 128


def worst_case_bits_v2(channels: int, block_sweeps: int) -> int:
    """Most bits a block adds to the stream, whatever the input (the running budget): raw
    (16 bits a sample), the slack and one sample's worst excess beyond it, and one bit a
    4096 samples for the rounding of the verbatim samples' raw pieces (< 0.0001 bit a
    sample).
    The coder holds up to 5 bytes that a block's end may not have pushed out yet; they are
    a delay, not a rate."""
    samples = channels * block_sweeps
    excess = -(-(BUDGET_SLACK_EIGHTHS + max_excess_eighths()) // 8)
    return 16 * samples + excess + 1 + samples // 4096


def worst_case_ratio_v2(channels: int, block_sweeps: int) -> float:
    return 16 * channels * block_sweeps / worst_case_bits_v2(channels, block_sweeps)


def cut_words(stream: bytes, ends: "list[int] | np.ndarray",
              flushed: "list[bool] | np.ndarray") -> list[bytes]:
    """The coded stream as the link carries it: 16-bit words, cut into blocks.

    ``stream`` is the coder's byte stream, ``ends[b]`` the bytes emitted by block ``b``'s
    end (its flush included), ``flushed[b]`` whether block ``b`` ended with the coder's
    flush (the block before a sync block, and the stream's last). A flush that leaves an
    odd count of bytes is followed by one pad byte 0x00, so every sync segment starts on a
    word. Block ``b`` carries the whole words emitted by its end that no earlier block
    carried: a byte that completes no word yet goes with the next block (a delay of one
    byte, like the coder's own pending bytes). A block may carry no word at all.
    """
    if len(ends) != len(flushed):
        raise ConfigError(f"cut_words needs one flushed flag per block end: {len(ends)} ends, "
                          f"{len(flushed)} flags")
    padded, cuts, previous = bytearray(), [], 0
    for end, flush in zip(ends, flushed):
        end = int(end)
        if end < previous or end > len(stream):
            raise ConfigError(f"block ends must rise within the stream's {len(stream)} bytes, "
                              f"not {end} after {previous}")
        padded += bytes(stream[previous:end])
        previous = end
        if flush and len(padded) % 2:
            padded.append(0)
        cuts.append(len(padded) - len(padded) % 2)
    return [bytes(padded[a:b]) for a, b in zip([0, *cuts[:-1]], cuts)]
