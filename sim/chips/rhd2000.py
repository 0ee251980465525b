"""Behavioural model of the Intan RHD2132, RHD2164 and RHD2216 for cocotb benches.

:class:`RHD2000Chip` is the chip without a simulator: :meth:`~RHD2000Chip.transfer` takes
the MOSI word of one CS-low period and returns the MISO word(s) shifted out during it — the
result of the command two transfers earlier (datasheet "SPI Interface"). It keeps registers
0-17 (and 63 down to 40 as ROM), the output format of register 4, a log of every command,
and plays ADC samples from one NumPy array per amplifier, so recordings can be replayed.
Not modelled: the analogue front-end, the DSP offset-removal filter (samples pass
unchanged), auxiliary ADC inputs (CONVERT of a non-amplifier channel returns 0).

The impedance test is modelled for electrodes given in ``electrodes`` (amplifier ->
:class:`Electrode`, a resistance in series with a capacitance): while register 5 enables
the test and register 7 selects the amplifier, every WRITE to the DAC (register 6) pushes
the charge ``C dV`` through the series capacitor of register 5's scale into the electrode,
and that amplifier's conversions add the electrode's voltage to their samples: ``R`` times
the mean current of the last DAC step (``C dV`` over the time between the last two DAC
writes) plus the charge over the electrode capacitance, both taken at the middle of that
step (the trapezoid rule). :func:`spikeforge.host.impedance.electrode_impedance` inverts
it.

:class:`RHD2000Bus` attaches chips to a design's ``cs``/``sclk``/``mosi``/``miso`` pins. It
reacts to CS and SCLK edges only, and drives each MISO line ``cable_delay_cycles`` clock
cycles plus half a cycle after the SCLK edge that caused the change (the round trip of a
headstage cable plus the chip's output delay).
"""

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from spikeforge.firmware.rhd2000 import (
    ADC_MICROVOLTS_PER_BIT,
    CALIBRATE,
    CALIBRATION_DUMMIES,
    CHIPS,
    CLEAR,
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
    ZCHECK_CAPACITOR_FARADS,
    ZCHECK_DAC_VOLTS_PER_STEP,
)

__all__ = ["RHD2000Chip", "RHD2000Bus", "LoggedCommand", "Electrode"]


@dataclass(frozen=True)
class Electrode:
    """An electrode for the impedance test: a resistance in series with a capacitance
    (``math.inf``: a plain resistor). ``impedance(f)`` is its complex impedance."""

    resistance_ohm: float
    capacitance_farad: float = math.inf

    def impedance(self, frequency_hz: float) -> complex:
        reactance = 0.0 if math.isinf(self.capacitance_farad) else \
            1 / (2 * math.pi * frequency_hz * self.capacitance_farad)
        return complex(self.resistance_ohm, -reactance)

DIE_REVISION = 1


@dataclass(frozen=True)
class LoggedCommand:
    word: int
    time_ns: float = 0.0


