"""Detection accuracy benchmark: the bit-exact models against ground truth and SpikeInterface.

``spikeforge bench detect`` runs :func:`run_benchmark`. Recordings:

* SpikeInterface's ``generate_ground_truth_recording`` (several seeds, noise levels, 20 and
  30 kS/s, and several probe layouts: channels x units at a firing rate, :class:`Layout`),
  quantised to int16 at :data:`UV_PER_LSB`; ground truth = every unit's spike times (the
  template troughs), its template's peak channel and its SNR;
* the test-signal source's own output (:func:`spikeforge.sim.models.source.source_signal`);
  ground truth = the injected template troughs, one "unit" per channel.

Each recording is run through :func:`~spikeforge.sim.models.detector.condition` and
:func:`~spikeforge.sim.models.detector.detect` (the gateware, bit for bit; "ours" with local
exclusion over the contacts within :data:`EXCLUSION_RADIUS_UM`, +-:data:`EXCLUSION_SAMPLES`
samples, its neighbour table made from the recording's probe, and echo suppression:
:func:`product_detector`), and through
SpikeInterface's ``detect_peaks`` (``by_channel`` and ``locally_exclusive``) at the same
threshold k and polarity: (a) on SpikeInterface's own band-pass (300-6000 Hz, zero-phase)
of the same samples, its usual pipeline, and (b) on our conditioner's output, which
isolates the detection stage.

Two scores (docs/detection.md, "Scoring"):

* **unit score** (:func:`score_units`, the one that counts): per unit, on its own channels
  (its template's peak channel and those within :data:`UNIT_RADIUS_UM`), one detected event
  per ground-truth spike (one-to-one, nearest first, within ``MATCH_WINDOW_MS``). Every
  other event is false, including a second event for an already-found spike (counted apart
  as a *duplicate*). Recall is reported per unit, against the unit's SNR.
* **any-channel score** (:func:`score_times`, the earlier one, kept for comparison): an
  event is true if any ground-truth spike of any unit is within the window, whatever its
  channel, and one spike may make many events true. Events placed at random score a
  precision near 0.5 under it on recordings with many units.

The first ``WARMUP_S`` of every recording is not scored for any method (the device's
filters and noise trackers start from reset).

SpikeInterface is an optional dependency (``pip install 'spikeforge[bench]'``).
"""

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikeforge.firmware.config import DetectorConfig, SystemConfig, TestSourceConfig
from spikeforge.firmware.detection import neighbours_within
from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.firmware.test_signal import SPIKE_TEMPLATE
from spikeforge.host.errors import ExitCode

from .models.detector import condition, detect
from .models.source import source_signal

__all__ = ["UV_PER_LSB", "MATCH_WINDOW_MS", "WARMUP_S", "UNIT_RADIUS_UM", "Score", "Row",
           "UnitTruth", "UnitScore", "Layout", "score_times", "score_units", "run_benchmark",
           "format_table", "format_unit_table", "format_recall_by_snr", "quantise",
           "probe_positions", "EXCLUSION_RADIUS_UM", "EXCLUSION_SAMPLES", "ECHO_RATIO", "ECHO_MS",
           "product_detector",
           "ground_truth_recording", "ground_truth_units", "NEO_THRESHOLD_K", "METHODS",
           "DEFAULT_LAYOUTS", "SNR_BINS", "to_json", "git_commit"]

