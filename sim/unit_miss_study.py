"""Why ours and SpikeInterface's ``locally_exclusive`` differ on a ground-truth recording.

``python -m spikeforge.sim.unit_miss_study --seed 1 --noise-uv 5 --layout 4x5`` runs what
``spikeforge bench detect`` scores as "ours" (the bit-exact conditioner and detector models
with local exclusion on the probe's 30 um table) and SpikeInterface's ``detect_peaks``
(``locally_exclusive``, on its own band-pass and on our conditioner) on one SpikeInterface
ground-truth recording, under the unit score (``sim.accuracy.score_units``), and prints:

* per unit (with its SNR): spikes, and how many each method finds;
* every spike the reference method finds and ours does not, with its cause: ``excluded``
  (the detector without exclusion finds it: a neighbour's candidate beat it), ``below
  threshold`` (no sample of the unit's own channels within the match window beats our
  threshold in force), ``blind`` (one does, but the channel was searching or dead after
  another event) or ``misaligned`` (an event was made, outside the window); with the best
  margin over the threshold in sigma;
* every method's false events, by where they lie: a *late trough* (0.5-2.5 ms after a
  spike of a unit whose own channels hold the event's channel: the band-passed spike's
  late negative phase crossing again) or *other*;
* the noise estimate: our tracker's sigma (threshold / k, its mean and wander over the
  scored interval) against SpikeInterface's ``get_noise_levels`` on the same conditioned
  samples.

Needs SpikeInterface (``pip install -e '.[bench]'``). Counts, not estimates.
"""

import argparse
import warnings
from dataclasses import dataclass

import numpy as np

from spikeforge.firmware.config import DetectorConfig, SystemConfig

from .accuracy import (
    MATCH_WINDOW_MS,
    THRESHOLD_K,
    WARMUP_S,
    Layout,
    UnitScore,
    _si_detect,
    ground_truth_units,
    product_detector,
    score_units,
)
from .models.detector import condition, detect

__all__ = ["UnitMiss", "UnitStudy", "study", "format_study", "main"]

#: A false event this long after a spike of a unit on its channel is that spike's late trough.
LATE_TROUGH_MS = (0.5, 2.5)
DEFAULT_LAYOUT = Layout(4, 5)
METHODS = ("ours", "si_locally_exclusive", "si_locally_exclusive_our_filter")


@dataclass(frozen=True)
class UnitMiss:
    spike: int              #: index into the truth
    unit: int
    time: int               #: sample of the true trough
    cause: str              #: "excluded", "below threshold", "blind" or "misaligned"
    margin_sigma: float     #: best score - threshold on the unit's channels, in sigma


@dataclass
class UnitStudy:
    name: str
    snr: tuple[float, ...]
    scores: dict[str, UnitScore]
    reference: str
    #: spikes the reference finds and ours does not
    missed: list[UnitMiss]
    #: spikes ours finds and the reference does not
    ours_only: int
    #: per method: (late-trough false events, other false events)
    false_events: dict[str, tuple[int, int]]
    #: per channel: (our sigma's mean, its standard deviation, SpikeInterface's noise level)
    sigma: list[tuple[float, float, float]]


def _false_split(times: np.ndarray, chans: np.ndarray, score: UnitScore, truth, start: float,
                 stop: float, rate_hz: int) -> tuple[int, int]:
    matched = {e for e, _ in score.pairs}
    lo, hi = (ms * 1e-3 * rate_hz for ms in LATE_TROUGH_MS)
    late = other = 0
    for e in range(len(times)):
        if e in matched or not start <= times[e] < stop:
            continue
        own = np.array([chans[e] in truth.channels[u] for u in truth.units])
        after = times[e] - truth.times
        if (own & (after > lo) & (after <= hi)).any():
            late += 1
        else:
            other += 1
    return late, other


