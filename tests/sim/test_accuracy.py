"""The accuracy benchmark's scoring, and (with SpikeInterface installed) one short run."""

import numpy as np
import pytest

from spikeforge.sim.accuracy import Score, format_table, quantise, score_times


def test_scoring_counts_matches_within_the_window_only():
    truth = np.array([100.0, 200.0, 300.0, 1000.0])
    detected = np.array([104.0, 196.0, 250.0, 301.0, 302.0])
    score = score_times(detected, truth, 5, 0, 900)
    assert score == Score(detected=5, truth=3, true_detected=4, found_truth=3)
    assert score.precision == 0.8 and score.recall == 1.0
    assert score.f1 == pytest.approx(2 * 0.8 / 1.8)


def test_quantisation_is_0195_uv_per_bit_and_saturates():
    q = quantise(np.array([0.195, -0.195 * 3, 1e9, -1e9]))
    assert q.dtype == np.int16 and list(q) == [1, -3, 32767, -32768]


@pytest.mark.slow
def test_a_short_benchmark_runs_and_scores_every_recording():
    pytest.importorskip("spikeinterface")
    from spikeforge.sim.accuracy import run_benchmark

    rows = run_benchmark(seconds=1.0, seeds=(3,), noise_uv=(5.0,), rates=(30_000,),
                         progress=lambda line: None)
    assert [r.name.split()[0] for r in rows] == ["SI", "test", "test"]
    for row in rows:
        assert row.ours.truth > 0 and row.ours.detected > 0
        assert 0 < row.ours.f1 <= 1 and 0 < row.si_own_filter.f1 <= 1
    assert "| SI gt seed=3" in format_table(rows)


@pytest.mark.slow
def test_the_benchmark_scores_the_neo_option_on_the_same_recordings():
    pytest.importorskip("spikeinterface")
    from spikeforge.sim.accuracy import run_benchmark

    rows = run_benchmark(seconds=1.0, seeds=(3,), noise_uv=(5.0,), rates=(30_000,),
                         neo_k=12.0, progress=lambda line: None)
    for row in rows:
        assert row.neo_k == 12.0
        assert row.neo.truth == row.ours.truth > 0 and row.neo.detected > 0
        assert 0 < row.neo.f1 <= 1
    assert "(k=12)" in format_table(rows)
