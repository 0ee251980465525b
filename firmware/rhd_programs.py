"""Programs for the RHD2000 command sequencer, assembled from physical targets.

The sequencer (:class:`spikeforge.hdl.rhd2000.RHDFrontEnd`) executes command lists from a
memory of :data:`PROGRAM_DEPTH` entries. An entry is 18 bits:

======  ==================================================================================
bits    meaning
======  ==================================================================================
15:0    the 16-bit MOSI command word
16      STORE: a conversion whose results (A and B word of every MISO line) are stream data;
        the n-th STORE entry of the loop is conversion slot n
17      AUX: instead of bits 15:0, send the next entry of auxiliary list ``bits 1:0``; each
        pass of the loop advances every auxiliary list by one entry (wrapping)
======  ==================================================================================

Lists are ``(start, length)`` ranges of the memory. One-shot lists (set-up, calibration,
chip detection, impedance set-up) run once, back to back; the conversion loop runs one
pass per sample period, starting exactly on the sample clock. A new image is written
through the RHD_PROGRAM_* registers: no new bitstream.

Register values follow the datasheet's "On-Chip Registers" section (bit layouts of
registers 0-17), the ADC buffer / MUX bias table (register 1 and 2 notes, per sample
rate), the amplifier bandwidth tables (RH1, RH2, RL DAC settings; here computed from the
datasheet's resistor fits, as Intan's reference software does) and the "DSP Offset Removal"
cutoff formula ``f = rate * ln(2^k / (2^k - 1)) / (2 pi)``.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from .config import SystemConfig
from .errors import ConfigError
from .rhd2000 import (
    AUX_SLOTS,
    CALIBRATE,
    CALIBRATION_DUMMIES,
    CHIPS,
    MISO_MARKER_A,
    MISO_MARKER_B,
    RESULT_LATENCY_COMMANDS,
    ROM_AMPLIFIERS,
    ROM_CHIP_ID,
    ROM_COMPANY,
    ROM_COMPANY_REGISTERS,
    ROM_DIE_REVISION,
    ROM_MISO_MARKER,
    ROM_UNIPOLAR,
    ChipFacts,
    RHDConfig,
    convert,
    convert_slots,
    read,
    write,
)

__all__ = [
    "PROGRAM_DEPTH", "CAPTURE_DEPTH", "STORE", "AUX", "aux_entry", "RegisterTargets",
    "register_values", "setup_list", "calibration_list", "detection_list", "loop_list",
    "impedance_setup_list", "impedance_dac_list", "ProgramImage", "build_image", "ChipFound",
    "identify_chip", "choose_delay", "upper_bandwidth_dacs", "lower_bandwidth_dacs",
    "dsp_cutoff_code", "adc_bias",
]

PROGRAM_DEPTH = 512
#: One-shot results kept per MISO line and word half (readable over RHD_CAPTURE_*).
CAPTURE_DEPTH = 64
STORE = 1 << 16
AUX = 1 << 17


def aux_entry(slot: int) -> int:
    if not 0 <= slot < AUX_SLOTS:
        raise ConfigError(f"auxiliary slot must be 0..{AUX_SLOTS - 1}, not {slot!r}")
    return AUX | slot


# -- register tables (datasheet "On-Chip Registers") -------------------------------------------

#: (highest per-channel sample rate in Hz, MUX bias, ADC buffer bias): registers 1 and 2.
ADC_BIAS_TABLE = (
    (3334, 40, 32), (4001, 40, 16), (5001, 40, 8), (6251, 32, 8), (8001, 26, 8),
    (10001, 18, 4), (12501, 16, 3), (15001, 7, 3), (math.inf, 4, 2),
)

UPPER_CUTOFF_RANGE_HZ = (100.0, 20_000.0)
LOWER_CUTOFF_RANGE_HZ = (0.1, 500.0)


def adc_bias(sample_rate_hz: float) -> tuple[int, int]:
    """(MUX bias, ADC buffer bias) for a per-channel sample rate."""
    for limit, mux_bias, buffer_bias in ADC_BIAS_TABLE:
        if sample_rate_hz < limit:
            return mux_bias, buffer_bias
    raise AssertionError("unreachable")


def _r_h1(f: float) -> float:
    x = math.log10(f)
    return 0.9730 * 10 ** (8.0968 - 1.1892 * x + 0.04767 * x * x)


def _r_h2(f: float) -> float:
    x = math.log10(f)
    return 1.0191 * 10 ** (8.1009 - 1.0821 * x + 0.03383 * x * x)


def _r_l(f: float) -> float:
    x = math.log10(f)
    if f < 4.0:
        return 1.0061 * 10 ** (4.9391 - 1.2088 * x + 0.5698 * x * x + 0.1442 * x ** 3)
    return 1.0061 * 10 ** (4.7351 - 0.5916 * x + 0.08482 * x * x)


def _resistor_dacs(target: float, base: float, units: Sequence[tuple[float, int]]
                   ) -> list[int]:
    """Greedy DAC settings (coarse first) that bring base + sum(units) closest to target."""
    actual = base
    counts = []
    finest = units[-1][0]
    for index, (unit, steps) in enumerate(units):
        margin = unit - finest / 2 if index < len(units) - 1 else unit / 2
        count = 0
        while count < steps and actual < target - margin:
            actual += unit
            count += 1
        counts.append(count)
    return counts


def upper_bandwidth_dacs(upper_hz: float) -> tuple[int, int, int, int]:
    """(RH1 DAC1, RH1 DAC2, RH2 DAC1, RH2 DAC2) for an amplifier upper cutoff."""
    lo, hi = UPPER_CUTOFF_RANGE_HZ
    if not lo <= upper_hz <= hi:
        raise ConfigError(
            f"amplifier upper cutoff must be {lo:g}..{hi:g} Hz (datasheet bandwidth table), "
            f"not {upper_hz!r} Hz")
    rh1_dac2, rh1_dac1 = _resistor_dacs(_r_h1(upper_hz), 2200.0, [(29400.0, 31), (600.0, 63)])
    rh2_dac2, rh2_dac1 = _resistor_dacs(_r_h2(upper_hz), 8700.0, [(38400.0, 31), (763.0, 63)])
    return rh1_dac1, rh1_dac2, rh2_dac1, rh2_dac2


def lower_bandwidth_dacs(lower_hz: float) -> tuple[int, int, int]:
    """(RL DAC1, RL DAC2, RL DAC3) for an amplifier lower cutoff."""
    lo, hi = LOWER_CUTOFF_RANGE_HZ
    if not lo <= lower_hz <= hi:
        raise ConfigError(
            f"amplifier lower cutoff must be {lo:g}..{hi:g} Hz (datasheet bandwidth table), "
            f"not {lower_hz!r} Hz")
    base = 3500.0
    dac3 = 0
    if lower_hz < 0.15:
        base += 3_000_000.0
        dac3 = 1
    dac2, dac1 = _resistor_dacs(_r_l(lower_hz), base, [(12700.0, 63), (175.0, 127)])
    return dac1, dac2, dac3


def dsp_cutoffs(sample_rate_hz: float) -> list[float]:
    """Cutoff of DSP setting k = 1..15 (index k; index 0 unused)."""
    return [0.0] + [sample_rate_hz * math.log(2 ** k / (2 ** k - 1)) / (2 * math.pi)
                    for k in range(1, 16)]


def dsp_cutoff_code(dsp_hz: float, sample_rate_hz: float) -> int:
    """Register 4 DSP cutoff setting nearest (on a log scale) to ``dsp_hz``."""
    table = dsp_cutoffs(sample_rate_hz)
    if not table[15] <= dsp_hz <= table[1]:
        raise ConfigError(
            f"DSP cutoff must be {table[15]:.3g}..{table[1]:.4g} Hz at {sample_rate_hz:g} S/s "
            f"(datasheet DSP offset removal table), not {dsp_hz!r} Hz; use 0 to disable it")
    return min(range(1, 16), key=lambda k: abs(math.log10(dsp_hz) - math.log10(table[k])))


@dataclass(frozen=True)
class RegisterTargets:
    """Physical targets of the chip set-up; :func:`register_values` turns them into bits."""

    sample_rate_hz: float
    upper_cutoff_hz: float = 7500.0
    lower_cutoff_hz: float = 1.0
    dsp_cutoff_hz: float = 0.0
    twos_complement: bool = False
    powered_amplifiers: int = (1 << 64) - 1
    zcheck_enable: bool = False
    zcheck_scale: int = 0          #: 0: 0.1 pF, 1: 1 pF, 3: 10 pF series capacitor
    zcheck_channel: int = 0
    zcheck_dac: int = 128

    @classmethod
    def from_config(cls, config: SystemConfig) -> "RegisterTargets":
        rhd = config.rhd
        return cls(sample_rate_hz=config.sample_rate_hz, upper_cutoff_hz=rhd.upper_cutoff_hz,
                   lower_cutoff_hz=rhd.lower_cutoff_hz, dsp_cutoff_hz=rhd.dsp_cutoff_hz,
                   twos_complement=rhd.twos_complement)


def register_values(targets: RegisterTargets) -> dict[int, int]:
    """Values of registers 0-17 for ``targets`` (bit layouts: datasheet "On-Chip Registers")."""
    mux_bias, buffer_bias = adc_bias(targets.sample_rate_hz)
    rh1_dac1, rh1_dac2, rh2_dac1, rh2_dac2 = upper_bandwidth_dacs(targets.upper_cutoff_hz)
    rl_dac1, rl_dac2, rl_dac3 = lower_bandwidth_dacs(targets.lower_cutoff_hz)
    dsp_enable = targets.dsp_cutoff_hz > 0
    dsp_code = dsp_cutoff_code(targets.dsp_cutoff_hz, targets.sample_rate_hz) \
        if dsp_enable else 0
    if targets.zcheck_scale not in (0, 1, 3):
        raise ConfigError(f"zcheck_scale must be 0, 1 or 3, not {targets.zcheck_scale!r}")
    if not 0 <= targets.zcheck_channel <= 63:
        raise ConfigError(f"zcheck_channel must be 0..63, not {targets.zcheck_channel!r}")
    if not 0 <= targets.zcheck_dac <= 255:
        raise ConfigError(f"zcheck_dac must be 0..255, not {targets.zcheck_dac!r}")
    power = targets.powered_amplifiers
    return {
        # ADC reference BW 3, amplifier fast settle 0, Vref enable 1, comparator bias 3,
        # comparator select 2.
        0: 0b11_0_1_11_10,
        1: (1 << 6) | buffer_bias,          # VDD sense enable, ADC buffer bias
        2: mux_bias,
        3: 0b000_0_0_0_1_0,                 # MUX load 0, temperature sensor off, digout HiZ
        4: (1 << 7) | (int(targets.twos_complement) << 6) | (int(dsp_enable) << 4) | dsp_code,
        5: (1 << 6) | (targets.zcheck_scale << 3) | int(targets.zcheck_enable),
        6: targets.zcheck_dac,
        7: targets.zcheck_channel,
        8: rh1_dac1,                        # RH1 on chip
        9: (1 << 7) | rh1_dac2,             # aux1 ADC input enable
        10: rh2_dac1,
        11: (1 << 7) | rh2_dac2,
        12: rl_dac1,
        13: (1 << 7) | (rl_dac3 << 6) | rl_dac2,
        14: power & 0xFF, 15: power >> 8 & 0xFF, 16: power >> 16 & 0xFF, 17: power >> 24 & 0xFF,
    }


# -- command lists ------------------------------------------------------------------------------

#: Appended to one-shot lists so the results of their last commands come back.
_FLUSH = [read(ROM_CHIP_ID)] * RESULT_LATENCY_COMMANDS


def calibration_list() -> list[int]:
    """ADC self-calibration: CALIBRATE followed by the nine dummy commands it needs."""
    return [CALIBRATE] + [read(ROM_CHIP_ID)] * CALIBRATION_DUMMIES


def detection_list() -> list[int]:
    """ROM reads for chip detection: 'INTAN', the A/B marker, revision, polarity, size, ID.

    Result i (readable at capture index i) belongs to command i.
    """
    return [read(r) for r in (*ROM_COMPANY_REGISTERS, ROM_MISO_MARKER, ROM_DIE_REVISION,
                              ROM_UNIPOLAR, ROM_AMPLIFIERS, ROM_CHIP_ID)] + _FLUSH


def setup_list(targets: RegisterTargets, calibrate: bool = True) -> list[int]:
    """Chip set-up: two dummy reads (power-up), write registers 0-17, calibrate, read back."""
    values = register_values(targets)
    commands = [read(ROM_CHIP_ID)] * 2
    commands += [write(r, values[r]) for r in range(18)]
    if calibrate:
        commands += calibration_list()
    commands += [read(r) for r in range(18)]
    return commands + _FLUSH


def loop_list(rhd: RHDConfig, dsp_step: bool = False) -> list[int]:
    """The conversion loop: one STORE conversion per slot, then the auxiliary slots.

    The auxiliary slots come last, so (with the two-command latency) every conversion's
    result is back before the pass ends.
    """
    return [STORE | convert(c, dsp_step) for c in convert_slots(rhd)] + \
        [aux_entry(j) for j in range(AUX_SLOTS)]


def impedance_setup_list(channel: int, scale: int = 1, *, targets: RegisterTargets) -> list[int]:
    """Connect the impedance-test DAC to ``channel``: registers 5 (enable, scale) and 7.

    Run with :func:`impedance_dac_list` loaded as auxiliary list 0; the host then records
    the channel and fits the response at the test frequency.
    """
    values = register_values(RegisterTargets(**{**targets.__dict__, "zcheck_enable": True,
                                                "zcheck_scale": scale,
                                                "zcheck_channel": channel}))
    return [write(5, values[5]), write(7, values[7])] + _FLUSH


def impedance_dac_list(frequency_hz: float, sample_rate_hz: float, amplitude: int = 127
                       ) -> tuple[list[int], float]:
    """One period of a sine on the impedance DAC (register 6), one WRITE per sample period.

    Returns the auxiliary list and the frequency it really makes (the sample rate divided
    by a whole number of samples per period).
    """
    if not 0 < amplitude <= 127:
        raise ConfigError(f"impedance DAC amplitude must be 1..127, not {amplitude!r}")
    period = round(sample_rate_hz / frequency_hz) if frequency_hz > 0 else 0
    longest = PROGRAM_DEPTH // 4
    if not 4 <= period <= longest:
        raise ConfigError(
            f"impedance test frequency must be {sample_rate_hz / longest:.4g}.."
            f"{sample_rate_hz / 4:.4g} Hz at {sample_rate_hz:g} S/s (4..{longest} samples per "
            f"period), not {frequency_hz!r} Hz")
    values = [128 + round(amplitude * math.sin(2 * math.pi * k / period)) for k in range(period)]
    return [write(6, v) for v in values], sample_rate_hz / period


@dataclass
class ProgramImage:
    """A memory image for the sequencer and where its lists are."""

    words: list[int] = field(default_factory=list)
    lists: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, name: str, entries: Sequence[int]) -> tuple[int, int]:
        start = len(self.words)
        if start + len(entries) > PROGRAM_DEPTH:
            raise ConfigError(
                f"command list {name!r} ({len(entries)} entries) does not fit: the program "
                f"memory holds {PROGRAM_DEPTH} entries and {start} are used")
        self.words.extend(entries)
        self.lists[name] = (start, len(entries))
        return self.lists[name]

    def aux(self, slot: int) -> tuple[int, int]:
        return self.lists[f"aux{slot}"]


def build_image(config: SystemConfig, aux_lists: Sequence[Sequence[int]] | None = None
                ) -> ProgramImage:
    """The boot image: set-up (with calibration), detection, loop, auxiliary lists.

    The default auxiliary lists read ROM registers (harmless; they keep checking the link).
    """
    targets = RegisterTargets.from_config(config)
    image = ProgramImage()
    image.add("setup", setup_list(targets))
    image.add("detect", detection_list())
    image.add("calibrate", calibration_list() + _FLUSH)
    image.add("loop", loop_list(config.rhd))
    if aux_lists is None:
        aux_lists = [[read(ROM_CHIP_ID)], [read(ROM_COMPANY_REGISTERS[0])],
                     [read(ROM_COMPANY_REGISTERS[1])]]
    if len(aux_lists) != AUX_SLOTS or not all(aux_lists):
        raise ConfigError(f"give {AUX_SLOTS} non-empty auxiliary lists")
    for slot, entries in enumerate(aux_lists):
        if any(e & (STORE | AUX) for e in entries):
            raise ConfigError("auxiliary lists hold plain commands (no STORE or AUX flags)")
        image.add(f"aux{slot}", list(entries))
    return image


# -- detection and cable-delay calibration ----------------------------------------------------

@dataclass(frozen=True)
class ChipFound:
    facts: ChipFacts
    die_revision: int


def identify_chip(a_words: Sequence[int], b_words: Sequence[int] | None = None
                  ) -> ChipFound | None:
    """The chip behind the results of :func:`detection_list` (A words, and B words of a DDR
    line), or None if they do not read 'INTAN' with a consistent ID (bad delay, no chip)."""
    if len(a_words) < 10:
        return None
    if any((w >> 8) != 0 for w in a_words[:10]):
        return None
    company = bytes(w & 0xFF for w in a_words[:5])
    if company != ROM_COMPANY:
        return None
    marker, revision, unipolar, amplifiers, chip_id = (w & 0xFF for w in a_words[5:10])
    for facts in CHIPS.values():
        if facts.kind == chip_id and facts.amplifiers == amplifiers and \
                facts.unipolar == bool(unipolar):
            break
    else:
        return None
    if facts.ddr_miso:
        if marker != MISO_MARKER_A or b_words is None or len(b_words) < 10 or \
                (b_words[5] & 0xFF) != MISO_MARKER_B or (b_words[5] >> 8) != 0:
            return None
    elif marker != 0:
        return None
    return ChipFound(facts, revision)


def choose_delay(good: Sequence[bool]) -> int:
    """The MISO sampling delay in the middle of the longest run of good delays.

    ``good[d]`` says whether delay d read the ROM correctly (every time it was tried).
    """
    best_start, best_length, start = 0, 0, None
    for delay, ok in enumerate([*good, False]):
        if ok and start is None:
            start = delay
        elif not ok and start is not None:
            if delay - start > best_length:
                best_start, best_length = start, delay - start
            start = None
    if best_length == 0:
        raise ConfigError(
            f"no MISO sampling delay 0..{len(good) - 1} reads 'INTAN' from the chip; check the "
            "cable, the chip's power and the PMOD pin-out (docs/rhd-frontend.md)")
    return best_start + best_length // 2