#: Intan RHD2000 LSB.
UV_PER_LSB = 0.195
#: A detected event and a ground-truth spike match when at most this far apart.
MATCH_WINDOW_MS = 0.5
#: Not scored at the start of each recording (filters and noise trackers settle).
WARMUP_S = 0.2
#: A unit's own channels: its template's peak channel and every channel whose contact lies
#: within this distance of the peak channel's. On SpikeInterface's generated probes (two
#: columns, 20 um pitch) that is the peak channel and its 5 nearest neighbours (the other
#: column's contact in the same row at 20 um, the rows above and below at 20 and 28 um):
#: where the unit's trough is largest, so where a detector that sees the spike at all sees it.
UNIT_RADIUS_UM = 30.0
#: Local exclusion of the product's detector ("ours"): neighbours are the contacts within
#: this radius (on SpikeInterface's two-column 20 um probes: the 3-5 nearest, at most 5 of
#: the 8 the gateware allows), the window +-EXCLUSION_SAMPLES samples (DetectorConfig's
#: default; chosen on seed 1 and confirmed on seed 2, docs/detection.md).
EXCLUSION_RADIUS_UM = 30.0
EXCLUSION_SAMPLES = DetectorConfig().exclusion_samples
#: Echo suppression of the product's detector: an event within ECHO_MS of one at least
#: ECHO_RATIO times larger on its channel is that spike's late trough (chosen on seeds 6-8,
#: never on the seeds the tables report; docs/detection.md, "Echo suppression").
ECHO_RATIO = 8
ECHO_MS = 2.667
#: Reference detection settings shared with our detector.
THRESHOLD_K = 5.0
PEAK_SIGN = "neg"
#: Threshold of the NEO option (k in units of median|psi| / 0.6745, not a Gaussian sigma:
#: psi is heavy-tailed, so its k is larger; ``spikeforge bench detect --neo-k`` changes it).
NEO_THRESHOLD_K = 15.0
#: Test-source channels are independent: SpikeInterface sees them on a line at this pitch,
#: farther apart than locally_exclusive's radius (50 um), so no channel masks another.
TEST_SOURCE_PITCH_UM = 100.0
#: The methods scored under the unit score, in table order: ours, ours with NEO,
#: SpikeInterface's detect_peaks methods on its own band-pass and on our conditioner.
METHODS = ("ours", "neo", "si_by_channel", "si_locally_exclusive", "si_by_channel_our_filter",
           "si_locally_exclusive_our_filter")
METHOD_LABELS = {
    "ours": "ours", "neo": "ours NEO",
    "si_by_channel": "SI by_channel", "si_locally_exclusive": "SI locally_exclusive",
    "si_by_channel_our_filter": "SI by_channel (our cond.)",
    "si_locally_exclusive_our_filter": "SI locally_exclusive (our cond.)",
}
#: SpikeInterface columns that ours must reach (F1, unit score).
SI_METHODS = METHODS[2:]
#: Unit SNR bins of the recall-against-SNR table (trough on the peak channel / noise sigma).
SNR_BINS = (0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 12.0, float("inf"))


class BenchmarkUnavailable(SpikeforgeError):
    """A benchmark (detection accuracy, compression) needs a package that is not installed:
    SpikeInterface, zstandard, soundfile (``pip install 'spikeforge[bench]'``)."""

    exit_code = ExitCode.ENVIRONMENT


# -- the any-channel score (the earlier one) --------------------------------------------------

@dataclass(frozen=True)
class Score:
    """The any-channel score: an event is true if any ground-truth spike is within the
    window (whatever its channel); a spike is found if any event is."""

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


# -- the unit score ---------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitTruth:
    """Ground truth by unit. ``times`` (samples) and ``units`` (unit index) per spike;
    per unit, its template's peak channel, its own channels (the peak channel and those
    within :data:`UNIT_RADIUS_UM`) and its SNR (trough on the peak channel / noise sigma)."""

    times: np.ndarray
    units: np.ndarray
    peak_channel: tuple[int, ...]
    channels: tuple[tuple[int, ...], ...]
    snr: tuple[float, ...]

    @property
    def unit_count(self) -> int:
        return len(self.peak_channel)

    @classmethod
    def from_probe(cls, times: np.ndarray, units: np.ndarray, templates: np.ndarray,
                   locations: np.ndarray, noise: float,
                   radius_um: float = UNIT_RADIUS_UM) -> "UnitTruth":
        """From templates (units, samples, channels; same units as ``noise``) and the
        contacts' positions (channels, 2) in um."""
        troughs = templates.min(axis=1)                   # (units, channels)
        peak = np.argmin(troughs, axis=1)
        distance = np.linalg.norm(locations[None, :, :] - locations[peak][:, None, :], axis=2)
        channels = tuple(tuple(int(c) for c in np.flatnonzero(d <= radius_um)) for d in distance)
        snr = tuple(float(-troughs[u, peak[u]] / noise) for u in range(len(peak)))
        order = np.argsort(times, kind="stable")
        return cls(np.asarray(times)[order].astype(np.int64),
                   np.asarray(units)[order].astype(np.int64),
                   tuple(int(p) for p in peak), channels, snr)


