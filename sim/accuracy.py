"""Detection accuracy benchmark: the bit-exact models against ground truth and SpikeInterface.

``spikeforge bench detect`` runs :func:`run_benchmark`. Recordings:

* SpikeInterface's ``generate_ground_truth_recording`` (several seeds, noise levels, 20 and
  30 kS/s), quantised to int16 at :data:`UV_PER_LSB`; ground truth = every unit's spike
  times (the template peaks), matched regardless of channel;
* the test-signal source's own output (:func:`spikeforge.sim.models.source.source_signal`);
  ground truth = the injected template troughs, matched on their channel.

Each recording is run through :func:`~spikeforge.sim.models.detector.condition` and
:func:`~spikeforge.sim.models.detector.detect` (the gateware, bit for bit), and through
SpikeInterface's ``detect_peaks(method="by_channel")`` at the same threshold k and
polarity: (a) on SpikeInterface's own band-pass (300-6000 Hz, zero-phase) of the same
samples, its usual pipeline, and (b) on our conditioner's output, which isolates the
detection stage. Scores: a detected event is a true positive if a ground-truth spike is
within ``MATCH_WINDOW_MS``; recall is the fraction of ground-truth spikes with a detected
event that close. The first ``WARMUP_S`` of every recording is not scored for any method
(the device's filters and noise trackers start from reset).

SpikeInterface is an optional dependency (``pip install 'spikeforge[bench]'``).
"""

from dataclasses import dataclass

import numpy as np

from spikeforge.firmware.config import DetectorConfig, SystemConfig, TestSourceConfig
from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.host.errors import ExitCode

from .models.detector import condition, detect
from .models.source import source_signal

__all__ = ["UV_PER_LSB", "MATCH_WINDOW_MS", "WARMUP_S", "Score", "Row", "score_times",
           "run_benchmark", "format_table", "quantise", "ground_truth_recording",
           "NEO_THRESHOLD_K"]

#: Intan RHD2000 LSB.
UV_PER_LSB = 0.195
#: A detected event and a ground-truth spike match when at most this far apart.
MATCH_WINDOW_MS = 0.5
#: Not scored at the start of each recording (filters and noise trackers settle).
WARMUP_S = 0.2
#: Reference detection settings shared with our detector.
THRESHOLD_K = 5.0
PEAK_SIGN = "neg"
#: Threshold of the NEO option (k in units of median|psi| / 0.6745, not a Gaussian sigma:
#: psi is heavy-tailed, so its k is larger; ``spikeforge bench detect --neo-k`` changes it).
NEO_THRESHOLD_K = 15.0


class BenchmarkUnavailable(SpikeforgeError):
    """A benchmark (detection accuracy, compression) needs a package that is not installed:
    SpikeInterface, zstandard, soundfile (``pip install 'spikeforge[bench]'``)."""

    exit_code = ExitCode.ENVIRONMENT


@dataclass(frozen=True)
class Score:
    detected: int
    truth: int
    true_detected: int   #: detected events with a ground-truth spike in the window
    found_truth: int     #: ground-truth spikes with a detected event in the window

    @property
    def precision(self) -> float:
        return self.true_detected / self.detected if self.detected else 0.0

    @property
    def recall(self) -> float:
        return self.found_truth / self.truth if self.truth else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: "Score") -> "Score":
        return Score(self.detected + other.detected, self.truth + other.truth,
                     self.true_detected + other.true_detected,
                     self.found_truth + other.found_truth)


def _within(times: np.ndarray, reference: np.ndarray, window: float) -> np.ndarray:
    """For each of ``times``, whether some ``reference`` time is within ``window``."""
    if len(reference) == 0:
        return np.zeros(len(times), dtype=bool)
    ref = np.sort(reference)
    at = np.searchsorted(ref, times)
    before = ref[np.clip(at - 1, 0, len(ref) - 1)]
    after = ref[np.clip(at, 0, len(ref) - 1)]
    return (np.abs(times - before) <= window) | (np.abs(after - times) <= window)


