"""The lossless sample codec: parameters, bit layout and value map, defined once.

The gateware coder (:mod:`spikeforge.hdl.compressor`), its golden model
(:mod:`spikeforge.sim.models.compressor`) and the host decoder
(:mod:`spikeforge.host.compression`) all take these. ``docs/compression.md`` explains the
design; the short version, per sample ``v`` (int16) of channel ``c`` at sweep ``n`` of a
block (``n = 0 .. block_sweeps-1``)::

    s = code_of(v) with a codebook, else v              symbol (value -> ADC code)
    n == 0:  emit v in 16 bits (with a codebook: a 0 bit and s in codebook_bits bits, or,
             off the grid, a 1 bit and v in 16 bits); h1 = h2 = h3 = s; S = S0; costs C = 0
    n  > 0:  predictions p0 = 0, p1 = h1, p2 = 2h1 - h2, p3 = 3h1 - 3h2 + h3
             order = fixed, or argmin C (ties: 1, 2, 3, 0); e = s - p[order]
             u = zigzag(e); k = rice_k(S); q = u >> k
             if q < escape_threshold and (no codebook or table[s] == v):
                 emit q ones, a zero, then the k low bits of u
             else:
                 emit escape_threshold ones, then v in 16 bits          (escape)
             S += min(u, U_CAP) - (S >> rice_shift)
             C[j] += min(|s - p[j]|, U_CAP) - (C[j] >> select_shift)  for each order j
             h3, h2, h1 = h2, h1, s

Bits are packed least significant first into 16-bit words (sent little-endian); a block
ends padded with zero bits to a whole word. Every block starts from reset state, so it
decodes on its own.
"""

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = [
    "CodecConfig", "Codebook", "PREDICTORS", "RAW_BITS", "WORD_BITS", "K_MAX", "U_CAP",
    "CODEBOOK_MAX_BITS", "SELECT_TIE_ORDER", "worst_case_bits", "worst_case_words",
    "learn_codebook", "rice_k", "initial_rice_sum", "CODEBOOK_ENTRY_VALUE_SHIFT",
    "codebook_entry_word", "RESET_CODEBOOK",
]

#: Width of a raw sample (first sample of a channel in a block, escape payload).
RAW_BITS = 16
#: The coded stream is packed into words of this many bits (little-endian on the wire).
WORD_BITS = 16
#: Largest Rice parameter. A non-escaped code is at most ``escape_threshold + K_MAX`` bits,
#: shorter than an escape (``escape_threshold + RAW_BITS``).
K_MAX = 15
#: Residual sizes fed to the adaptation sums saturate here, which bounds the sums' width.
U_CAP = 0xFFFF
#: Largest codebook (value map) the gateware can hold: 2**10 entries of 16 bits.
CODEBOOK_MAX_BITS = 10
#: Predictor names -> fixed order (``None``: chosen adaptively per sample).
PREDICTORS: dict[str, int | None] = {
    "adaptive": None, "order0": 0, "order1": 1, "order2": 2, "order3": 3,
}
#: When several predictors have the same cost, the first of these orders wins: the first
#: difference is the natural default for band-limited signals, order 0 (no prediction) last.
SELECT_TIE_ORDER = (1, 2, 3, 0)