@dataclass
class RHD2000Chip:
    """One chip. ``samples`` has shape (amplifiers, n), values -32768..32767 (ADC codes
    relative to mid-scale); conversion k of amplifier a returns ``samples[a, k]``."""

    kind: str
    samples: np.ndarray | None = None
    registers: list[int] = field(default_factory=lambda: [0] * 64)
    log: list[LoggedCommand] = field(default_factory=list)
    conversions: np.ndarray = field(init=False)
    calibrations: int = 0
    calibration_violations: int = 0
    electrodes: dict[int, Electrode] = field(default_factory=dict)
    _pending: deque = field(init=False)
    _since_calibrate: int = field(init=False, default=CALIBRATION_DUMMIES)

    def __post_init__(self) -> None:
        self.facts = CHIPS[self.kind]
        amplifiers = self.facts.amplifiers
        if self.samples is None:
            self.samples = np.zeros((amplifiers, 0), dtype=np.int32)
        self.samples = np.asarray(self.samples)
        if self.samples.shape[0] != amplifiers:
            raise ValueError(f"an {self.kind} needs samples for {amplifiers} amplifiers, "
                             f"not {self.samples.shape[0]}")
        self.conversions = np.zeros(amplifiers, dtype=np.int64)
        # Impedance-test DAC: the last two codes written and when (mid-scale at power-up).
        self._now_ns = 0.0
        self._dac_now = self._dac_before = 128
        self._dac_time_ns: float | None = None
        self._dac_step_s = 0.0
        # What a chip shifts out before two commands have been executed.
        self._pending = deque([(0, 0)] * RESULT_LATENCY_COMMANDS)
        rom = self.registers
        for register, letter in zip(ROM_COMPANY_REGISTERS, ROM_COMPANY):
            rom[register] = letter
        for offset, letter in enumerate(self.kind.encode()):
            rom[48 + offset] = letter
        rom[ROM_DIE_REVISION] = DIE_REVISION
        rom[ROM_UNIPOLAR] = int(self.facts.unipolar)
        rom[ROM_AMPLIFIERS] = amplifiers
        rom[ROM_CHIP_ID] = int(self.facts.kind)

    @property
    def twos_complement(self) -> bool:
        return bool(self.registers[4] >> 6 & 1)

    def _adc_word(self, amplifier: int) -> int:
        k = self.conversions[amplifier]
        self.conversions[amplifier] += 1
        row = self.samples[amplifier]
        value = int(row[k]) if k < len(row) else 0
        if amplifier in self.electrodes:
            value = min(32767, max(-32768, value + self._electrode_code(amplifier)))
        return value & 0xFFFF if self.twos_complement else (value + 0x8000) & 0xFFFF

    def _electrode_code(self, amplifier: int) -> int:
        """The impedance test's voltage on ``amplifier``'s electrode, in ADC codes."""
        electrode = self.electrodes[amplifier]
        zcheck = self.registers[5]
        if not zcheck & 1 or (self.registers[7] & 0x3F) != amplifier or self._dac_step_s <= 0:
            return 0
        capacitor = ZCHECK_CAPACITOR_FARADS.get(zcheck >> 3 & 3, 0.0)
        step_v = (self._dac_now - self._dac_before) * ZCHECK_DAC_VOLTS_PER_STEP
        middle_v = ((self._dac_now + self._dac_before) / 2 - 128) * ZCHECK_DAC_VOLTS_PER_STEP
        volts = electrode.resistance_ohm * capacitor * step_v / self._dac_step_s
        if not math.isinf(electrode.capacitance_farad):
            volts += capacitor * middle_v / electrode.capacitance_farad
        return round(volts / (ADC_MICROVOLTS_PER_BIT * 1e-6))

    def _dac_write(self, code: int) -> None:
        if self._dac_time_ns is not None:
            self._dac_step_s = (self._now_ns - self._dac_time_ns) * 1e-9
        self._dac_before, self._dac_now, self._dac_time_ns = self._dac_now, code, self._now_ns

    def execute(self, word: int) -> tuple[int, int]:
        """Execute one command; returns its (A, B) result words."""
        word &= 0xFFFF
        top = word >> 14
        register = word >> 8 & 0x3F
        if word != CALIBRATE:
            self._since_calibrate += 1
        if top == 0b00:                                  # CONVERT
            if self._since_calibrate <= CALIBRATION_DUMMIES:
                self.calibration_violations += 1
            amplifiers = self.facts.amplifiers
            a = self._adc_word(register) if register < min(amplifiers, 32) else 0
            b = self._adc_word(register + 32) if self.facts.ddr_miso and register < 32 else 0
            return a, b
        if word == CALIBRATE:
            self.calibrations += 1
            self._since_calibrate = 0
            return 0x8000, 0x8000 if self.facts.ddr_miso else 0
        if word == CLEAR:
            return 0, 0
        if top == 0b10:                                  # WRITE
            data = word & 0xFF
            if register == 6:
                self._dac_write(data)
            if register <= 17:
                self.registers[register] = data
            result = 0xFF00 | data
            return result, result if self.facts.ddr_miso else 0
        if top == 0b11:                                  # READ
            value = self.registers[register]
            if register == ROM_MISO_MARKER and self.facts.ddr_miso:
                return MISO_MARKER_A, MISO_MARKER_B
            return value, value if self.facts.ddr_miso else 0
        return 0, 0                                      # undefined command

    def transfer(self, mosi_word: int, time_ns: float = 0.0) -> None:
        """Execute the word received in one CS-low period (queues its result)."""
        self.log.append(LoggedCommand(mosi_word, time_ns))
        self._now_ns = time_ns
        self._pending.append(self.execute(mosi_word))

    def next_output(self) -> tuple[int, int]:
        """The (A, B) words to shift out in the transfer that starts now."""
        return self._pending.popleft()


