"""The decimator's golden model against a direct, unvectorised CIC in Python integers, and
its configuration checks."""

import numpy as np
import pytest

from spikeforge.firmware.decimation import DecimatorConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.sim.models.decimator import decimate
from spikeforge.sim.stimuli import stimulus


def reference_cic(decimation: DecimatorConfig, x: np.ndarray) -> np.ndarray:
    """Textbook CIC, sample by sample, in unbounded integers (no wrap needed)."""
    r, n = decimation.factor, decimation.order
    out = np.zeros((x.shape[0] // r, x.shape[1]), dtype=np.int16)
    for c in range(x.shape[1]):
        integrators, delays, m = [0] * n, [0] * n, 0
        for t, v in enumerate(x[:, c].tolist()):
            for k in range(n):
                v = integrators[k] = integrators[k] + v
            if t % r == r - 1:
                for k in range(n):
                    v, delays[k] = v - delays[k], v
                y = (v * decimation.gain_num + (1 << (decimation.gain_shift - 1))) \
                    >> decimation.gain_shift
                out[m, c] = min(32767, max(-32768, y))
                m += 1
    return out


@pytest.mark.parametrize("factor, order, kind", [
    (30, 3, "random"), (2, 1, "saturation"), (1024, 3, "dc-steps"), (7, 5, "spikes"),
    (16, 4, "silence"), (3, 2, "random"),
])
def test_model_equals_a_direct_cic_even_where_the_state_wraps(factor, order, kind):
    decimation = DecimatorConfig(factor=factor, order=order)
    x = stimulus(kind, 5 * factor + 3, 3, seed=factor)
    np.testing.assert_array_equal(decimate(decimation, x), reference_cic(decimation, x))


def test_dc_passes_at_unity_gain_after_the_filter_settles():
    decimation = DecimatorConfig(factor=30, order=3)
    y = decimate(decimation, np.full((300, 2), -1234, np.int16))
    assert y.shape == (10, 2)
    assert (y[decimation.order:] == -1234).all()


def test_a_tone_at_the_output_rate_is_nulled_and_lfp_passes():
    decimation = DecimatorConfig(factor=30, order=3)
    t = np.arange(60_000) / 30_000
    lfp = (10_000 * np.sin(2 * np.pi * 100 * t)).astype(np.int16)[:, None]
    alias = (10_000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)[:, None]
    assert np.abs(decimate(decimation, lfp)).max() == pytest.approx(
        10_000 * decimation.response(100, 30_000), abs=2)
    assert np.abs(decimate(decimation, alias)[decimation.order:]).max() <= 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(factor=1), "factor must be an integer 2..1024"),
    (dict(order=0), "order must be an integer 1..5"),
    (dict(factor=1024, order=4), "grows the state by 40 bits.*use order <= 3"),
])
def test_bad_decimator_configurations_name_the_fix(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DecimatorConfig(**kwargs)


def test_cli_bench_decimator_prints_the_response(capsys):
    from spikeforge.cli import main

    assert main(["bench", "decimator", "--factor", "30", "--order", "3"]) == 0
    out = capsys.readouterr().out
    assert "186 bits/channel" in out
    assert "| 1000 | 0.0000 | null |" in out and "| 100 | 0.9517 | -0.4 |" in out
