"""The miss study accounts for every ground-truth spike and names a cause for each miss."""

from spikeforge.firmware.config import DetectorConfig
from spikeforge.sim.miss_study import format_report, study


def test_every_missed_spike_has_one_cause_and_the_counts_add_up():
    report = study(noise_shift=0, seconds=1.5, with_si=False)
    assert report.truth > 0
    assert report.found + len(report.misses) == report.truth
    assert sum(report.offsets.values()) == report.found
    assert {m.cause for m in report.misses} <= {"below threshold", "blind", "misaligned"}
    # A miss below threshold never had a sample above it in the window, and vice versa.
    for miss in report.misses:
        assert (miss.margin_sigma <= 0) == (miss.cause == "below threshold")
    assert "ground-truth spikes scored" in format_report(report)


def test_a_very_high_threshold_loses_spikes_and_only_below_threshold():
    report = study(noise_shift=1, seconds=1.0, with_si=False,
                   detector=DetectorConfig(threshold_k=15.9375, polarity="negative"))
    assert report.found < report.truth
    assert all(m.cause == "below threshold" for m in report.misses)
