"""Board top for the iCEBreaker (Lattice iCE40UP5K-SG48, 12 MHz oscillator, FT2232H).

Pins used:

=============  ==========  ============================================================
what           pin         notes
=============  ==========  ============================================================
``clk12``      35          12 MHz oscillator, the ``sync`` domain (platform default clock)
UART TX        9           FPGA -> FT2232H channel B, i.e. the second ``/dev/ttyUSB*``;
                           12 Mbaud by default (one bit per clock; the FT2232H's maximum)
LED green      37          streaming
LED red        11          on for 125 ms after a frame was dropped (overflow)
LED L2 green   PMOD2 1     chip found (break-off LED board in PMOD2; off until the ADC
                           front-end has a ``chip_found`` output)
=============  ==========  ============================================================

ADC interface (reserved, for the RHD front-end): PMOD1A, Digilent PMOD SPI order —
pin 1 (FPGA 4) CS_n, pin 2 (FPGA 2) COPI, pin 3 (FPGA 47) CIPO, pin 4 (FPGA 45) SCLK, 3.3 V
on pins 6/12. :data:`ADC_RESOURCES` holds it as an Amaranth resource.
"""

from amaranth.build import Attrs, Pins, PinsN, Resource, Subsignal

from .board_top import BoardTop, acquisition_system

__all__ = ["ICEBreakerTop", "ADC_RESOURCES"]

#: The ADC interface on PMOD1A; the front-end requests ``platform.request("adc_spi")``.
ADC_RESOURCES = [
    Resource("adc_spi", 0,
             Subsignal("cs", PinsN("1", dir="o", conn=("pmod", 0))),
             Subsignal("copi", Pins("2", dir="o", conn=("pmod", 0))),
             Subsignal("cipo", Pins("3", dir="i", conn=("pmod", 0))),
             Subsignal("clk", Pins("4", dir="o", conn=("pmod", 0))),
             Attrs(IO_STANDARD="SB_LVCMOS")),
]

# Kept for code that imported it from here before the board tops shared one module.
_acquisition_system = acquisition_system


class ICEBreakerTop(BoardTop):
    """The acquisition system on the iCEBreaker's pins (see the module docstring)."""

    board = "icebreaker"

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