def score_times(detected: np.ndarray, truth: np.ndarray, window: float, start: float,
                stop: float) -> Score:
    """Score event times against ground truth in [start, stop) (same units as window)."""
    detected = detected[(detected >= start) & (detected < stop)]
    truth = truth[(truth >= start) & (truth < stop)]
    return Score(len(detected), len(truth), int(_within(detected, truth, window).sum()),
                 int(_within(truth, detected, window).sum()))


def quantise(traces_uv: np.ndarray) -> np.ndarray:
    return np.clip(np.round(traces_uv / UV_PER_LSB), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class Row:
    name: str
    rate_hz: int
    channels: int
    seconds: float
    ours: Score
    si_own_filter: Score
    si_our_filter: Score
    neo: Score                           #: ours with the NEO pre-emphasis at ``neo_k``
    neo_k: float
    latency_samples: tuple[float, int]   #: median, max (peak -> sweep the event can leave)


def _si_detect(traces: np.ndarray, rate_hz: int, bandpass: bool) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """SpikeInterface's by-channel detection; returns (sample times, channels)."""
    try:
        import spikeinterface.preprocessing as spre
        from spikeinterface.core import NumpyRecording, get_noise_levels
        from spikeinterface.sortingcomponents.peak_detection import detect_peaks
    except ImportError as exc:
        raise BenchmarkUnavailable(
            f"the detection benchmark needs SpikeInterface ({exc}); install it with "
            "pip install 'spikeforge[bench]'") from None
    recording = NumpyRecording([traces.astype(np.float32)], sampling_frequency=rate_hz)
    if bandpass:
        recording = spre.bandpass_filter(recording, freq_min=300.0, freq_max=6000.0)
    noise = get_noise_levels(recording, return_in_uV=False, seed=0, progress_bar=False)
    peaks = detect_peaks(recording, method="by_channel", method_kwargs=dict(
        peak_sign=PEAK_SIGN, detect_threshold=THRESHOLD_K, noise_levels=noise),
        job_kwargs=dict(progress_bar=False))
    return peaks["sample_index"], peaks["channel_index"]


def _evaluate(name: str, samples: np.ndarray, rate_hz: int,
              truth: list[np.ndarray] | np.ndarray, per_channel: bool,
              neo_k: float = NEO_THRESHOLD_K) -> Row:
    channels = samples.shape[1]
    config = SystemConfig(channels=channels, sample_rate_hz=rate_hz,
                          detector=DetectorConfig(threshold_k=THRESHOLD_K, polarity="negative"))
    filtered = condition(config, samples)
    events = detect(config, filtered)
    neo_config = SystemConfig(channels=channels, sample_rate_hz=rate_hz,
                              detector=DetectorConfig(threshold_k=neo_k, neo=True))
    neo_events = detect(neo_config, filtered)
    window = MATCH_WINDOW_MS * 1e-3 * rate_hz
    start, stop = WARMUP_S * rate_hz, samples.shape[0] - window

    def score(times: np.ndarray, chans: np.ndarray) -> Score:
        if not per_channel:
            return score_times(times.astype(float), np.asarray(truth, float), window, start,
                               stop)
        total = Score(0, 0, 0, 0)
        for c in range(channels):
            total += score_times(times[chans == c].astype(float),
                                 np.asarray(truth[c], float), window, start, stop)
        return total

    ours = score(events.sweep, events.channel)
    neo = score(neo_events.sweep, neo_events.channel)
    si_own = score(*_si_detect(samples, rate_hz, bandpass=True))
    si_ours = score(*_si_detect(filtered, rate_hz, bandpass=False))

    # Latency: from the true peak to the sweep in which the event is emitted.
    all_truth = (np.concatenate(truth) if per_channel else np.asarray(truth)).astype(float)
    scored = events.sweep >= start
    peaks = events.sweep[scored]
    # The event leaves once its snippet is complete (and it was emitted).
    emit = np.maximum(events.emit_sweep[scored], peaks + events.post + 1)
    matched = _within(peaks.astype(float), all_truth, window)
    ref = np.sort(all_truth)
    if matched.any():
        nearest_at = np.clip(np.searchsorted(ref, peaks[matched]), 1, len(ref) - 1)
        left, right = ref[nearest_at - 1], ref[nearest_at]
        nearest = np.where(np.abs(peaks[matched] - left) <= np.abs(right - peaks[matched]),
                           left, right)
        delay = emit[matched] - nearest
        latency = (float(np.median(delay)), int(delay.max()))
    else:
        latency = (float("nan"), 0)
    return Row(name, rate_hz, channels, samples.shape[0] / rate_hz, ours, si_own, si_ours,
               neo, neo_k, latency)


def ground_truth_recording(*, seed: int, noise_uv: float, rate_hz: int, seconds: float,
                           channels: int) -> tuple[np.ndarray, np.ndarray]:
    """A SpikeInterface ground-truth recording (5 units), quantised to int16 at
    :data:`UV_PER_LSB`: (samples (sweeps, channels), sorted spike sample indices).

    Shared by the detection and the compression benchmarks.
    """
    try:
        from spikeinterface.core import generate_ground_truth_recording
    except ImportError as exc:
        raise BenchmarkUnavailable(
            f"this benchmark needs SpikeInterface ({exc}); install it with "
            "pip install 'spikeforge[bench]'") from None
    recording, sorting = generate_ground_truth_recording(
        durations=[seconds], sampling_frequency=float(rate_hz), num_channels=channels,
        num_units=5, seed=seed, noise_kwargs=dict(noise_levels=noise_uv, strategy="on_the_fly"))
    samples = quantise(recording.get_traces())
    return samples, np.sort(sorting.to_spike_vector()["sample_index"])


def run_benchmark(*, seconds: float = 4.0, seeds: tuple[int, ...] = (1, 2),
                  noise_uv: tuple[float, ...] = (5.0, 10.0), rates: tuple[int, ...] = (20_000,
                                                                                    30_000),
                  channels: int = 4, neo_k: float = NEO_THRESHOLD_K,
                  progress=print) -> list[Row]:
    """Score every recording; ``progress`` gets one line per recording."""
    rows = []
    for rate in rates:
        for noise in noise_uv:
            for seed in seeds:
                samples, truth = ground_truth_recording(
                    seed=seed, noise_uv=noise, rate_hz=rate, seconds=seconds,
                    channels=channels)
                name = f"SI gt seed={seed} noise={noise:g}uV"
                rows.append(_evaluate(name, samples, rate, truth, per_channel=False,
                                      neo_k=neo_k))
                progress(f"  {name} @ {rate // 1000} kS/s done")
    for noise_shift in (0, 1):
        config = SystemConfig(channels=channels, test_source=TestSourceConfig(
            noise_shift=noise_shift, spike_rate_hz=20.0))
        signal = source_signal(config, int(seconds * config.sample_rate_hz))
        truth = [signal.spike_peaks(c) for c in range(channels)]
        sigma = 104 / 2**noise_shift * UV_PER_LSB
        name = f"test source noise~{sigma:.0f}uV"
        rows.append(_evaluate(name, signal.samples, config.sample_rate_hz, truth,
                              per_channel=True, neo_k=neo_k))
        progress(f"  {name} done")
    return rows


def format_table(rows: list[Row]) -> str:
    """A Markdown table, one line per recording, and a verdict per line."""
    lines = [
        "| recording | rate | ch | s | ours P / R / F1 | SI (own band-pass) P / R / F1 "
        "| SI (our conditioner) P / R / F1 | F1 >= SI? | ours NEO P / R / F1 "
        "| latency median / max (samples) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        def cell(s: Score) -> str:
            return f"{s.precision:.3f} / {s.recall:.3f} / {s.f1:.3f}"
        verdict = "yes" if r.ours.f1 >= max(r.si_own_filter.f1, r.si_our_filter.f1) else (
            "no" if r.ours.f1 < min(r.si_own_filter.f1, r.si_our_filter.f1)
            else "vs own: " + ("yes" if r.ours.f1 >= r.si_own_filter.f1 else "no"))
        lines.append(
            f"| {r.name} | {r.rate_hz // 1000} kS/s | {r.channels} | {r.seconds:g} "
            f"| {cell(r.ours)} | {cell(r.si_own_filter)} | {cell(r.si_our_filter)} "
            f"| {verdict} | {cell(r.neo)} (k={r.neo_k:g}) "
            f"| {r.latency_samples[0]:.0f} / {r.latency_samples[1]} |")
    return "\n".join(lines)

