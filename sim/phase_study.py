"""Which band-pass the test source's last spike needs: our detector behind other filters.

``python -m spikeforge.sim.phase_study`` takes the test-signal source's recording (30 kS/s,
noise about 20 uV, 2 s as in ``spikeforge bench detect``'s table) and runs the product's
detector (the bit-exact model, :func:`spikeforge.sim.accuracy.product_detector`) behind
different band-passes, each scored with the unit score:

* our conditioner (causal IIR: what the gateware has);
* SpikeInterface's band-pass (5th-order Butterworth, 300-6000 Hz) applied forwards and
  backwards (zero phase: what ``detect_peaks`` sees in SpikeInterface's usual pipeline);
* the same Butterworth applied once (causal);
* linear-phase FIR band-passes (``scipy.signal.firwin``) of several lengths: causal, with
  the symmetric response of a zero-phase filter, delayed by half their length (the events'
  times are moved back by that delay before scoring).

It says whether ours' one spike fewer than SpikeInterface's own pipeline on that recording
is the filter or the detector, and what a causal filter would cost to close it
(docs/detection.md, "Echo suppression").
"""

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from spikeforge.firmware.config import SystemConfig, TestSourceConfig

from .accuracy import (
    MATCH_WINDOW_MS,
    WARMUP_S,
    _test_source_probe,
    product_detector,
    score_units,
    test_source_truth,
)
from .models.detector import condition, detect
from .models.source import source_signal

__all__ = ["FilterRow", "study", "format_rows", "main"]

#: The band of SpikeInterface's ``bandpass_filter`` as the benchmark calls it.
SI_BAND_HZ = (300.0, 6000.0)


@dataclass(frozen=True)
class FilterRow:
    name: str
    delay: int        #: samples the filter delays a spike by design (0: none, or ours)
    hits: int
    events: int
    truth: int

    @property
    def f1(self) -> float:
        return 2 * self.hits / (self.events + self.truth) if self.events + self.truth else 0.0


def study(*, seconds: float = 2.0, taps: tuple[int, ...] = (61, 91, 121),
          band_hz: tuple[float, float] = SI_BAND_HZ) -> list[FilterRow]:
    """The rows of the study (see the module docstring)."""
    import scipy.signal as ss

    config = SystemConfig(channels=4, test_source=TestSourceConfig(noise_shift=0,
                                                                  spike_rate_hz=20.0))
    rate = config.sample_rate_hz
    signal = source_signal(config, int(seconds * rate))
    raw = signal.samples.astype(np.float64)
    truth = test_source_truth(signal, 104.0)
    detector = config.replace(detector=product_detector(_test_source_probe(4), 4, rate))
    window = MATCH_WINDOW_MS * 1e-3 * rate
    span = (WARMUP_S * rate, raw.shape[0] - window)

    def row(name: str, filtered: np.ndarray, delay: int = 0) -> FilterRow:
        y = np.clip(np.round(filtered), -32768, 32767).astype(np.int16)
        events = detect(detector, y)
        score = score_units(events.sweep - delay, events.channel, truth, window, *span)
        return FilterRow(name, delay, score.hits, score.detected, score.truth)

    sos = ss.butter(5, band_hz, btype="bandpass", fs=rate, output="sos")
    band = f"{band_hz[0]:g}-{band_hz[1]:g} Hz"
    filters: list[tuple[str, Callable[[], np.ndarray], int]] = [
        ("our conditioner (causal IIR)", lambda: condition(config, signal.samples), 0),
        (f"Butterworth {band}, zero phase", lambda: ss.sosfiltfilt(sos, raw, axis=0), 0),
        (f"Butterworth {band}, causal", lambda: ss.sosfilt(sos, raw, axis=0), 0),
    ]
    for n in taps:
        h = ss.firwin(n, band_hz, pass_zero=False, fs=rate)
        filters.append((f"linear-phase FIR {band}, {n} taps", (
            lambda h=h: ss.lfilter(h, 1.0, raw, axis=0)), (n - 1) // 2))
    return [row(name, make(), delay) for name, make, delay in filters]


def format_rows(rows: list[FilterRow]) -> str:
    lines = ["| band-pass before our detector | delay (samples) | hits / events / spikes | "
             "unit F1 |", "| --- | --- | --- | --- |"]
    lines += [f"| {r.name} | {r.delay} | {r.hits} / {r.events} / {r.truth} | {r.f1:.4f} |"
              for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m spikeforge.sim.phase_study",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--taps", type=int, action="append",
                        help="FIR length (repeatable; default 61, 91, 121)")
    args = parser.parse_args(argv)
    taps = tuple(args.taps) if args.taps else (61, 91, 121)
    print(format_rows(study(seconds=args.seconds, taps=taps)))


if __name__ == "__main__":
    main()
