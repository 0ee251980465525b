"""Facts about the Intan RHD2000 family, defined once for gateware, firmware, models and host.

Everything here comes from the public *RHD2000 Series Digital Electrophysiology Interface
Chips* datasheet (Intan Technologies); section names are cited where a table is used:

* SPI interface (section "SPI Interface"): 16-bit words, CPOL=0, CPHA=0, CS low per word,
  MOSI sampled on rising SCLK edges, MISO changing on falling edges. The result of a command
  is shifted out during the transfer *two* commands later. The RHD2164 uses a double-data-rate
  MISO: the "A" word (channels 0-31) is valid at rising edges, the "B" word (channels 32-63)
  at falling edges.
* Commands (section "SPI Command Words"): CONVERT(C) ``00CCCCCC 0000000H`` (H: DSP offset
  removal high-pass step), CALIBRATE ``01010101 00000000`` (followed by nine dummy commands),
  CLEAR ``01101010 00000000``, WRITE(R, D) ``10RRRRRR DDDDDDDD``, READ(R) ``11RRRRRR
  00000000``. WRITE returns ``11111111 DDDDDDDD``, READ returns ``00000000 DDDDDDDD``,
  CALIBRATE and CLEAR return ``10000000 00000000`` and ``00000000 00000000``.
* ROM registers (section "On-Chip Registers"): 40-44 'I','N','T','A','N'; 48-55 the chip
  name; 59 the MISO A/B marker of the RHD2164 (53 on A, 58 on B); 60 die revision; 61
  unipolar (1) / bipolar (0) amplifiers; 62 number of amplifiers; 63 chip ID
  (1 = RHD2132, 2 = RHD2216, 4 = RHD2164).

The configuration of the RHD front-end (:class:`RHDConfig`) also lives here; the
system-level checks that need the clock and sample rate are in
:mod:`spikeforge.firmware.config`.
"""

from dataclasses import dataclass
from enum import IntEnum

from .errors import ConfigError

__all__ = [
    "ChipKind", "CHIPS", "ChipFacts", "Command", "convert", "read", "write", "CALIBRATE",
    "CLEAR", "ROM_COMPANY", "ROM_COMPANY_REGISTERS", "ROM_DIE_REVISION", "ROM_UNIPOLAR",
    "ROM_AMPLIFIERS", "ROM_CHIP_ID", "ROM_MISO_MARKER", "CALIBRATION_DUMMIES",
    "RESULT_LATENCY_COMMANDS", "MAX_MISO_LINES", "AUX_SLOTS", "MAX_MISO_DELAY_CYCLES",
    "RHDConfig", "ChannelSource", "channel_sources", "convert_slots", "PMOD_PINOUT",
    "ADC_MICROVOLTS_PER_BIT", "ZCHECK_DAC_VOLTS_PER_STEP", "ZCHECK_CAPACITOR_FARADS",
    "MAX_SCLK_HZ", "MIN_CS_HIGH_NS",
]


class ChipKind(IntEnum):
    """Chip ID as read from ROM register 63."""

    RHD2132 = 1
    RHD2216 = 2
    RHD2164 = 4


@dataclass(frozen=True)
class ChipFacts:
    kind: ChipKind
    amplifiers: int
    unipolar: bool
    ddr_miso: bool

    @property
    def name(self) -> str:
        return self.kind.name


CHIPS: dict[str, ChipFacts] = {
    "RHD2132": ChipFacts(ChipKind.RHD2132, 32, True, False),
    "RHD2164": ChipFacts(ChipKind.RHD2164, 64, True, True),
    "RHD2216": ChipFacts(ChipKind.RHD2216, 16, False, False),
}

#: Commands between a command and the transfer that carries its result.
RESULT_LATENCY_COMMANDS = 2
#: Dummy commands the datasheet requires after CALIBRATE.
CALIBRATION_DUMMIES = 9