@dataclass(frozen=True)
class UnitScore:
    """The unit score of one method on one recording (see the module docstring)."""

    detected: int                    #: events scored (in the scored interval, any channel)
    hits: int                        #: events matched one-to-one to a spike of a unit
    duplicates: int                  #: unmatched events next to an already-found spike
    #: other unmatched events within the window of some spike of any unit (the spike seen
    #: on a channel outside that unit's radius, or a second unit's): true under the
    #: any-channel score; the rest of the false events are noise
    elsewhere: int
    unit_spikes: tuple[int, ...]     #: ground-truth spikes per unit (scored interval)
    unit_hits: tuple[int, ...]       #: of which found, per unit
    #: matched pairs (event index into the method's events, spike index into the truth)
    pairs: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)

    @property
    def truth(self) -> int:
        return sum(self.unit_spikes)

    @property
    def precision(self) -> float:
        return self.hits / self.detected if self.detected else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.truth if self.truth else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def unit_recall(self) -> tuple[float | None, ...]:
        """Recall per unit (None for a unit with no spike in the scored interval)."""
        return tuple(h / n if n else None for h, n in zip(self.unit_hits, self.unit_spikes))

    def to_dict(self) -> dict[str, Any]:
        return {"detected": self.detected, "hits": self.hits, "duplicates": self.duplicates,
                "elsewhere": self.elsewhere,
                "noise": self.detected - self.hits - self.duplicates - self.elsewhere,
                "truth": self.truth, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, "unit_spikes": list(self.unit_spikes),
                "unit_hits": list(self.unit_hits), "unit_recall": list(self.unit_recall)}