@dataclass(frozen=True)
class CodecConfig:
    """Parameters of the lossless coder (all build-time, fixed in the bitstream).

    Parameters
    ----------
    enabled:
        Build the coder at all.
    block_sweeps:
        Sweeps per coded block. Each block decodes on its own (a lost frame loses only its
        own samples); the price is one raw 16-bit sample per channel per block and the
        adaptation warm-up (see ``docs/compression.md``). The coder never delays a sample
        by more than one block.
    predictor:
        ``"adaptive"`` (per channel, per sample: the fixed predictor of order 0..3 with the
        smallest recent absolute residual, from past data so the decoder mirrors it) or
        ``"order0"`` .. ``"order3"``.
    rice_shift:
        Adaptation rate of the Rice parameter: each channel keeps ``S``, about
        ``2**rice_shift`` times its mean recent zigzagged residual (time constant
        ``2**rice_shift`` samples).
    select_shift:
        Time constant (``2**select_shift`` samples) of the predictor costs.
    initial_k:
        Rice parameter at the start of every block (before any residual is seen).
    escape_threshold:
        A residual whose unary part would reach this many bits is escaped: this many ones,
        then the raw 16-bit sample. Bounds every sample to ``escape_threshold + 16`` bits.
    codebook:
        Map values to ADC codes through a codebook (loaded at run time, see
        :class:`Codebook`); samples not on the codebook's grid are escaped, so the coder
        stays lossless for any input.
    codebook_bits:
        Depth of the codebook memory, ``2**codebook_bits`` entries (at most 2**10).
    """

    enabled: bool = False
    block_sweeps: int = 32
    predictor: str = "adaptive"
    rice_shift: int = 4
    select_shift: int = 4
    initial_k: int = 4
    escape_threshold: int = 12
    codebook: bool = False
    codebook_bits: int = CODEBOOK_MAX_BITS

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("enabled", "codebook"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"codec {name} must be True or False, not "
                                  f"{getattr(self, name)!r}")
        ranges = {
            "block_sweeps": (1, 4096, "sweeps per block"),
            "rice_shift": (0, 7, "the Rice sum's time constant is 2**rice_shift samples"),
            "select_shift": (0, 7, "the predictor costs' time constant is 2**select_shift"),
            "initial_k": (0, K_MAX, "the Rice parameter at the start of a block"),
            "escape_threshold": (1, 32, "an escaped sample costs escape_threshold + 16 bits"),
            "codebook_bits": (1, CODEBOOK_MAX_BITS, "the codebook holds 2**codebook_bits "
                                                    "values"),
        }
        for name, (low, high, why) in ranges.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"codec {name} must be an integer {low}..{high}, not "
                                  f"{value!r} ({why})")
        if self.predictor not in PREDICTORS:
            raise ConfigError(f"codec predictor must be one of {', '.join(PREDICTORS)}, not "
                              f"{self.predictor!r}")

    # -- derived ------------------------------------------------------------------------------

    @property
    def fixed_order(self) -> int | None:
        """The predictor order, or ``None`` when it is chosen adaptively."""
        return PREDICTORS[self.predictor]

    @property
    def predictor_code(self) -> int:
        """``predictor`` as a number: 0..3 fixed order, 4 adaptive (identity payload)."""
        order = self.fixed_order
        return 4 if order is None else order

    @property
    def max_sample_bits(self) -> int:
        """Longest code of one sample: an escape."""
        return self.escape_threshold + RAW_BITS

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_predictor_code(cls, code: int, **values: Any) -> "CodecConfig":
        names = {order: name for name, order in PREDICTORS.items()}
        return cls(predictor=names[None if code == 4 else code], **values)


def rice_k(rice_sum: int, config: CodecConfig) -> int:
    """The Rice parameter a channel uses next, from its sum ``S``: ``bitlen(S >> (rice_shift
    + 1))``, at most :data:`K_MAX` — about log2 of the mean zigzagged residual."""
    return min(K_MAX, (rice_sum >> (config.rice_shift + 1)).bit_length())


def initial_rice_sum(config: CodecConfig) -> int:
    """``S`` at the start of a block: the smallest sum whose :func:`rice_k` is
    ``initial_k``."""
    if config.initial_k == 0:
        return 0
    return 1 << (config.initial_k + config.rice_shift)