ROM_COMPANY = b"INTAN"
ROM_COMPANY_REGISTERS = tuple(range(40, 45))
ROM_CHIP_NAME_REGISTERS = tuple(range(48, 56))
ROM_MISO_MARKER = 59
ROM_DIE_REVISION = 60
ROM_UNIPOLAR = 61
ROM_AMPLIFIERS = 62
ROM_CHIP_ID = 63
#: Register 59 of an RHD2164 on its A and B words (0 on the other chips).
MISO_MARKER_A, MISO_MARKER_B = 53, 58

#: MISO lines (chips) the front-end serves; 4 x RHD2164 = 256 channels.
MAX_MISO_LINES = 4
#: Auxiliary command slots at the end of the conversion loop (as Intan's Rhythm has).
AUX_SLOTS = 3
#: Where the chip interface sits on a 12-pin PMOD (3.3 V, single-ended SPI): (signal, PMOD,
#: pin). Pins 5/11 are GND, 6/12 are 3V3. A board top requests these pins; see
#: docs/rhd-frontend.md for the wiring to a headstage.
PMOD_PINOUT: tuple[tuple[str, str, int], ...] = (
    # Digilent PMOD SPI order on the top row, extra MISO lines on the bottom row.
    ("cs", "PMOD1A", 1),
    ("mosi", "PMOD1A", 2),
    ("miso0", "PMOD1A", 3),
    ("sclk", "PMOD1A", 4),
    ("miso1", "PMOD1A", 7),
    ("miso2", "PMOD1A", 8),
    ("miso3", "PMOD1A", 9),
)

#: Largest MISO sampling delay the gateware offers, in clock cycles.
MAX_MISO_DELAY_CYCLES = 15

#: SPI timing limits (datasheet "SPI Interface" timing table): SCLK at most 25 MHz, CS high
#: between words at least 154 ns.
MAX_SCLK_HZ = 25_000_000
MIN_CS_HIGH_NS = 154

#: Input-referred voltage of one amplifier ADC step (datasheet "Amplifier ... ADC"): 0.195 uV.
ADC_MICROVOLTS_PER_BIT = 0.195
#: Impedance test (datasheet "Electrode Impedance Test"): the 8-bit DAC of register 6 spans
#: 1.225 V, so one step is 1.225 V / 256; it drives the selected electrode through a series
#: capacitor chosen by the zcheck scale field of register 5.
ZCHECK_DAC_VOLTS_PER_STEP = 1.225 / 256
#: Series capacitor of each register-5 scale code (0: 0.1 pF, 1: 1 pF, 3: 10 pF).
ZCHECK_CAPACITOR_FARADS = {0: 0.1e-12, 1: 1.0e-12, 3: 10.0e-12}


class Command:
    """Encoders of the 16-bit MOSI command words."""

    @staticmethod
    def convert(channel: int, dsp_step: bool = False) -> int:
        if not 0 <= channel <= 63:
            raise ConfigError(f"CONVERT channel must be 0..63, not {channel!r}")
        return (channel << 8) | int(dsp_step)

    @staticmethod
    def read(register: int) -> int:
        if not 0 <= register <= 63:
            raise ConfigError(f"READ register must be 0..63, not {register!r}")
        return 0xC000 | (register << 8)

    @staticmethod
    def write(register: int, data: int) -> int:
        if not 0 <= register <= 63:
            raise ConfigError(f"WRITE register must be 0..63, not {register!r}")
        if not 0 <= data <= 255:
            raise ConfigError(f"WRITE data must be 0..255, not {data!r}")
        return 0x8000 | (register << 8) | data


convert = Command.convert
read = Command.read
write = Command.write
CALIBRATE = 0x5500
CLEAR = 0x6A00