def score_units(times: np.ndarray, channels: np.ndarray, truth: UnitTruth, window: float,
                start: float, stop: float) -> UnitScore:
    """The unit score of events (sample ``times`` on ``channels``) in [start, stop).

    A candidate pair is an event and a spike of a unit whose own channels hold the event's
    channel, at most ``window`` apart. Pairs are taken nearest first (ties: earlier spike,
    then earlier event), each event and each spike at most once: one hit per spike. An
    unmatched event that has a candidate spike which another event found is a duplicate
    (the same spike seen again, usually on a neighbouring channel); it is false all the same.
    """
    times = np.asarray(times, dtype=np.int64)
    channels = np.asarray(channels, dtype=np.int64)
    scored_events = np.flatnonzero((times >= start) & (times < stop))
    scored_spikes = np.flatnonzero((truth.times >= start) & (truth.times < stop))
    event_index, spike_index, distance = [], [], []
    for unit in range(truth.unit_count):
        spikes = scored_spikes[truth.units[scored_spikes] == unit]
        events = scored_events[np.isin(channels[scored_events], truth.channels[unit])]
        if not len(spikes) or not len(events):
            continue
        events = events[np.argsort(times[events], kind="stable")]
        event_times = times[events]
        lo = np.searchsorted(event_times, truth.times[spikes] - window, side="left")
        hi = np.searchsorted(event_times, truth.times[spikes] + window, side="right")
        counts = hi - lo
        if not counts.sum():
            continue
        spike_rep = np.repeat(spikes, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        ev = events[np.repeat(lo, counts) + offsets]
        event_index.append(ev)
        spike_index.append(spike_rep)
        distance.append(np.abs(times[ev] - truth.times[spike_rep]))
    pairs: list[tuple[int, int]] = []
    duplicate: set[int] = set()
    if event_index:
        ev = np.concatenate(event_index)
        sp = np.concatenate(spike_index)
        order = np.lexsort((ev, truth.times[sp], np.concatenate(distance)))
        used_events: set[int] = set()
        used_spikes: set[int] = set()
        for e, s in zip(ev[order].tolist(), sp[order].tolist()):
            if e not in used_events and s not in used_spikes:
                used_events.add(e)
                used_spikes.add(s)
                pairs.append((e, s))
        # Duplicates: unmatched events whose candidate spike was found by another event.
        duplicate = {e for e, s in zip(ev.tolist(), sp.tolist())
                     if e not in used_events and s in used_spikes}
    matched = np.zeros(len(times), dtype=bool)
    matched[[e for e, _ in pairs]] = True
    matched[list(duplicate)] = True
    rest = scored_events[~matched[scored_events]]
    elsewhere = int(_within(times[rest].astype(float), truth.times[scored_spikes].astype(float),
                            window).sum())
    found = np.zeros(truth.unit_count, dtype=np.int64)
    for _, s in pairs:
        found[truth.units[s]] += 1
    spikes_per_unit = np.bincount(truth.units[scored_spikes], minlength=truth.unit_count)
    return UnitScore(len(scored_events), len(pairs), len(duplicate), elsewhere,
                     tuple(int(n) for n in spikes_per_unit), tuple(int(n) for n in found),
                     tuple(pairs))


def quantise(traces_uv: np.ndarray) -> np.ndarray:
    return np.clip(np.round(traces_uv / UV_PER_LSB), -32768, 32767).astype(np.int16)


# -- recordings -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """A ground-truth probe layout: channels, units and their firing rate (Hz)."""

    channels: int
    units: int
    firing_hz: float = 15.0

    @classmethod
    def parse(cls, text: str) -> "Layout":
        """``CHANNELSxUNITS`` or ``CHANNELSxUNITS@FIRING_HZ``, e.g. ``32x40`` or ``16x25@25``."""
        try:
            shape, _, rate = text.partition("@")
            channels, units = (int(v) for v in shape.lower().split("x"))
            layout = cls(channels, units, float(rate) if rate else 15.0)
        except ValueError:
            raise ValueError(f"a layout is CHANNELSxUNITS[@FIRING_HZ] (e.g. 32x40@15), "
                             f"not {text!r}") from None
        if layout.channels < 1 or layout.units < 1 or not layout.firing_hz > 0:
            raise ValueError(f"a layout CHANNELSxUNITS[@FIRING_HZ] needs values above 0, "
                             f"not {text!r}")
        return layout

    def __str__(self) -> str:
        return f"{self.channels}x{self.units}@{self.firing_hz:g}"


#: The earlier 4-channel, 5-unit recordings, and the two many-unit layouts of issue 18.
DEFAULT_LAYOUTS = (Layout(4, 5), Layout(16, 25, 25.0), Layout(32, 40))


def _import_si() -> Any:
    try:
        import spikeinterface.core as si
    except ImportError as exc:
        raise BenchmarkUnavailable(
            f"this benchmark needs SpikeInterface ({exc}); install it with "
            "pip install 'spikeforge[bench]'") from None
    return si


def _generate(*, seed: int, noise_uv: float, rate_hz: int, seconds: float, channels: int,
              units: int = 5, firing_hz: float | None = None) -> tuple[Any, Any]:
    si = _import_si()
    kwargs: dict[str, Any] = {}
    if firing_hz is not None:
        kwargs["generate_sorting_kwargs"] = dict(firing_rates=firing_hz,
                                                 refractory_period_ms=4.0)
    return si.generate_ground_truth_recording(
        durations=[seconds], sampling_frequency=float(rate_hz), num_channels=channels,
        num_units=units, seed=seed,
        noise_kwargs=dict(noise_levels=noise_uv, strategy="on_the_fly"), **kwargs)


def ground_truth_recording(*, seed: int, noise_uv: float, rate_hz: int, seconds: float,
                           channels: int) -> tuple[np.ndarray, np.ndarray]:
    """A SpikeInterface ground-truth recording (5 units), quantised to int16 at
    :data:`UV_PER_LSB`: (samples (sweeps, channels), sorted spike sample indices).

    Shared by the detection and the compression benchmarks.
    """
    recording, sorting = _generate(seed=seed, noise_uv=noise_uv, rate_hz=rate_hz,
                                   seconds=seconds, channels=channels)
    samples = quantise(recording.get_traces())
    return samples, np.sort(sorting.to_spike_vector()["sample_index"])


def ground_truth_units(*, seed: int, noise_uv: float, rate_hz: int, seconds: float,
                       layout: Layout) -> tuple[np.ndarray, UnitTruth, Any]:
    """A SpikeInterface ground-truth recording of ``layout``, quantised to int16: (samples,
    :class:`UnitTruth`, the probe). The spike times are the template troughs."""
    recording, sorting = _generate(seed=seed, noise_uv=noise_uv, rate_hz=rate_hz,
                                   seconds=seconds, channels=layout.channels,
                                   units=layout.units, firing_hz=layout.firing_hz)
    spikes = sorting.to_spike_vector()
    truth = UnitTruth.from_probe(spikes["sample_index"], spikes["unit_index"],
                                 np.asarray(recording.templates), recording.get_channel_locations(),
                                 noise_uv)
    return quantise(recording.get_traces()), truth, recording.get_probe()


def probe_positions(probe: Any, channels: int) -> np.ndarray:
    """The contact position (x, y) in um of each channel, in channel-index order (the
    order the detector sees them), from a probeinterface ``Probe`` with device channel
    indices: SpikeInterface's generated probes number column 0 first (0..n/2-1), so index
    neighbours at n/2-1 and n/2 are far apart and the other column's contact in the same
    row is n/2 away."""
    order = np.asarray(probe.device_channel_indices)
    positions = np.zeros((channels, 2))
    positions[order] = np.asarray(probe.contact_positions)[:, :2]
    return positions


def _test_source_probe(channels: int) -> Any:
    from probeinterface import generate_linear_probe

    probe = generate_linear_probe(num_elec=channels, ypitch=TEST_SOURCE_PITCH_UM)
    probe.set_device_channel_indices(np.arange(channels))
    return probe


# -- detectors --------------------------------------------------------------------------------

def _si_detect(traces: np.ndarray, rate_hz: int, bandpass: bool, method: str = "by_channel",
               probe: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """SpikeInterface's ``detect_peaks`` (``method`` by_channel or locally_exclusive, which
    needs the ``probe``); returns (sample times, channels)."""
    _import_si()
    import spikeinterface.preprocessing as spre
    from spikeinterface.core import NumpyRecording, get_noise_levels
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks

    recording = NumpyRecording([traces.astype(np.float32)], sampling_frequency=rate_hz)
    if probe is not None:
        # In place since SpikeInterface 0.105 (the return value goes in 0.106); a new
        # recording before.
        attached = recording.set_probe(probe)
        recording = attached if attached is not None else recording
    if bandpass:
        recording = spre.bandpass_filter(recording, freq_min=300.0, freq_max=6000.0)
    noise = get_noise_levels(recording, return_in_uV=False, seed=0, progress_bar=False)
    peaks = detect_peaks(recording, method=method, method_kwargs=dict(
        peak_sign=PEAK_SIGN, detect_threshold=THRESHOLD_K, noise_levels=noise),
        job_kwargs=dict(progress_bar=False))
    return peaks["sample_index"], peaks["channel_index"]


# -- one recording ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    name: str
    rate_hz: int
    channels: int
    seconds: float
    ours: Score                          #: any-channel score (the earlier one)
    si_own_filter: Score                 #: SI by_channel, its own band-pass, any-channel
    si_our_filter: Score                 #: SI by_channel, our conditioner, any-channel
    neo: Score                           #: ours with the NEO pre-emphasis at ``neo_k``
    neo_k: float
    latency_samples: tuple[float, int]   #: median, max (peak -> sweep the event can leave)
    #: The unit score per method (:data:`METHODS`).
    units: dict[str, UnitScore] = field(default_factory=dict)
    unit_snr: tuple[float, ...] = ()
    unit_peak_channel: tuple[int, ...] = ()
    layout: str = ""
    #: (delay in samples, events) for our hits: the latency histogram.
    latency_histogram: tuple[tuple[int, int], ...] = ()

    @property
    def at_least_si(self) -> bool:
        """Our unit-score F1 is at least every SpikeInterface column's."""
        return all(self.units["ours"].f1 >= self.units[m].f1 for m in SI_METHODS
                   if m in self.units)


def product_detector(probe: Any, channels: int, rate_hz: int) -> DetectorConfig:
    """The product's detector as the benchmark scores it ("ours"): threshold k, negative
    polarity, local exclusion over the probe's contacts within :data:`EXCLUSION_RADIUS_UM`,
    echo suppression (:data:`ECHO_RATIO`, :data:`ECHO_MS` at ``rate_hz``) and the held
    noise tracker."""
    return DetectorConfig(threshold_k=THRESHOLD_K, polarity="negative", exclusion=True,
                          exclusion_samples=EXCLUSION_SAMPLES,
                          exclusion_neighbours=neighbours_within(
                              probe_positions(probe, channels), EXCLUSION_RADIUS_UM),
                          echo_ratio=ECHO_RATIO,
                          echo_samples=round(ECHO_MS * 1e-3 * rate_hz), noise_hold=True)


def _evaluate(name: str, samples: np.ndarray, rate_hz: int, truth: UnitTruth, probe: Any,
              per_channel: bool, neo_k: float = NEO_THRESHOLD_K, layout: str = "") -> Row:
    channels = samples.shape[1]
    config = SystemConfig(channels=channels, sample_rate_hz=rate_hz,
                          detector=DetectorConfig(threshold_k=THRESHOLD_K, polarity="negative"))
    filtered = condition(config, samples)
    events = detect(config.replace(detector=product_detector(probe, channels, rate_hz)),
                    filtered)
    neo_config = SystemConfig(channels=channels, sample_rate_hz=rate_hz,
                              detector=DetectorConfig(threshold_k=neo_k, neo=True))
    neo_events = detect(neo_config, filtered)
    window = MATCH_WINDOW_MS * 1e-3 * rate_hz
    start, stop = WARMUP_S * rate_hz, samples.shape[0] - window

    detections = {
        "ours": (events.sweep, events.channel),
        "neo": (neo_events.sweep, neo_events.channel),
        "si_by_channel": _si_detect(samples, rate_hz, True, "by_channel", probe),
        "si_locally_exclusive": _si_detect(samples, rate_hz, True, "locally_exclusive", probe),
        "si_by_channel_our_filter": _si_detect(filtered, rate_hz, False, "by_channel", probe),
        "si_locally_exclusive_our_filter": _si_detect(filtered, rate_hz, False,
                                                      "locally_exclusive", probe),
    }

    def any_channel(times: np.ndarray, chans: np.ndarray) -> Score:
        if not per_channel:
            return score_times(times.astype(float), truth.times.astype(float), window, start,
                               stop)
        total = Score(0, 0, 0, 0)
        for c in range(channels):
            total += score_times(times[chans == c].astype(float),
                                 truth.times[truth.units == c].astype(float), window, start,
                                 stop)
        return total

    units = {m: score_units(t, c, truth, window, start, stop) for m, (t, c) in detections.items()}

    # Latency: from the true spike (trough) to the sweep in which our event can leave the
    # core (emitted, and its snippet complete), for every event the unit score matched.
    pairs = np.asarray(units["ours"].pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs):
        event = pairs[:, 0]
        emit = np.maximum(events.emit_sweep[event], events.sweep[event] + events.post + 1)
        delay = (emit - truth.times[pairs[:, 1]]).astype(np.int64)
        latency = (float(np.median(delay)), int(delay.max()))
        values, counts = np.unique(delay, return_counts=True)
        histogram = tuple((int(v), int(n)) for v, n in zip(values, counts))
    else:
        latency, histogram = (float("nan"), 0), ()
    return Row(name, rate_hz, channels, samples.shape[0] / rate_hz,
               any_channel(*detections["ours"]), any_channel(*detections["si_by_channel"]),
               any_channel(*detections["si_by_channel_our_filter"]),
               any_channel(*detections["neo"]), neo_k, latency, units, truth.snr,
               truth.peak_channel, layout, histogram)


def test_source_truth(signal: Any, noise_sigma_lsb: float) -> UnitTruth:
    """The test source's ground truth: one unit per channel, on that channel only; SNR =
    the scaled template's trough / the noise sigma."""
    channels = len(signal.spike_starts)
    times = [signal.spike_peaks(c) for c in range(channels)]
    template = np.asarray(SPIKE_TEMPLATE, dtype=np.int64)
    snr = tuple(float(-((template * (4 + (c & 3))) >> 3).min() / noise_sigma_lsb)
                for c in range(channels))
    return UnitTruth(*_sorted_spikes(times), tuple(range(channels)),
                     tuple((c,) for c in range(channels)), snr)


def _sorted_spikes(times: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    all_times = np.concatenate(times).astype(np.int64)
    units = np.concatenate([np.full(len(t), u) for u, t in enumerate(times)]).astype(np.int64)
    order = np.argsort(all_times, kind="stable")
    return all_times[order], units[order]


def run_benchmark(*, seconds: float = 4.0, seeds: tuple[int, ...] = (1, 2),
                  noise_uv: tuple[float, ...] = (5.0, 10.0), rates: tuple[int, ...] = (20_000,
                                                                                    30_000),
                  channels: int = 4, neo_k: float = NEO_THRESHOLD_K,
                  layouts: tuple[Layout, ...] | None = None, test_source: bool = True,
                  progress=print) -> list[Row]:
    """Score every recording; ``progress`` gets one line per recording. ``layouts``
    defaults to one of ``channels`` channels and 5 units (the earlier benchmark's)."""
    layouts = layouts if layouts is not None else (Layout(channels, 5),)
    rows = []
    for layout in layouts:
        for rate in rates:
            for noise in noise_uv:
                for seed in seeds:
                    samples, truth, probe = ground_truth_units(
                        seed=seed, noise_uv=noise, rate_hz=rate, seconds=seconds,
                        layout=layout)
                    name = (f"SI gt {layout.channels}ch {layout.units}u "
                            f"{layout.firing_hz:g}Hz seed={seed} noise={noise:g}uV")
                    rows.append(_evaluate(name, samples, rate, truth, probe, per_channel=False,
                                          neo_k=neo_k, layout=str(layout)))
                    progress(f"  {name} @ {rate // 1000} kS/s done")
    if test_source:
        for noise_shift in (0, 1):
            config = SystemConfig(channels=channels, test_source=TestSourceConfig(
                noise_shift=noise_shift, spike_rate_hz=20.0))
            signal = source_signal(config, int(seconds * config.sample_rate_hz))
            sigma_lsb = 104 / 2**noise_shift
            truth = test_source_truth(signal, sigma_lsb)
            name = f"test source noise~{sigma_lsb * UV_PER_LSB:.0f}uV"
            rows.append(_evaluate(name, signal.samples, config.sample_rate_hz, truth,
                                  _test_source_probe(channels), per_channel=True, neo_k=neo_k,
                                  layout=f"test source {channels}ch"))
            progress(f"  {name} done")
    return rows


# -- tables -----------------------------------------------------------------------------------

def format_table(rows: list[Row]) -> str:
    """The any-channel score (the earlier table): a Markdown table, one line per recording."""
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


def format_unit_table(rows: list[Row]) -> str:
    """The unit score: P / R / F1 (duplicates) per method, one line per recording, with
    the verdict (ours >= every SpikeInterface column) and the earlier any-channel F1."""
    methods = [m for m in METHODS if any(m in r.units for r in rows)]
    lines = ["| recording | rate | units | " + " | ".join(
        f"{METHOD_LABELS[m]} P / R / F1 (dup)" for m in methods)
        + " | ours >= SI? | ours any-channel F1 (earlier score) |",
        "| --- | --- | --- |" + " --- |" * len(methods) + " --- | --- |"]
    for r in rows:
        cells = " | ".join(
            f"{s.precision:.3f} / {s.recall:.3f} / {s.f1:.3f} ({s.duplicates})"
            for s in (r.units[m] for m in methods))
        lines.append(f"| {r.name} | {r.rate_hz // 1000} kS/s | {len(r.unit_snr)} | {cells} "
                     f"| {'yes' if r.at_least_si else 'NO'} | {r.ours.f1:.3f} |")
    return "\n".join(lines)


def recall_by_snr(rows: list[Row], method: str) -> list[tuple[str, int, int, int]]:
    """Per SNR bin (:data:`SNR_BINS`): (label, units, spikes, found) over every recording."""
    out = []
    for lo, hi in zip(SNR_BINS[:-1], SNR_BINS[1:]):
        units = spikes = found = 0
        for r in rows:
            score = r.units.get(method)
            if score is None:
                continue
            for snr, n, h in zip(r.unit_snr, score.unit_spikes, score.unit_hits):
                if lo <= snr < hi and n:
                    units, spikes, found = units + 1, spikes + n, found + h
        label = f"{lo:g}-{hi:g}" if hi != float("inf") else f">= {lo:g}"
        out.append((label, units, spikes, found))
    return out


def format_recall_by_snr(rows: list[Row]) -> str:
    """Recall (unit score) against the unit's SNR, pooled over every recording."""
    methods = [m for m in METHODS if any(m in r.units for r in rows)]
    bins = {m: recall_by_snr(rows, m) for m in methods}
    lines = ["| unit SNR | units | spikes | " + " | ".join(METHOD_LABELS[m] for m in methods)
             + " |", "| --- | --- | --- |" + " --- |" * len(methods)]
    for i, (label, units, spikes, _) in enumerate(bins[methods[0]]):
        if not units:
            continue
        cells = " | ".join(f"{bins[m][i][3] / spikes:.3f}" for m in methods)
        lines.append(f"| {label} | {units} | {spikes} | {cells} |")
    return "\n".join(lines)


# -- JSON -------------------------------------------------------------------------------------

def git_commit(where: Path | None = None) -> str | None:
    """The checkout's commit (``git rev-parse HEAD``), with ``+dirty`` when files differ from
    it; None outside a git checkout."""
    where = where or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty.strip() else "")


#: Version of the JSON ``spikeforge bench detect --json`` writes.
JSON_SCHEMA = "spikeforge.bench.detect/1"


def to_json(rows: list[Row], settings: dict[str, Any]) -> dict[str, Any]:
    """The benchmark as JSON (what ``spikeforge report`` reads; docs/report.md)."""
    def any_channel(s: Score) -> dict[str, Any]:
        return {"detected": s.detected, "truth": s.truth, "true_detected": s.true_detected,
                "found_truth": s.found_truth, "precision": s.precision, "recall": s.recall,
                "f1": s.f1}

    return {
        "schema": JSON_SCHEMA,
        "settings": {"threshold_k": THRESHOLD_K, "peak_sign": PEAK_SIGN,
                     "match_window_ms": MATCH_WINDOW_MS, "warmup_s": WARMUP_S,
                     "unit_radius_um": UNIT_RADIUS_UM,
                     "exclusion_radius_um": EXCLUSION_RADIUS_UM,
                     "exclusion_samples": EXCLUSION_SAMPLES, "echo_ratio": ECHO_RATIO,
                     "echo_ms": ECHO_MS, "noise_hold": True, **settings},
        "recordings": [
            {"name": r.name, "layout": r.layout, "rate_hz": r.rate_hz,
             "channels": r.channels, "seconds": r.seconds, "units": len(r.unit_snr),
             "unit_snr": list(r.unit_snr), "unit_peak_channel": list(r.unit_peak_channel),
             "unit_score": {m: s.to_dict() for m, s in r.units.items()},
             "at_least_si": r.at_least_si,
             "any_channel_score": {"ours": any_channel(r.ours),
                                   "si_by_channel": any_channel(r.si_own_filter),
                                   "si_by_channel_our_filter": any_channel(r.si_our_filter),
                                   "neo": any_channel(r.neo)},
             "neo_k": r.neo_k,
             "latency_samples": {"median": r.latency_samples[0],
                                 "max": r.latency_samples[1],
                                 "histogram": [list(p) for p in r.latency_histogram]}}
            for r in rows],
    }
