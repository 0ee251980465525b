"""The v2 lossless sample codec: parameters, alphabet and stream layout, defined once.

v2 replaces v1's Rice code by a multi-symbol range coder with adaptive cumulative
frequencies (one symbol per sample) and v1's fixed predictors by a sign-sign LMS predictor
on first differences. The golden model is :mod:`spikeforge.sim.models.compressor_v2`, the
host decoder :func:`spikeforge.host.compression.decode_v2`; ``docs/compression.md`` ("v2")
explains the design and the measurements. Per sample ``v`` (int16) of channel ``c``::

    s = code_of(v) with a codebook (v1's value map), else v; off the grid: escape
    d = s - h0 (h0: the channel's previous symbol); p = (sum_t w[t] * x[t] + 2**(W-1)) >> W
    e = d - p; u = zigzag(e)
    symbol = u                              if u < LITERALS
           = LITERALS + bitlen(u) - 5       else, then bitlen(u) - 1 raw bits of u
           = ESCAPE                         off the grid, then v in 16 raw bits
    range-code symbol with the channel's CDF; adapt the CDF towards it (shift by rate)
    w[t] += mu * sign(e) * sign(x[t]) (saturated); x = (d, x[0..T-2]); h0 = s

State carries across blocks; every ``sync_blocks`` blocks it is reset and the range coder
flushed, so a decoder can join the stream there. The coded stream is cut into blocks at
block ends (the bytes the coder has emitted by then); a block whose samples would cost more
than raw is sent verbatim (a flag at its start, coded with fixed probability).
"""

from dataclasses import dataclass, fields
from typing import Any

from .errors import ConfigError

__all__ = ["CodecV2Config", "LITERALS", "SYMBOLS", "ESCAPE", "CDF_BITS", "CDF_TOTAL",
           "VERBATIM_FLAG_BITS", "worst_case_bits_v2", "worst_case_ratio_v2",
           "initial_cdf", "RANGE_TOP", "LITERAL_BITS"]

#: Zigzagged residuals below ``LITERALS = 2**LITERAL_BITS`` are their own symbol.
LITERAL_BITS = 5
LITERALS = 1 << LITERAL_BITS
#: Residual buckets: symbol LITERALS + b - LITERAL_BITS - 1 holds u with bitlen(u) = b,
#: b = LITERAL_BITS + 1 .. 18, followed by the b - 1 low bits of u raw.
_BUCKETS = 18 - LITERAL_BITS
#: The escape symbol (a sample off the codebook's grid; 16 raw bits follow).
ESCAPE = LITERALS + _BUCKETS
#: Alphabet size of the range coder.
SYMBOLS = ESCAPE + 1
#: The CDF is kept in this many bits; every symbol has a frequency of at least 1.
CDF_BITS = 15
CDF_TOTAL = 1 << CDF_BITS
#: The per-block verbatim flag is coded with probability 2**-VERBATIM_FLAG_BITS for "yes".
VERBATIM_FLAG_BITS = 6
#: The range coder renormalises (shifts a byte out) while its range is below this.
RANGE_TOP = 1 << 24


@dataclass(frozen=True)
class CodecV2Config:
    """Parameters of the v2 coder (build-time, fixed in the bitstream).

    block_sweeps: sweeps per block (a frame's payload; the coder's delay).
    sync_blocks: state reset and coder flush every this many blocks (0: only at the start).
    taps: LMS taps on first differences; weight_bits: the weights' fractional bits;
    mu: the sign-sign step (integer, added to a weight); rate_max: slowest CDF adaptation
    (the CDF moves 2**-rate of the way to the symbol; rate grows from 4 to rate_max as a
    channel's symbols are counted).
    codebook / codebook_bits: v1's value map (:class:`~spikeforge.firmware.compression.
    Codebook`), learned from the live stream's first seconds, never from the file coded.
    """

    enabled: bool = False
    block_sweeps: int = 32
    sync_blocks: int = 0
    taps: int = 8
    weight_bits: int = 10
    mu: int = 1
    rate_max: int = 8
    codebook: bool = False
    codebook_bits: int = 10

    def __post_init__(self) -> None:
        ranges = {"block_sweeps": (1, 4096), "sync_blocks": (0, 1 << 20), "taps": (0, 32),
                  "weight_bits": (4, 14), "mu": (1, 64), "rate_max": (4, 10),
                  "codebook_bits": (1, 10)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"codec v2 {name} must be an integer {low}..{high}, not "
                                  f"{value!r}")
        for name in ("enabled", "codebook"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"codec v2 {name} must be True or False")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def initial_cdf() -> list[int]:
    """The CDF every channel starts from (a design constant, not learned from data):
    cumulative frequencies ``c[0..SYMBOLS]``, ``c[0] = 0``, ``c[SYMBOLS] = CDF_TOTAL -
    SYMBOLS``; symbol ``i`` takes ``[c[i] + i, c[i+1] + i + 1)`` of ``CDF_TOTAL``. A
    geometric prior over the literals, halving per bucket, escape rare."""
    weights = [0.93 ** u for u in range(LITERALS)]
    weights += [weights[-1] * 4 * 0.5 ** b for b in range(_BUCKETS)]
    weights += [1e-4]
    total = sum(weights)
    span = CDF_TOTAL - SYMBOLS
    out, acc = [0], 0.0
    for w in weights:
        acc += w
        out.append(round(acc / total * span))
    out[-1] = span
    return out


def worst_case_bits_v2(channels: int, block_sweeps: int) -> int:
    """Most bits a block takes, whatever the input: verbatim (16 bits a sample), the flag
    (at most VERBATIM_FLAG_BITS + 1 bits) and a byte of range-coder slack."""
    return 16 * channels * block_sweeps + VERBATIM_FLAG_BITS + 1 + 8


def worst_case_ratio_v2(channels: int, block_sweeps: int) -> float:
    return 16 * channels * block_sweeps / worst_case_bits_v2(channels, block_sweeps)