@dataclass(frozen=True)
class RHDConfig:
    """The RHD2000 front-end: which chips hang on which MISO line, and the SPI timing.

    Parameters
    ----------
    chips:
        Chip type on each MISO line (line 0 first), e.g. ``("RHD2132", "RHD2164")``. All
        chips share CS, SCLK and MOSI; each has its own MISO line.
    amplifier_masks:
        Per line, a bit mask of the amplifiers that are streamed (bit a: amplifier a);
        ``None`` streams every amplifier of every chip. Stream channels are numbered chip
        by chip, amplifiers in ascending order.
    sclk_half_period_cycles:
        Clock cycles per SCLK half period (SCLK = clock / (2 x this)). The datasheet allows
        up to 25 MHz SCLK.
    cs_high_cycles:
        Clock cycles CS stays high between words (datasheet: at least 154 ns). At least 3:
        the sequencer fetches the next command meanwhile.
    miso_delay_cycles:
        Per line, the cycle (from the start of each bit) at which MISO is sampled — the
        cable delay compensation. Calibrate it with :func:`spikeforge.firmware.rhd_programs
        .choose_delay`; at most :data:`MAX_MISO_DELAY_CYCLES`.
    upper_cutoff_hz, lower_cutoff_hz:
        Amplifier bandwidth targets for the set-up program.
    dsp_cutoff_hz:
        DSP offset-removal high-pass cutoff; 0 disables the DSP filter.
    twos_complement:
        Output format of the ADC results (register 4); the stream carries signed values
        either way.
    calibrate_on_start:
        At reset, find each line's MISO delay and chip before the set-up list runs (see
        :class:`~spikeforge.hdl.rhd_calibrator.RHDDelayCalibrator`); ``miso_delay_cycles``
        is then only the fallback for a line where no chip answers.
    """

    chips: tuple[str, ...] = ("RHD2132",)
    amplifier_masks: tuple[int, ...] | None = None
    sclk_half_period_cycles: int = 1
    cs_high_cycles: int = 3
    miso_delay_cycles: tuple[int, ...] = (1,)
    upper_cutoff_hz: float = 7500.0
    lower_cutoff_hz: float = 1.0
    dsp_cutoff_hz: float = 0.0
    twos_complement: bool = False
    calibrate_on_start: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "chips", tuple(self.chips))
        object.__setattr__(self, "miso_delay_cycles", tuple(self.miso_delay_cycles))
        if self.amplifier_masks is not None:
            object.__setattr__(self, "amplifier_masks", tuple(self.amplifier_masks))
        self._validate()

    def _validate(self) -> None:
        if not 1 <= len(self.chips) <= MAX_MISO_LINES:
            raise ConfigError(
                f"rhd.chips must name 1 to {MAX_MISO_LINES} chips (one per MISO line), "
                f"not {len(self.chips)}")
        for name in self.chips:
            if name not in CHIPS:
                raise ConfigError(
                    f"rhd.chips: unknown chip {name!r}; use one of {', '.join(CHIPS)}")
        if self.amplifier_masks is not None:
            if len(self.amplifier_masks) != len(self.chips):
                raise ConfigError(
                    f"rhd.amplifier_masks must have one mask per chip ({len(self.chips)}), "
                    f"not {len(self.amplifier_masks)}")
            for line, (name, mask) in enumerate(zip(self.chips, self.amplifier_masks)):
                amplifiers = CHIPS[name].amplifiers
                if not isinstance(mask, int) or not 0 < mask < 1 << amplifiers:
                    raise ConfigError(
                        f"rhd.amplifier_masks[{line}] must be a non-zero {amplifiers}-bit mask "
                        f"for an {name}, not {mask!r}")
        if not isinstance(self.sclk_half_period_cycles, int) or \
                not 1 <= self.sclk_half_period_cycles <= 64:
            raise ConfigError(
                f"rhd.sclk_half_period_cycles must be 1..64, not {self.sclk_half_period_cycles!r}")
        if not isinstance(self.cs_high_cycles, int) or not 3 <= self.cs_high_cycles <= 255:
            raise ConfigError(
                f"rhd.cs_high_cycles must be 3..255 (the sequencer fetches the next command "
                f"while CS is high), not {self.cs_high_cycles!r}")
        if len(self.miso_delay_cycles) != len(self.chips):
            raise ConfigError(
                f"rhd.miso_delay_cycles must have one delay per chip ({len(self.chips)}), "
                f"not {len(self.miso_delay_cycles)}: {self.miso_delay_cycles!r}")
        for delay in self.miso_delay_cycles:
            if not isinstance(delay, int) or not 0 <= delay <= MAX_MISO_DELAY_CYCLES:
                raise ConfigError(
                    f"rhd.miso_delay_cycles must be 0..{MAX_MISO_DELAY_CYCLES}, not {delay!r}")
        for name in ("upper_cutoff_hz", "lower_cutoff_hz", "dsp_cutoff_hz"):
            value = getattr(self, name)
            if round(value * 1000) != value * 1000 or value < 0:
                raise ConfigError(
                    f"rhd.{name} must be a non-negative multiple of 0.001 Hz (the identity "
                    f"frame carries mHz), not {value!r}")

    # -- derived quantities -------------------------------------------------------------------

    def facts(self, line: int) -> ChipFacts:
        return CHIPS[self.chips[line]]

    def mask(self, line: int) -> int:
        if self.amplifier_masks is None:
            return (1 << self.facts(line).amplifiers) - 1
        return self.amplifier_masks[line]

    @property
    def lines(self) -> int:
        return len(self.chips)

    @property
    def channels(self) -> int:
        """Stream channels: the enabled amplifiers of every chip."""
        return sum(bin(self.mask(line)).count("1") for line in range(self.lines))

    @property
    def ddr(self) -> bool:
        """Whether any line carries an RHD2164 (B words are sampled too)."""
        return any(self.facts(line).ddr_miso for line in range(self.lines))

    @property
    def word_cycles(self) -> int:
        """Clock cycles per SPI word: 16 SCLK periods, a half period with SCLK low before
        CS rises, and the CS-high time."""
        return 33 * self.sclk_half_period_cycles + self.cs_high_cycles

    @property
    def pass_cycles(self) -> int:
        """Cycles from a sample-clock tick until the loop pass's results are all stored: one
        cycle to start, the CS-high time before the first word, the words, the largest MISO
        delay, and writing the A/B words of every line (see :class:`~spikeforge.hdl.rhd2000
        .RHDFrontEnd`)."""
        return (1 + self.cs_high_cycles + self.loop_words * self.word_cycles
                + MAX_MISO_DELAY_CYCLES + 4 * self.lines + 4)

    @property
    def loop_words(self) -> int:
        """Commands in one pass of the conversion loop: conversions plus auxiliary slots."""
        return len(convert_slots(self)) + AUX_SLOTS


@dataclass(frozen=True)
class ChannelSource:
    """Where a stream channel comes from: a MISO line, the A or B word, a loop slot."""

    line: int
    amplifier: int
    slot: int      #: index among the conversion commands of the loop
    half: int      #: 0: A word (or the only word); 1: B word of an RHD2164


def convert_slots(config: RHDConfig) -> tuple[int, ...]:
    """The CONVERT channel numbers of the loop, in order: every channel some chip needs."""
    needed: set[int] = set()
    for line in range(config.lines):
        mask = config.mask(line)
        for amplifier in range(config.facts(line).amplifiers):
            if mask >> amplifier & 1:
                needed.add(amplifier % 32)
    return tuple(sorted(needed))


def channel_sources(config: RHDConfig) -> tuple[ChannelSource, ...]:
    """Stream channel -> (line, amplifier, loop slot, half), in stream channel order."""
    slots = {channel: index for index, channel in enumerate(convert_slots(config))}
    out = []
    for line in range(config.lines):
        mask = config.mask(line)
        for amplifier in range(config.facts(line).amplifiers):
            if mask >> amplifier & 1:
                out.append(ChannelSource(line, amplifier, slots[amplifier % 32],
                                         amplifier // 32))
    return tuple(out)