def study(*, seed: int = 1, noise_uv: float = 5.0, layout: Layout = DEFAULT_LAYOUT,
          rate_hz: int = 30_000, seconds: float = 2.0,
          reference: str = "si_locally_exclusive_our_filter") -> UnitStudy:
    """The comparison of one recording (see the module docstring)."""
    samples, truth, probe = ground_truth_units(seed=seed, noise_uv=noise_uv, rate_hz=rate_hz,
                                               seconds=seconds, layout=layout)
    channels = samples.shape[1]
    plain = DetectorConfig(threshold_k=THRESHOLD_K, polarity="negative")
    config = SystemConfig(channels=channels, sample_rate_hz=rate_hz, detector=plain)
    filtered = condition(config, samples)
    ours = detect(config.replace(detector=product_detector(probe, channels, rate_hz)),
                  filtered, trace=True)
    without = detect(config, filtered)
    window = MATCH_WINDOW_MS * 1e-3 * rate_hz
    start, stop = WARMUP_S * rate_hz, samples.shape[0] - window
    detections = {
        "ours": (ours.sweep, ours.channel),
        "si_locally_exclusive": _si_detect(samples, rate_hz, True, "locally_exclusive", probe),
        "si_locally_exclusive_our_filter": _si_detect(filtered, rate_hz, False,
                                                      "locally_exclusive", probe),
    }
    scores = {m: score_units(t, c, truth, window, start, stop)
              for m, (t, c) in detections.items()}
    without_found = {s for _, s in score_units(without.sweep, without.channel, truth, window,
                                               start, stop).pairs}
    ours_found = {s for _, s in scores["ours"].pairs}
    ref_found = {s for _, s in scores[reference].pairs}
    score = -filtered.astype(np.int64)
    half = int(window)
    missed = []
    for s in sorted(ref_found - ours_found):
        unit, t = int(truth.units[s]), int(truth.times[s])
        own = list(truth.channels[unit])
        lo, hi = max(t - half, 0), min(t + half + 1, samples.shape[0])
        threshold = ours.threshold_trace[lo:hi][:, own]
        over = score[lo:hi][:, own] - threshold
        sigma = np.maximum(threshold / THRESHOLD_K, 1e-9)
        if s in without_found:
            cause = "excluded"
        elif not (over > 0).any():
            cause = "below threshold"
        elif not ((over > 0) & ours.armed_trace[lo:hi][:, own]).any():
            cause = "blind"
        else:
            cause = "misaligned"
        missed.append(UnitMiss(s, unit, t, cause, float((over / sigma).max())))
    false_events = {m: _false_split(np.asarray(t), np.asarray(c), scores[m], truth, start, stop,
                                    rate_hz) for m, (t, c) in detections.items()}
    from spikeinterface.core import NumpyRecording, get_noise_levels

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        si_noise = get_noise_levels(NumpyRecording([filtered.astype(np.float32)], rate_hz),
                                    return_in_uV=False, seed=0, progress_bar=False)
    ours_sigma = ours.threshold_trace[int(start):] / THRESHOLD_K
    sigma = [(float(ours_sigma[:, c].mean()), float(ours_sigma[:, c].std()),
              float(si_noise[c])) for c in range(channels)]
    name = (f"SI gt {layout.channels}ch {layout.units}u {layout.firing_hz:g}Hz seed={seed} "
            f"noise={noise_uv:g}uV @ {rate_hz // 1000} kS/s, {seconds:g} s")
    return UnitStudy(name, truth.snr, scores, reference, missed,
                     len(ours_found - ref_found), false_events, sigma)


def format_study(r: UnitStudy) -> str:
    lines = [r.name]
    for m in METHODS:
        s = r.scores[m]
        late, other = r.false_events[m]
        lines.append(f"{m}: P {s.precision:.3f} R {s.recall:.3f} F1 {s.f1:.3f} (hits {s.hits} "
                     f"of {s.truth}, events {s.detected}; false: late trough {late}, "
                     f"other {other})")
    lines.append("per unit (SNR: spikes; " + ", ".join(METHODS) + " hits):")
    spikes = r.scores["ours"].unit_spikes
    for u, snr in enumerate(r.snr):
        hits = " ".join(str(r.scores[m].unit_hits[u]) for m in METHODS)
        lines.append(f"  unit {u} (SNR {snr:.1f}): {spikes[u]}; {hits}")
    lines.append(f"{r.reference} finds {len(r.missed)} spikes ours misses; ours finds "
                 f"{r.ours_only} it misses")
    for m in r.missed:
        lines.append(f"  unit {m.unit} (SNR {r.snr[m.unit]:.1f}) sample {m.time}: {m.cause} "
                     f"(margin {m.margin_sigma:+.2f} sigma)")
    for c, (mean, spread, si) in enumerate(r.sigma):
        lines.append(f"ch{c} sigma: ours mean {mean:.2f} LSB, wanders by {spread / mean:.1%}; "
                     f"SpikeInterface {si:.2f} LSB (ours / SI {mean / si:.3f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m spikeforge.sim.unit_miss_study",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise-uv", type=float, default=5.0)
    parser.add_argument("--layout", type=Layout.parse, default=DEFAULT_LAYOUT,
                        help="CHANNELSxUNITS[@HZ], as spikeforge bench detect --layout")
    parser.add_argument("--rate", type=int, default=30_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--reference", choices=METHODS[1:],
                        default="si_locally_exclusive_our_filter")
    args = parser.parse_args(argv)
    print(format_study(study(seed=args.seed, noise_uv=args.noise_uv, layout=args.layout,
                             rate_hz=args.rate, seconds=args.seconds,
                             reference=args.reference)))


if __name__ == "__main__":
    main()
