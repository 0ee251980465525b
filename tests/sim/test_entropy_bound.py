"""The entropy bound is a bound: exact on sequences whose entropy is known, and the gateware
coder (its golden model) never beats it on a signal of the kind it is built for."""

import numpy as np
import pytest

from spikeforge.firmware.compression import CodecConfig
from spikeforge.sim.entropy_bound import (
    entropy_bound,
    golomb_oracle_bits,
    main,
    residual_entropy_bits,
)
from spikeforge.sim.models.compressor import encode


def test_known_entropies():
    ramp = np.arange(1000)
    assert residual_entropy_bits(ramp, 1) == 16.0            # every difference is 1
    assert residual_entropy_bits(ramp, 0) == pytest.approx(16.0 + 999 * np.log2(999))
    steps = np.cumsum(np.tile([1, -1], 500))                  # differences +1, -1, ...
    assert residual_entropy_bits(steps, 1) == pytest.approx(16.0 + 999 * 1.0, rel=1e-5)
    assert residual_entropy_bits(np.zeros(5), 3) == 16.0 * 3


def test_golomb_oracle():
    flat = np.full(100, 7)
    assert golomb_oracle_bits(flat, 32) == 16 + 99 * 1            # M = 1: one bit each
    rng = np.random.default_rng(3)
    steps = rng.geometric(0.05, size=20000) * rng.choice([-1, 1], size=20000)
    walk = np.cumsum(steps)
    entropy = residual_entropy_bits(walk, 1)
    # Golomb codes are near optimal on geometric residuals, and never beat their entropy
    # by more than the per-block model it does not pay for
    assert entropy * 0.99 < golomb_oracle_bits(walk, 1024) < entropy * 1.03


def test_the_coder_does_not_beat_the_bound():
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.laplace(0, 6, size=(8192, 2)).round().astype(np.int64), axis=0)
    samples = np.clip(walk, -32768, 32767).astype(np.int16)
    config = CodecConfig(enabled=True, block_sweeps=1024, predictor="order1")
    coder_ratio = samples.size * 2 / sum(map(len, encode(samples, config)))
    bound = entropy_bound("walk", samples).ratio(1)
    assert 0.9 * bound < coder_ratio <= bound


def test_command_prints_a_table(tmp_path, capsys):
    data = (np.arange(4000, dtype=np.int16) % 50).astype("<i2")
    (tmp_path / "a.dat").write_bytes(data.tobytes())
    assert main([str(tmp_path / "a.dat"), "--channels", "2"]) == 0
    out = capsys.readouterr().out
    assert "| a.dat | 4,000 |" in out and "**overall**" in out
    assert main([str(tmp_path / "a.dat")]) == 2              # a flat file needs --channels
