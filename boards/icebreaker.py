"""Board top for the iCEBreaker (Lattice iCE40UP5K-SG48, 12 MHz oscillator, FT2232H).

Pins used:

=============  =====  =================================================================
what           pin    notes
=============  =====  =================================================================
``clk12``      35     12 MHz oscillator, the ``sync`` domain (platform default clock)
UART TX        9      FPGA -> FT2232H channel B, i.e. the second ``/dev/ttyUSB*``
LED green      37     on while streaming
LED red        11     on for a while after a frame was dropped
RHD2000 SPI    PMOD1A only with ``config.source == "rhd"``: CS 1, SCLK 2, MOSI 3, MISO0-3
                      4, 7, 8, 9 (``firmware.rhd2000.PMOD_PINOUT``, docs/rhd-frontend.md)
=============  =====  =================================================================
"""

from collections.abc import Callable

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io

from spikeforge.firmware.config import SystemConfig

from .registry import get_board

__all__ = ["ICEBreakerTop"]


def _acquisition_system(config: SystemConfig) -> Elaboratable:
    # Imported here so that the board layer can be imported (registry, cache keys, error
    # messages) without elaborating the HDL package.
    from spikeforge.hdl.top import AcquisitionSystem

    return AcquisitionSystem(config)


class ICEBreakerTop(Elaboratable):
    """The acquisition system on the iCEBreaker's pins.

    Parameters
    ----------
    config:
        What to build; ``config.clock_hz`` must be the board's 12 MHz.
    system:
        Makes the design to put on the board from ``config``; default
        :class:`spikeforge.hdl.top.AcquisitionSystem`. Anything with the same ports
        (``uart_tx``, ``streaming``, ``overflow``, all outputs) will do, e.g. a test design.
    """

    def __init__(self, config: SystemConfig,
                 system: Callable[[SystemConfig], Elaboratable] | None = None):
        get_board("icebreaker").check_config(config)
        self.config = config
        self._make_system = system or _acquisition_system

    def elaborate(self, platform):
        if platform is not None and platform.default_clk_frequency != self.config.clock_hz:
            get_board("icebreaker").check_config(self.config)  # raises with the fix

        m = Module()
        m.submodules.system = system = self._make_system(self.config)

        # The system's line may come from logic (glitches within a cycle) and an iCE40 I/O
        # register powers up low (a false start bit): retime it in a fabric register that
        # is high from configuration on, then drive the pin directly.
        uart_tx = Signal(init=1)
        m.d.sync += uart_tx.eq(system.uart_tx)
        uart_pins = platform.request("uart", 0, dir="-")
        m.submodules.uart_tx_buffer = tx_buffer = io.Buffer("o", uart_pins.tx)
        m.d.comb += tx_buffer.o.eq(uart_tx)
        # uart_pins.rx stays an input: nothing listens to the host yet.

        m.submodules.led_streaming = led_green = io.Buffer(
            "o", platform.request("led_g", 0, dir="-"))
        m.submodules.led_overflow = led_red = io.Buffer(
            "o", platform.request("led_r", 0, dir="-"))
        m.d.comb += [
            led_green.o.eq(system.streaming),
            led_red.o.eq(system.overflow),
        ]
        if self.config.source == "rhd":
            _connect_rhd(m, platform, system, self.config)
        return m


#: PMOD names of firmware.rhd2000.PMOD_PINOUT -> amaranth-boards connector of the iCEBreaker.
_PMOD_CONNECTORS = {"PMOD1A": ("pmod", 0), "PMOD1B": ("pmod", 1), "PMOD2": ("pmod", 2)}


def _connect_rhd(m: Module, platform, system: Elaboratable, config: SystemConfig) -> None:
    """The RHD2000 SPI bus on the PMOD pins of ``firmware.rhd2000.PMOD_PINOUT``.

    Outputs leave through fabric registers that are high/low from configuration on (CS must
    not glitch low at power-up), MISO enters through one register; the two cycles this adds
    to the round trip are part of what the MISO delay calibration measures.
    """
    from amaranth.build import Pins, Resource, Subsignal

    from spikeforge.firmware.rhd2000 import PMOD_PINOUT

    lines = config.rhd.lines
    wanted = [p for p in PMOD_PINOUT if not p[0].startswith("miso") or int(p[0][4:]) < lines]
    platform.add_resources([Resource("rhd", 0, *[
        Subsignal(name, Pins(str(pin), dir="i" if name.startswith("miso") else "o",
                             conn=_PMOD_CONNECTORS[pmod]))
        for name, pmod, pin in wanted])])
    pins = platform.request("rhd", 0, dir="-")
    for name, init in (("cs", 1), ("sclk", 0), ("mosi", 0)):
        retimed = Signal(init=init, name=f"rhd_{name}")
        m.d.sync += retimed.eq(getattr(system, f"rhd_{name}"))
        buffer = io.Buffer("o", getattr(pins, name))
        m.submodules[f"rhd_{name}_buffer"] = buffer
        m.d.comb += buffer.o.eq(retimed)
    for line in range(lines):
        buffer = io.Buffer("i", getattr(pins, f"miso{line}"))
        m.submodules[f"rhd_miso{line}_buffer"] = buffer
        m.d.sync += system.rhd_miso[line].eq(buffer.i)
