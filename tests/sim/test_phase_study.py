"""The phase study: our detector behind our conditioner, SpikeInterface's zero-phase
band-pass, and linear-phase FIRs, on the test source (docs/detection.md)."""

import pytest

from spikeforge.sim.phase_study import FilterRow, format_rows, study


def test_a_row_scores_f1_from_hits_events_and_spikes():
    row = FilterRow("x", 0, hits=9, events=10, truth=10)
    assert row.f1 == pytest.approx(0.9)
    assert "| x | 0 | 9 / 10 / 10 | 0.9000 |" in format_rows([row])


@pytest.mark.slow
def test_the_zero_phase_band_pass_finds_the_spike_ours_misses_and_a_long_fir_does_too():
    rows = {r.name: r for r in study(seconds=2.0, taps=(121,))}
    ours = rows["our conditioner (causal IIR)"]
    zero_phase = rows["Butterworth 300-6000 Hz, zero phase"]
    fir = rows["linear-phase FIR 300-6000 Hz, 121 taps"]
    assert ours.truth == zero_phase.truth == fir.truth > 100
    # The same detector, only the filter differs: the zero-phase filter finds more.
    assert zero_phase.hits > ours.hits
    assert fir.delay == 60 and fir.hits >= zero_phase.hits
    assert all(r.events - r.hits <= 1 for r in (ours, zero_phase, fir))
