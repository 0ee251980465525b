"""The filter study behind the conditioner's default band (docs/detection.md)."""

from spikeforge.sim.filter_study import study


def test_the_default_band_beats_the_old_one_and_a_steeper_causal_filter_does_not_help():
    results = dict(study())
    default = results["causal: HP 300 + 2 x LP 3000 (default)"][0][0]
    old = results["causal: HP 300 + 2 x LP 6000 (old default)"][0][0]
    causal_butterworth = results["causal: Butterworth 5th order 300-6000"][0][0]
    zero_phase = results["zero-phase: Butterworth 5th order 300-6000 (SpikeInterface)"][0][0]
    assert default > old + 0.5
    assert causal_butterworth < old          # steeper, causal: the trough shrinks more
    assert default < zero_phase              # the gap a causal filter cannot close
