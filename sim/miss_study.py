"""Which ground-truth spikes the detector misses, which events are false, and why.

``python -m spikeforge.sim.miss_study`` runs the bit-exact models (conditioner + detector,
as ``spikeforge bench detect`` scores them) on the test-signal source's recording
(30 kS/s, 4 s, noise about 20 uV with ``--noise-shift 0``) and sorts every missed
ground-truth spike into one cause:

* ``below threshold``: no sample within the match window exceeds the threshold in force
  (the score's extremum is below k sigma): an amplitude loss;
* ``blind``: some sample exceeds the threshold, but the channel was searching or dead
  after another event (an overlapping spike);
* ``misaligned``: an event was made for it, but its time is outside the match window.

For every spike it also prints the distribution of the event-minus-truth offset (the
filter's group delay plus the alignment), and with SpikeInterface installed which of our
misses SpikeInterface's ``detect_peaks`` (own zero-phase band-pass, as in the benchmark)
finds. The numbers are counts, not estimates: anyone can rerun them.
"""

import argparse
from collections import Counter
from dataclasses import dataclass

import numpy as np

from spikeforge.firmware.config import DetectorConfig, SystemConfig, TestSourceConfig

from .accuracy import MATCH_WINDOW_MS, THRESHOLD_K, WARMUP_S, BenchmarkUnavailable, _within
from .models.detector import condition, detect
from .models.source import source_signal

__all__ = ["Miss", "MissReport", "study", "main"]


@dataclass(frozen=True)
class Miss:
    channel: int
    sweep: int              #: the true peak's sample index
    cause: str              #: "below threshold", "blind" or "misaligned"
    margin_sigma: float     #: best score minus threshold within the window, in sigma


@dataclass
class MissReport:
    truth: int
    found: int
    detected: int
    false_events: int
    misses: list[Miss]
    offsets: Counter        #: event sweep - true peak, over matched spikes
    si_found_of_ours_missed: int | None = None
    si_missed: int | None = None
    #: per channel: (sigma estimate's mean, its standard deviation over time, and sigma of
    #: the whole recording as SpikeInterface estimates it, median|y| / 0.6745), in LSB
    sigma: list[tuple[float, float, float]] | None = None


def study(*, noise_shift: int = 0, seconds: float = 4.0, channels: int = 4,
          detector: DetectorConfig | None = None, with_si: bool = True) -> MissReport:
    """The miss analysis of the test-source recording (see the module docstring)."""
    det = detector or DetectorConfig(threshold_k=THRESHOLD_K, polarity="negative")
    config = SystemConfig(channels=channels, detector=det, test_source=TestSourceConfig(
        noise_shift=noise_shift, spike_rate_hz=20.0))
    rate = config.sample_rate_hz
    recording = source_signal(config, int(seconds * rate))
    filtered = condition(config, recording.samples)
    events = detect(config, filtered, trace=True)
    window = MATCH_WINDOW_MS * 1e-3 * rate
    start, stop = WARMUP_S * rate, recording.samples.shape[0] - window
    score = -filtered.astype(np.int64)        # negative polarity
    sigma_lsb = events.threshold_trace / max(det.threshold_k, 1e-9)
    half = int(window)

    misses: list[Miss] = []
    offsets: Counter = Counter()
    truth_total = found = detected = false_events = 0
    si_found = si_missed = None
    si_times = _si_times(recording.samples, rate) if with_si else None
    if si_times is not None:
        si_found = si_missed = 0
    for c in range(channels):
        truth = recording.spike_peaks(c)
        truth = truth[(truth >= start) & (truth < stop)]
        ours = events.sweep[events.channel == c]
        ours = ours[(ours >= start) & (ours < stop)]
        truth_total += len(truth)
        detected += len(ours)
        false_events += int((~_within(ours.astype(float), truth.astype(float), window)).sum())
        hit = _within(truth.astype(float), ours.astype(float), window)
        found += int(hit.sum())
        for t in truth[hit]:
            nearest = ours[np.argmin(np.abs(ours - t))]
            offsets[int(nearest - t)] += 1
        si_c = None if si_times is None else si_times[1][si_times[0] == c].astype(float)
        for t in truth[~hit]:
            lo, hi = max(int(t) - half, 0), min(int(t) + half + 1, len(score))
            over = score[lo:hi, c] - events.threshold_trace[lo:hi, c]
            best = int(np.argmax(over))
            margin = float(over[best] / max(sigma_lsb[lo + best, c], 1e-9))
            if (over > 0).any():
                armed_crossing = ((over > 0) & events.armed_trace[lo:hi, c]).any()
                cause = "misaligned" if armed_crossing else "blind"
            else:
                cause = "below threshold"
            misses.append(Miss(c, int(t), cause, margin))
            if si_c is not None:
                if _within(np.array([float(t)]), si_c, window)[0]:
                    si_found += 1
        if si_c is not None:
            si_missed += int((~_within(truth.astype(float), si_c, window)).sum())
    scored = slice(int(start), None)
    sigma = [(float(sigma_lsb[scored, c].mean()), float(sigma_lsb[scored, c].std()),
              float(np.median(np.abs(filtered[scored, c])) / 0.6745)) for c in range(channels)]
    return MissReport(truth_total, found, detected, false_events, misses, offsets,
                      si_found, si_missed, sigma)