class RHD2000Bus:
    """Chips on a design's pins: shared ``<prefix>cs``/``sclk``/``mosi``, one ``miso`` bit
    per chip. ``cable_delay_cycles[l]`` delays line l's MISO; ``chips[l]`` may be None (no
    chip: the line stays low)."""

    def __init__(self, dut, chips: list[RHD2000Chip | None], cable_delay_cycles: list[int],
                 clock_period_ns: float, prefix: str = ""):
        import cocotb

        self.cs = getattr(dut, f"{prefix}cs")
        self.sclk = getattr(dut, f"{prefix}sclk")
        self.mosi = getattr(dut, f"{prefix}mosi")
        self.miso = getattr(dut, f"{prefix}miso")
        self.chips = chips
        self.delays_ns = [(d + 0.5) * clock_period_ns for d in cable_delay_cycles]
        self.miso_value = 0
        self.miso.value = 0
        self.transfers = 0
        self._queues = [deque() for _ in chips]
        from cocotb.triggers import Event
        self._wake = [Event() for _ in chips]
        for line in range(len(chips)):
            cocotb.start_soon(self._drive(line))
        cocotb.start_soon(self._run())

    def _emit(self, now: float, bits: list[int]) -> None:
        for line, value in enumerate(bits):
            if value is None:
                continue
            self._queues[line].append((now + self.delays_ns[line], value))
            self._wake[line].set()

    async def _drive(self, line: int) -> None:
        from cocotb.triggers import Timer
        from cocotb.utils import get_sim_time

        queue = self._queues[line]
        while True:
            if not queue:
                self._wake[line].clear()
                await self._wake[line].wait()
                continue
            due, value = queue.popleft()
            now = get_sim_time("ns")
            if due > now:
                await Timer(due - now, unit="ns")
            mask = 1 << line
            self.miso_value = (self.miso_value & ~mask) | (value << line)
            self.miso.value = self.miso_value

    async def _run(self) -> None:
        from cocotb.triggers import First, ReadOnly
        from cocotb.utils import get_sim_time

        words = [(0, 0)] * len(self.chips)
        received = 0
        bit = 0
        last_cs, last_sclk = 1, 0
        while True:
            await First(self.cs.value_change, self.sclk.value_change)
            await ReadOnly()
            cs, sclk = int(self.cs.value), int(self.sclk.value)
            now = get_sim_time("ns")
            if cs != last_cs:
                if cs == 0:                       # CS falls: present bit 15 of A
                    words = [c.next_output() if c else (0, 0) for c in self.chips]
                    received, bit = 0, 0
                    self._emit(now, [w[0] >> 15 & 1 if c else None
                                     for w, c in zip(words, self.chips)])
                else:                             # CS rises: execute the word
                    self.transfers += 1
                    for chip in self.chips:
                        if chip is not None:
                            chip.transfer(received, now)
                    self._emit(now, [0 if c else None for c in self.chips])
            elif cs == 0 and sclk != last_sclk:
                if sclk:                          # rising: sample MOSI; DDR lines show B
                    received = (received << 1 | int(self.mosi.value)) & 0xFFFF
                    self._emit(now, [w[1] >> (15 - bit) & 1 if c and c.facts.ddr_miso
                                     else None for w, c in zip(words, self.chips)])
                    bit += 1
                elif bit < 16:                    # falling: next A bit
                    self._emit(now, [w[0] >> (15 - bit) & 1 if c else None
                                     for w, c in zip(words, self.chips)])
            last_cs, last_sclk = cs, sclk
