"""Why the conditioner's band is what it is: spike-trough SNR of candidate band-pass filters.

``python -m spikeforge.sim.filter_study`` filters the test-signal source's recording
(30 kS/s, noise about 20 uV, the four template scales 4/8 .. 7/8 on channels 0..3) with
floating-point versions of candidate filters and prints, per filter, for the two smallest
spike scales: the median trough / sigma (sigma = median|y| / 0.6745, as the detector
estimates it) and the fraction of spikes whose trough exceeds 5 sigma (what a k = 5
amplitude detector can find at best). It compares causal filters (what a chip can run)
with SpikeInterface's zero-phase 5th-order Butterworth (what the benchmark's reference runs).

This is a study in floating point (SciPy), not the bit-exact model; the benchmark
(``spikeforge bench detect``) scores the chosen filter bit for bit.
"""

import numpy as np
import scipy.signal as signal

from spikeforge.firmware.config import SystemConfig, TestSourceConfig

from .models.source import source_signal

__all__ = ["trough_snr", "study", "main"]

RATE_HZ = 30_000
SECONDS = 4
WARMUP = 6000  # samples not scored


def _first_order_lowpass(cutoff_hz: float) -> tuple[list[float], list[float]]:
    a = 1 - np.exp(-2 * np.pi * cutoff_hz / RATE_HZ)  # the conditioner's EMA stage
    return [a], [1, -(1 - a)]


def _first_order_highpass(cutoff_hz: float) -> tuple[list[float], list[float]]:
    a = 1 - np.exp(-2 * np.pi * cutoff_hz / RATE_HZ)  # y = x - EMA(x)
    return [1 - a, -(1 - a)], [1, -(1 - a)]


def trough_snr(y: np.ndarray, peaks: list[np.ndarray], channels: tuple[int, ...] = (0, 1)
               ) -> list[tuple[float, float, float]]:
    """Per channel: (median trough / sigma, fraction of troughs beyond 5 sigma, sigma)."""
    out = []
    for c in channels:
        sigma = np.median(np.abs(y[WARMUP:, c])) / 0.6745
        at = peaks[c][(peaks[c] > WARMUP) & (peaks[c] < len(y) - 8)]
        troughs = np.array([y[p - 3:p + 8, c].min() for p in at])
        out.append((float(-np.median(troughs) / sigma), float(np.mean(-troughs / sigma > 5)),
                    float(sigma)))
    return out


def study() -> list[tuple[str, list[tuple[float, float, float]]]]:
    config = SystemConfig(channels=4, test_source=TestSourceConfig(noise_shift=0,
                                                                   spike_rate_hz=20.0))
    recording = source_signal(config, SECONDS * RATE_HZ)
    x = recording.samples.astype(float)
    x -= x.mean(axis=0)
    peaks = [recording.spike_peaks(c) for c in range(4)]

    def chain(*filters):
        y = x
        for b, a in filters:
            y = signal.lfilter(b, a, y, axis=0)
        return y

    hp, lp = _first_order_highpass, _first_order_lowpass
    butter5 = signal.butter(5, [300, 6000], btype="band", fs=RATE_HZ, output="sos")
    candidates = [
        ("raw (DC removed)", x),
        ("causal: HP 300 + 2 x LP 6000 (old default)", chain(hp(300), lp(6000), lp(6000))),
        ("causal: HP 300 + 1 x LP 6000", chain(hp(300), lp(6000))),
        ("causal: HP 300 + biquad Butterworth LP 6000",
         chain(hp(300), signal.butter(2, 6000, fs=RATE_HZ))),
        ("causal: HP 300 + 2 x LP 4000", chain(hp(300), lp(4000), lp(4000))),
        ("causal: HP 300 + 2 x LP 3000 (default)", chain(hp(300), lp(3000), lp(3000))),
        ("causal: HP 300 + biquad Butterworth LP 3000",
         chain(hp(300), signal.butter(2, 3000, fs=RATE_HZ))),
        ("causal: HP 300 + 2 x LP 2000", chain(hp(300), lp(2000), lp(2000))),
        ("causal: Butterworth 5th order 300-6000", signal.sosfilt(butter5, x, axis=0)),
        ("zero-phase: Butterworth 5th order 300-6000 (SpikeInterface)",
         signal.sosfiltfilt(butter5, x, axis=0)),
    ]
    return [(name, trough_snr(y, peaks)) for name, y in candidates]


def main() -> None:
    print("| filter | ch0 (scale 4/8) trough/sigma, >5 sigma, sigma (LSB) | ch1 (5/8) "
          "trough/sigma, >5 sigma, sigma (LSB) |")
    print("| --- | --- | --- |")
    for name, per_channel in study():
        cells = " | ".join(f"{snr:.2f}, {frac:.3f}, {sigma:.1f}"
                           for snr, frac, sigma in per_channel)
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
