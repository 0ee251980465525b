"""How far any coder of the gateware coder's kind could go on a recording: the entropy bound
of fixed-predictor residuals.

The gateware coder maps each value to its ADC code (the codebook), predicts it from the
previous codes with a fixed polynomial predictor and codes the residual with an adaptive
Rice code. With the *ideal* value map (each distinct value numbered in order) and a
*perfect static* entropy coder for each channel of each recording (its own residual
histogram, the model itself sent free), the bits are the empirical entropy of the residuals.
No coder of that kind, adaptive or not, beats it by more than the model cost; a coder that
wants more must predict better (more taps, LMS) or model context.

    python -m spikeforge.sim.entropy_bound ../shared/data/n1-dev [more files or folders]

prints, per recording and overall, raw 16-bit bits / bound bits for the predictor orders
0 to 3. The first sample of each channel costs 16 bits. These are bounds, not a coder: the
benchmark (`spikeforge bench compress`) measures the coder.

A second, tighter figure is for the coder's code family: the *Golomb oracle* codes the
order-1 residuals of each block of ``--block`` sweeps (default 1024) with the best Golomb
code for that block (any parameter M, not only the powers of two a Rice code has), chosen
knowing the block and sent free. It is a reference, not a bound: an adaptive code can beat
a per-block static one where the statistics change inside a block. On stationary residuals
the gap between it and the entropy bound is what the code family itself costs.
"""

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ORDERS", "BoundResult", "residual_entropy_bits", "golomb_oracle_bits",
           "entropy_bound", "main"]

#: Fixed predictor orders the bound is computed for (the coder's, see firmware/compression).
ORDERS = (0, 1, 2, 3)


@dataclass(frozen=True)
class BoundResult:
    name: str
    samples: int
    bits: dict[int, float]          #: order -> bound bits for the whole recording
    golomb_bits: float              #: the Golomb oracle's bits (order 1)

    def ratio(self, order: int) -> float:
        return 16 * self.samples / self.bits[order]

    @property
    def golomb_ratio(self) -> float:
        return 16 * self.samples / self.golomb_bits


def residual_entropy_bits(symbols: np.ndarray, order: int) -> float:
    """Bits to code one channel's ``symbols``: 16 for each of the first ``max(order, 1)``
    samples, then the empirical entropy of the order-``order`` differences times their
    count."""
    symbols = np.asarray(symbols, dtype=np.int64)
    head = min(max(order, 1), len(symbols))
    residuals = np.diff(symbols, n=order)[head - order:] if order else symbols[head:]
    if residuals.size == 0:
        return 16.0 * head
    _, counts = np.unique(residuals, return_counts=True)
    p = counts / residuals.size
    return 16.0 * head + float(-(p * np.log2(p)).sum()) * residuals.size


def golomb_oracle_bits(symbols: np.ndarray, block: int) -> float:
    """Bits to code one channel's ``symbols``: 16 for the first, then each block of
    ``block`` order-1 residuals (zigzag mapped) with the Golomb code of the best parameter
    for that block."""
    symbols = np.asarray(symbols, dtype=np.int64)
    residuals = np.diff(symbols)
    u = np.where(residuals >= 0, 2 * residuals, -2 * residuals - 1)
    bits = 16.0
    for start in range(0, u.size, block):
        part = u[start:start + block]
        mean = float(part.mean())
        # The best M is near ln(2)·mean for a geometric shape; search well around it.
        low, high = max(1, int(mean * 0.25)), max(2, int(mean * 2.0) + 2)
        best = None
        for m in range(low, high + 1):
            b = (m - 1).bit_length()          # truncated binary remainder: b-1 or b bits
            cut = (1 << b) - m
            remainder = part % m
            size = int((part // m).sum()) + part.size + (
                int(np.where(remainder < cut, b - 1, b).sum()) if m > 1 else 0)
            best = size if best is None else min(best, size)
        bits += best
    return bits


def entropy_bound(name: str, samples: np.ndarray, block: int = 1024) -> BoundResult:
    """The bound for one recording of shape (sweeps, channels), with the ideal value map of
    each channel (its distinct values numbered in order)."""
    samples = np.asarray(samples)
    if samples.ndim == 1:
        samples = samples[:, None]
    bits = dict.fromkeys(ORDERS, 0.0)
    golomb = 0.0
    for channel in samples.T:
        codes = np.unique(channel, return_inverse=True)[1]
        for order in ORDERS:
            bits[order] += residual_entropy_bits(codes, order)
        golomb += golomb_oracle_bits(codes, block)
    return BoundResult(name, int(samples.size), bits, golomb)


def _table(results: Iterable[BoundResult]) -> str:
    results = list(results)
    header = ("| recording | samples | " + " | ".join(f"order {o}" for o in ORDERS)
              + " | Golomb oracle, order 1 |")
    lines = [header, "| --- | ---: |" + " ---: |" * (len(ORDERS) + 1)]
    for r in results:
        lines.append(f"| {r.name} | {r.samples:,} | "
                     + " | ".join(f"{r.ratio(o):.3f}" for o in ORDERS)
                     + f" | {r.golomb_ratio:.3f} |")
    total = sum(r.samples for r in results)
    overall = [16 * total / sum(r.bits[o] for r in results) for o in ORDERS]
    overall.append(16 * total / sum(r.golomb_bits for r in results))
    lines.append(f"| **overall** | {total:,} | " + " | ".join(f"**{x:.3f}**" for x in overall)
                 + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from spikeforge.firmware.errors import SpikeforgeError
    from spikeforge.sim.compression_bench import file_recordings

    parser = argparse.ArgumentParser(
        prog="python -m spikeforge.sim.entropy_bound",
        description="Entropy bound of fixed-predictor residuals (ratio raw/bound), per "
                    "recording and overall.")
    parser.add_argument("paths", nargs="+", type=Path, help="WAV / int16 files or folders")
    parser.add_argument("--channels", type=int, help="channels of flat int16 files")
    parser.add_argument("--block", type=int, default=1024,
                        help="sweeps per block of the Golomb oracle (default 1024)")
    args = parser.parse_args(argv)
    try:
        recordings = file_recordings(args.paths, args.channels)
    except SpikeforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("Ratio raw 16-bit bits / entropy bound (ideal value map, static per-channel "
          "model, model not counted)\n")
    if args.block < 1:
        print(f"error: --block must be at least 1, not {args.block}", file=sys.stderr)
        return 2
    print(_table(entropy_bound(r.name, r.samples, args.block) for r in recordings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
