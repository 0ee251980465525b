"""Electrode impedance from the RHD2000 impedance test's recorded response.

The impedance program (:func:`spikeforge.firmware.rhd_programs.impedance_setup_list` and
:func:`~spikeforge.firmware.rhd_programs.impedance_dac_list`) connects the chip's test DAC
to one electrode through a small series capacitor C (0.1, 1 or 10 pF) and steps the DAC
through one period of a sine per ``period`` sample periods. Each DAC step dV pushes the
charge C dV into the electrode, so over sample period n the mean test current is
``i[n] = C (V[n] - V[n-1]) * rate`` (V in volts); the amplifier records the electrode's
voltage. This module fits the fundamental (amplitude and phase, over whole periods, DC
removed) of the recorded voltage and of that current at the test frequency and returns
``Z = V / I``.

``dac_codes[n]`` must be the DAC code in effect when sample n was converted (the host
knows it: it wrote the list, and the loop writes one entry per sample period). Not
corrected for: the amplifier's own band-pass and the electrode's shunt capacitance to
ground (both matter above a few kHz or for impedances above a few MOhm).
"""

from dataclasses import dataclass

import numpy as np

from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.rhd2000 import (
    ADC_MICROVOLTS_PER_BIT,
    ZCHECK_CAPACITOR_FARADS,
    ZCHECK_DAC_VOLTS_PER_STEP,
)

__all__ = ["Impedance", "electrode_impedance", "fit_phasor", "dac_current"]


@dataclass(frozen=True)
class Impedance:
    """An electrode's impedance at ``frequency_hz``: magnitude in ohms, phase in degrees."""

    frequency_hz: float
    magnitude_ohm: float
    phase_deg: float

    @property
    def complex_ohm(self) -> complex:
        return self.magnitude_ohm * np.exp(1j * np.deg2rad(self.phase_deg))


def fit_phasor(signal: np.ndarray, frequency_hz: float, sample_rate_hz: float) -> complex:
    """Complex amplitude A of ``Re(A exp(2 pi j f n / rate))`` in ``signal`` (least squares
    with a DC term, over the whole periods it holds)."""
    signal = np.asarray(signal, dtype=float)
    period = sample_rate_hz / frequency_hz
    periods = int(len(signal) // period)
    if periods < 1:
        raise ConfigError(
            f"{len(signal)} samples hold no whole period of {frequency_hz:g} Hz at "
            f"{sample_rate_hz:g} S/s; record at least {int(np.ceil(period))} samples")
    n = np.arange(int(round(periods * period)))
    phase = 2 * np.pi * frequency_hz * n / sample_rate_hz
    basis = np.column_stack([np.cos(phase), -np.sin(phase), np.ones_like(phase)])
    (real, imag, _), *_ = np.linalg.lstsq(basis, signal[:len(n)], rcond=None)
    return complex(real, imag)


def dac_current(dac_codes: np.ndarray, sample_rate_hz: float, scale: int) -> np.ndarray:
    """Mean test current (A) over each sample period: the charge C dV per DAC step."""
    if scale not in ZCHECK_CAPACITOR_FARADS:
        raise ConfigError(f"zcheck scale must be one of {sorted(ZCHECK_CAPACITOR_FARADS)} "
                          f"(register 5: 0.1, 1 or 10 pF), not {scale!r}")
    volts = np.asarray(dac_codes, dtype=float) * ZCHECK_DAC_VOLTS_PER_STEP
    steps = np.diff(volts, prepend=volts[:1])
    return ZCHECK_CAPACITOR_FARADS[scale] * steps * sample_rate_hz




def electrode_impedance(samples: np.ndarray, dac_codes: np.ndarray, sample_rate_hz: float,
                        frequency_hz: float, scale: int, *, skip: int = 0) -> Impedance:
    """The impedance of the electrode recorded as ``samples`` (ADC codes, 0.195 uV each)
    while the test DAC played ``dac_codes`` (one per sample) through capacitor ``scale``.

    ``skip`` leading samples are left out (e.g. the first period, while the amplifier
    settles); the current's first difference needs the sample before.
    """
    samples = np.asarray(samples)
    dac_codes = np.asarray(dac_codes)
    if samples.shape != dac_codes.shape or samples.ndim != 1:
        raise ConfigError(
            f"samples and dac_codes must be 1-D and of one length, not {samples.shape} and "
            f"{dac_codes.shape}; give one channel and the DAC code at each of its samples")
    volts = samples * ADC_MICROVOLTS_PER_BIT * 1e-6
    current = dac_current(dac_codes, sample_rate_hz, scale)
    first = max(skip, 1)
    v = fit_phasor(volts[first:], frequency_hz, sample_rate_hz)
    i = fit_phasor(current[first:], frequency_hz, sample_rate_hz)
    if abs(i) == 0:
        raise ConfigError("the DAC codes do not change at the test frequency: no test "
                          "current; load the impedance DAC list as auxiliary list 0")
    z = v / i
    return Impedance(frequency_hz, float(abs(z)), float(np.rad2deg(np.angle(z))))