def _si_times(samples: np.ndarray, rate_hz: int) -> tuple[np.ndarray, np.ndarray] | None:
    from .accuracy import _si_detect

    try:
        times, chans = _si_detect(samples, rate_hz, bandpass=True)
    except BenchmarkUnavailable:
        return None
    return np.asarray(chans), np.asarray(times)


def format_report(report: MissReport) -> str:
    lines = [f"ground-truth spikes scored: {report.truth}; found: {report.found} "
             f"(recall {report.found / max(report.truth, 1):.3f}); events: {report.detected}, "
             f"of which false: {report.false_events}"]
    causes = Counter(m.cause for m in report.misses)
    lines.append("missed spikes by cause: " + (", ".join(
        f"{cause} {n}" for cause, n in causes.most_common()) or "none"))
    by_channel = Counter(m.channel for m in report.misses)
    lines.append("missed spikes by channel: " + ", ".join(
        f"ch{c} {n}" for c, n in sorted(by_channel.items())))
    if report.misses:
        margins = np.array([m.margin_sigma for m in report.misses])
        lines.append(f"best score - threshold within the window, missed spikes (sigma): "
                     f"median {np.median(margins):+.2f}, max {margins.max():+.2f}")
    if report.si_found_of_ours_missed is not None:
        lines.append(f"SpikeInterface (own zero-phase band-pass) finds "
                     f"{report.si_found_of_ours_missed} of our {len(report.misses)} misses, "
                     f"and misses {report.si_missed} spikes itself")
    for c, (mean, spread, whole) in enumerate(report.sigma or []):
        lines.append(f"ch{c} sigma estimate (threshold / k): mean {mean:.2f} LSB, wanders by "
                     f"{spread:.2f} ({spread / mean:.1%}); whole recording median|y|/0.6745 "
                     f"{whole:.2f}")
    total = sum(report.offsets.values())
    if total:
        spread = ", ".join(f"{k:+d}: {v}" for k, v in sorted(report.offsets.items()))
        lines.append(f"event - true peak (samples) over found spikes: {spread}")
    for m in report.misses:
        lines.append(f"  ch{m.channel} sample {m.sweep}: {m.cause} "
                     f"(margin {m.margin_sigma:+.2f} sigma)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m spikeforge.sim.miss_study",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--noise-shift", type=int, default=0,
                        help="test source noise: 0 is about 20 uV, 1 about 10 uV")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--noise-step", type=int, default=DetectorConfig.noise_step,
                        help="noise tracker step in 1/64 LSB (4: the earlier 1/16 LSB)")
    parser.add_argument("--no-si", action="store_true", help="skip SpikeInterface")
    args = parser.parse_args(argv)
    detector = DetectorConfig(threshold_k=THRESHOLD_K, polarity="negative",
                              noise_step=args.noise_step)
    print(format_report(study(noise_shift=args.noise_shift, seconds=args.seconds,
                              detector=detector, with_si=not args.no_si)))


if __name__ == "__main__":
    main()
