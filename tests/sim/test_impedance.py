"""Electrode impedance, end to end at model level: the chip model (sim/chips/rhd2000.py)
runs the firmware's impedance program against an electrode of known impedance, and the host
computation (host/impedance.py) recovers that impedance from the recorded samples."""

import math

import numpy as np
import pytest

from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.rhd2000 import AUX_SLOTS, convert, read
from spikeforge.firmware.rhd_programs import (
    RegisterTargets,
    impedance_dac_list,
    impedance_setup_list,
    setup_list,
)
from spikeforge.host.impedance import electrode_impedance, fit_phasor
from spikeforge.sim.chips.rhd2000 import Electrode, RHD2000Chip

RATE_HZ = 30_000
WORD_NS = 3_000  # one SPI word at 12 MHz, 36 cycles


def run_impedance_test(chip: RHD2000Chip, channel: int, scale: int, frequency_hz: float,
                       periods: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Drive ``chip`` as the front-end does: set-up, impedance set-up, then one loop pass per
    sample period (a CONVERT of every amplifier, then the auxiliary slots, slot 0 playing
    the DAC sine). Returns the channel's samples, the DAC code in effect at each, and the
    test frequency."""
    targets = RegisterTargets(sample_rate_hz=RATE_HZ)
    dac_list, actual_hz = impedance_dac_list(frequency_hz, RATE_HZ)
    words = setup_list(targets) + impedance_setup_list(channel, scale, targets=targets)
    converts = [convert(c) for c in range(chip.facts.amplifiers)]
    passes = periods * len(dac_list)
    results: list[tuple[int, int]] = []
    time_ns = 0.0
    for word in words:
        results.append(chip.next_output())
        chip.transfer(word, time_ns)
        time_ns += WORD_NS
    samples_from = []
    dac_codes = []
    dac_now = 128
    for n in range(passes):
        time_ns = (n + 1) * 1e9 / RATE_HZ
        dac_codes.append(dac_now)
        aux = [dac_list[n % len(dac_list)]] + [read(63)] * (AUX_SLOTS - 1)
        for k, word in enumerate(converts + aux):
            results.append(chip.next_output())
            chip.transfer(word, time_ns + k * WORD_NS)
            if k == channel:
                samples_from.append(len(results) - 1 + 2)  # its result comes 2 words later
        dac_now = dac_list[n % len(dac_list)] & 0xFF
    results += [chip.next_output(), chip.next_output()]
    offset_binary = np.array([results[i][0] for i in samples_from], dtype=np.int64)
    return offset_binary - 0x8000, np.array(dac_codes), actual_hz


@pytest.mark.parametrize("electrode, scale", [
    (Electrode(50e3), 1),                                   # a resistor
    (Electrode(200e3, 1e-9), 1),                            # typical metal electrode: R + C
    (Electrode(1.5e6, 200e-12), 0),                         # high impedance, 0.1 pF
    (Electrode(20e3, 10e-9), 3),                            # low impedance, 10 pF
])
def test_impedance_of_a_known_electrode_is_recovered_through_the_chip_model(electrode, scale):
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 20, size=(32, 3000)).astype(np.int16)   # ~4 uV rms
    chip = RHD2000Chip("RHD2132", noise, electrodes={5: electrode})
    samples, dac_codes, frequency_hz = run_impedance_test(chip, 5, scale, 1000.0, periods=60)
    assert chip.calibration_violations == 0
    assert np.ptp(samples) > 500, "the electrode response should be well above the noise"
    measured = electrode_impedance(samples, dac_codes, RATE_HZ, frequency_hz, scale,
                                   skip=30)
    truth = electrode.impedance(frequency_hz)
    assert measured.magnitude_ohm == pytest.approx(abs(truth), rel=0.01)
    assert measured.phase_deg == pytest.approx(math.degrees(np.angle(truth)), abs=1.0)


def test_only_the_selected_amplifier_sees_the_test_current():
    chip = RHD2000Chip("RHD2132", electrodes={5: Electrode(100e3), 6: Electrode(100e3)})
    samples, _, _ = run_impedance_test(chip, 5, 1, 1000.0, periods=2)
    assert np.ptp(samples) > 500
    chip = RHD2000Chip("RHD2132", electrodes={6: Electrode(100e3)})
    samples, _, _ = run_impedance_test(chip, 5, 1, 1000.0, periods=2)
    assert not samples.any()


def test_phasor_fit_and_errors():
    n = np.arange(300)
    signal = 3 * np.cos(2 * np.pi * 1000 * n / RATE_HZ + 0.5) + 7
    assert fit_phasor(signal, 1000, RATE_HZ) == pytest.approx(3 * np.exp(0.5j))
    with pytest.raises(ConfigError, match="whole period"):
        fit_phasor(signal[:20], 1000, RATE_HZ)
    with pytest.raises(ConfigError, match="no test current"):
        electrode_impedance(np.zeros(300), np.full(300, 128), RATE_HZ, 1000, 1)
    with pytest.raises(ConfigError, match="scale"):
        electrode_impedance(np.zeros(300), np.full(300, 128), RATE_HZ, 1000, 2)