def worst_case_bits(channels: int, block_sweeps: int, config: CodecConfig) -> int:
    """The most bits one block can take, whatever the input: the first sweep raw (plus a
    flag bit with a codebook), every other sample at most an escape, padded to a whole word.
    Compare with the raw block, ``16 * channels * block_sweeps`` bits: the expansion is at
    most ``(escape_threshold + 16) / 16``."""
    first = RAW_BITS + int(config.codebook)
    bits = channels * first + channels * (block_sweeps - 1) * config.max_sample_bits
    return -(-bits // WORD_BITS) * WORD_BITS


def worst_case_words(channels: int, block_sweeps: int, config: CodecConfig) -> int:
    return worst_case_bits(channels, block_sweeps, config) // WORD_BITS


# -- the value map (codebook) -------------------------------------------------------------------


@dataclass(frozen=True)
class Codebook:
    """Map between int16 sample values and ADC codes, for ADCs whose codes were scaled onto
    an irregular grid before they reached us.

    Device side (cheap): ``code = clamp(((v - base) * multiplier) >> shift, 0, size - 1)`` —
    one multiply by a reciprocal — then one table read verifies ``values[code] == v``; a
    sample off the grid is escaped (sent raw). Host side: ``v = values[code]``.
    ``values`` has at most ``2**CODEBOOK_MAX_BITS`` entries; the table is padded with zeros
    to the gateware's depth (padding never decodes wrongly, it only escapes).
    """

    values: tuple[int, ...]
    base: int
    multiplier: int
    shift: int

    def __post_init__(self) -> None:
        if not 1 <= len(self.values) <= 1 << CODEBOOK_MAX_BITS:
            raise ConfigError(f"a codebook holds 1..{1 << CODEBOOK_MAX_BITS} values, not "
                              f"{len(self.values)}")
        if any(not -32768 <= int(v) <= 32767 for v in self.values):
            raise ConfigError("codebook values must be int16")
        if not -32768 <= self.base <= 32767:
            raise ConfigError(f"codebook base must be int16, not {self.base}")
        if not 0 <= self.multiplier < 1 << 16:
            raise ConfigError(f"codebook multiplier must be 0..65535, not {self.multiplier}")
        if not 0 <= self.shift <= 31:
            raise ConfigError(f"codebook shift must be 0..31, not {self.shift}")

    @property
    def bits(self) -> int:
        """Address bits the table needs."""
        return max(1, (len(self.values) - 1).bit_length())

    def table(self, bits: int) -> np.ndarray:
        """The table as the gateware holds it: ``2**bits`` int16 entries, zero padded."""
        if len(self.values) > 1 << bits:
            raise ConfigError(
                f"the codebook has {len(self.values)} values but the coder was built for "
                f"{1 << bits} (codebook_bits={bits}); build with codebook_bits={self.bits}")
        out = np.zeros(1 << bits, dtype=np.int16)
        out[:len(self.values)] = self.values
        return out

    def code_of(self, values: np.ndarray, bits: int) -> np.ndarray:
        """The device's value -> code step (before verification), for a table of
        ``2**bits`` entries."""
        v = np.asarray(values, dtype=np.int64)
        return np.clip(((v - self.base) * self.multiplier) >> self.shift, 0, (1 << bits) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {"values": list(self.values), "base": self.base, "multiplier": self.multiplier,
                "shift": self.shift}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Codebook":
        return cls(values=tuple(int(v) for v in data["values"]), base=int(data["base"]),
                   multiplier=int(data["multiplier"]), shift=int(data["shift"]))


#: Register CODEBOOK_ENTRY (firmware/registers.py): the table index in the low
#: ``codebook_bits`` bits, the entry's int16 value (two's complement) from this bit on.
CODEBOOK_ENTRY_VALUE_SHIFT = 16


#: What a device's coder holds from reset until the host loads a codebook: a zero table,
#: base, multiplier and shift (every value maps to code 0; only 0 is on the grid).
RESET_CODEBOOK = Codebook(values=(0,), base=0, multiplier=0, shift=0)


def codebook_entry_word(index: int, value: int) -> int:
    """The CODEBOOK_ENTRY register value that stores ``value`` at ``table[index]``."""
    if not 0 <= index < 1 << CODEBOOK_MAX_BITS:
        raise ConfigError(f"codebook index must be 0..{(1 << CODEBOOK_MAX_BITS) - 1}, "
                          f"not {index}")
    if not -32768 <= value <= 32767:
        raise ConfigError(f"codebook values must be int16, not {value}")
    return index | (value & 0xFFFF) << CODEBOOK_ENTRY_VALUE_SHIFT


def learn_codebook(samples: np.ndarray, *, min_step: float = 4.0,
                   max_escaped: float = 0.01) -> Codebook | None:
    """Learn the value grid of a recording, or ``None`` when it has none worth mapping.

    The distinct values are sorted; the typical gap (median) is the grid step. Values closer
    than half a step to a more frequent one are off the grid and left out (the device
    escapes them). Each remaining gap is a whole number of steps, which numbers every value
    with its code. The step is refined
    over the whole span, and a reciprocal (``multiplier``, ``shift``) and ``base`` are
    searched so that the device's ``code_of`` gives every seen value its own code. Values
    never seen get the grid's interpolated value (only used if they turn up later).
    Returns ``None`` for data without a grid (more than ``2**10`` codes, a step below
    ``min_step``, more than ``max_escaped`` of the samples off the grid, or no reciprocal
    that separates the values).
    """
    distinct, counts = np.unique(np.asarray(samples, dtype=np.int64).ravel(),
                                 return_counts=True)
    total = int(counts.sum())
    if len(distinct) < 2:
        return None
    # The step from the values seen more than once, if there are enough of them: a value off
    # the grid (a glitch) is rarely seen twice.
    repeated = distinct[counts > 1]
    basis = repeated if len(repeated) >= 8 else distinct
    typical = float(np.median(np.diff(basis)))
    if typical < min_step:
        return None
    # Values off the grid sit closer than half a step to a grid value: drop the rarer of
    # each such pair until none is left (they will be escaped).
    while True:
        close = np.flatnonzero(np.diff(distinct) < typical / 2)
        if not len(close):
            break
        drop = np.where(counts[close] < counts[close + 1], close, close + 1)
        keep = np.ones(len(distinct), dtype=bool)
        keep[drop] = False
        distinct, counts = distinct[keep], counts[keep]
    if len(distinct) < 2 or len(distinct) > 1 << CODEBOOK_MAX_BITS:
        return None
    gaps = np.diff(distinct)
    steps = np.maximum(1, np.rint(gaps / typical)).astype(np.int64)
    codes = np.concatenate([[0], np.cumsum(steps)])
    if codes[-1] >= 1 << CODEBOOK_MAX_BITS:
        return None
    step = (distinct[-1] - distinct[0]) / codes[-1]
    size = int(codes[-1]) + 1
    bits = max(1, (size - 1).bit_length())
    for shift in range(16, 25):
        multiplier = round((1 << shift) / step)
        if not 0 < multiplier < 1 << 16:
            continue
        for offset in _base_offsets(step):
            base = int(distinct[0]) - offset
            if not -32768 <= base <= 32767:
                continue
            book = Codebook(values=(0,), base=base, multiplier=multiplier, shift=shift)
            if np.array_equal(book.code_of(distinct, bits), codes):
                grid = np.rint(distinct[0] + np.arange(size) * step).astype(np.int64)
                grid[codes] = distinct
                grid = np.clip(grid, -32768, 32767)
                if counts.sum() < (1 - max_escaped) * total:
                    return None  # too many values off the grid: mapping would not pay
                return Codebook(values=tuple(int(v) for v in grid), base=base,
                                multiplier=multiplier, shift=shift)
    return None


def _base_offsets(step: float) -> list[int]:
    """Offsets of ``base`` below the lowest value to try, from half a step outwards."""
    half = int(step // 2)
    out = [half]
    for delta in range(1, half + 1):
        out += [half - delta, half + delta]
    return [o for o in out if 0 <= o < step]
