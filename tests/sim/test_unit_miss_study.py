"""The ground-truth miss study: every spike the reference finds and ours misses has one cause,
and every false event is placed either as a late trough or elsewhere."""

import numpy as np
import pytest

from spikeforge.sim.accuracy import Layout, UnitTruth, score_units
from spikeforge.sim.unit_miss_study import _false_split, format_study, study


def test_a_false_event_after_a_units_spike_on_its_channels_is_a_late_trough():
    truth = UnitTruth(np.array([1000, 5000]), np.array([0, 1]), (0, 2), ((0, 1), (2, 3)),
                      (10.0, 10.0))
    times = np.array([1000, 1050, 3000, 5050, 1050])
    chans = np.array([0, 0, 0, 2, 3])
    # 1050 on ch0: 1.7 ms after unit 0's spike, on its channels (late trough); 3000: nothing
    # within 2.5 ms before (other); 5050 on ch2: 50 samples after unit 1's spike (late
    # trough, not a hit: beyond the +-15-sample window); 1050 on ch3: after unit 0's spike
    # but off its channels (other).
    score = score_units(times, chans, truth, 15.0, 0, 10_000)
    assert score.hits == 1
    assert _false_split(times, chans, score, truth, 0, 10_000, 30_000) == (2, 2)


@pytest.mark.slow
def test_every_reference_only_spike_has_one_cause_and_the_false_events_add_up():
    pytest.importorskip("spikeinterface")
    r = study(seed=1, noise_uv=5.0, layout=Layout(4, 5), seconds=1.0)
    ours, ref = r.scores["ours"], r.scores[r.reference]
    assert {m.cause for m in r.missed} <= {"excluded", "below threshold", "blind", "misaligned"}
    for miss in r.missed:
        if miss.cause != "excluded":
            assert (miss.margin_sigma <= 0) == (miss.cause == "below threshold")
    # Spikes both find + spikes only the reference finds = the reference's hits; likewise ours.
    both = ref.hits - len(r.missed)
    assert both + r.ours_only == ours.hits
    for method, (late, other) in r.false_events.items():
        s = r.scores[method]
        assert late + other == s.detected - s.hits
    assert all(0.8 < mean / si < 1.25 for mean, _, si in r.sigma)
    assert "finds" in format_study(r)
