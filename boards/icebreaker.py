"""Board top for the iCEBreaker (Lattice iCE40UP5K-SG48, 12 MHz oscillator, FT2232H).

Pins used:

=============  ==========  ============================================================
what           pin         notes
=============  ==========  ============================================================
``clk12``      35          12 MHz oscillator, the ``sync`` domain (platform default clock)
UART TX        9           FPGA -> FT2232H channel B, i.e. the second ``/dev/ttyUSB*``;
                           4 Mbaud by default (3 clocks per bit, what the receiver needs)
UART RX        6           FT2232H channel B -> FPGA: the host's commands (control path)
LED green      37          streaming
LED red        11          on for 125 ms after a frame was dropped (overflow)
LED L2 green   PMOD2 1     chip found (break-off LED board in PMOD2; with the RHD source:
                           the start-up calibration found a chip; off otherwise)
=============  ==========  ============================================================

ADC interface (used with ``config.source == "rhd"``): PMOD1A, Digilent PMOD SPI order —
pin 1 (FPGA 4) CS_n, pin 2 (FPGA 2) COPI, pin 3 (FPGA 47) CIPO (MISO of chip 0), pin 4
(FPGA 45) SCLK; MISO of chips 1-3 on pins 7, 8, 9 (FPGA 3, 48, 46); 3.3 V on pins 6/12.
:data:`ADC_RESOURCES` is made from ``firmware.rhd2000.PMOD_PINOUT`` (docs/rhd-frontend.md).
"""

from amaranth.build import Attrs, Pins, PinsN, Resource, Subsignal

from spikeforge.firmware.rhd2000 import PMOD_PINOUT

from .board_top import BoardTop, acquisition_system

__all__ = ["ICEBreakerTop", "ADC_RESOURCES"]

_PMOD_CONNECTORS = {"PMOD1A": ("pmod", 0), "PMOD1B": ("pmod", 1), "PMOD2": ("pmod", 2)}
_PINS = {name: (_PMOD_CONNECTORS[pmod], str(pin)) for name, pmod, pin in PMOD_PINOUT}


def _pin(name: str, direction: str, pins=Pins):
    conn, pin = _PINS[name]
    return pins(pin, dir=direction, conn=conn)


#: The ADC interface on PMOD1A (``firmware.rhd2000.PMOD_PINOUT``): ``adc_spi`` 0 with the
#: first MISO line as ``cipo``, and ``adc_cipo`` 1..3 for the MISO lines of chips 1-3.
ADC_RESOURCES = [
    Resource("adc_spi", 0,
             Subsignal("cs", _pin("cs", "o", PinsN)),
             Subsignal("copi", _pin("mosi", "o")),
             Subsignal("cipo", _pin("miso0", "i")),
             Subsignal("clk", _pin("sclk", "o")),
             Attrs(IO_STANDARD="SB_LVCMOS")),
    *[Resource("adc_cipo", line, _pin(f"miso{line}", "i"), Attrs(IO_STANDARD="SB_LVCMOS"))
      for line in (1, 2, 3)],
]

# Kept for code that imported it from here before the board tops shared one module.
_acquisition_system = acquisition_system


class ICEBreakerTop(BoardTop):
    """The acquisition system on the iCEBreaker's pins (see the module docstring)."""

    board = "icebreaker"
    adc_resources = ADC_RESOURCES

    def pins(self, platform) -> dict[str, object]:
        # The chip-found LED is on the break-off LED board (PMOD2), which the platform
        # describes but does not add by default.
        if ("led_g", 1) not in platform.resources:
            platform.add_resources(platform.break_off_pmod)
        return {
            "uart": platform.request("uart", 0, dir="-"),
            "streaming": platform.request("led_g", 0, dir="-"),
            "overflow": platform.request("led_r", 0, dir="-"),
            "chip_found": platform.request("led_g", 1, dir="-"),
        }
