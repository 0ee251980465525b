"""Board top for the ULX3S (Lattice ECP5 LFE5U-12F/45F/85F, 25 MHz oscillator, FT231X).

The design runs at :data:`~spikeforge.boards.registry.ULX3S_CLOCK_HZ` (45 MHz), made by
an ECP5 PLL (``EHXPLLL``) from the 25 MHz oscillator: 25 MHz / 5 x 9 = 45 MHz, VCO
585 MHz (in the 400-800 MHz range), phase detector 5 MHz (above the 3.125 MHz minimum).
The ``sync`` domain is held in reset until the PLL locks. 45 MHz gives 1500 cycles per
30 kS/s sample period (room for 1024 channels, channel-serial) and exactly 3 Mbaud (15
cycles per bit).

A build with the v2 lossless coder (``config.codec_v2``) runs that coder in a domain of
its own, ``coder``, at :data:`CODER_CLOCK_HZ` (36.5625 MHz: the same VCO / 16 on the PLL's
second output, CLKOS), behind asynchronous FIFOs
(:class:`~spikeforge.hdl.lossless_v2.LosslessV2`): its two single-cycle recurrences (the
range coder's and the CDF update's) do not meet 45 MHz placed among every other core, and
it needs only the source's 30.72 M samples a second at 1024 channels (+ ~2 % stalls).

Pins used:

=============  =====  =================================================================
what           pin    notes
=============  =====  =================================================================
``clk25``      G2     25 MHz oscillator, PLL reference
UART TX        L4     FPGA -> FT231X (``/dev/ttyUSB0``), 3 Mbaud (the FT231X's maximum)
LED D0         B2     streaming
LED D1         C2     overflow: on for 125 ms after a frame was dropped
LED D2         C1     chip found (RHD source: start-up calibration found a chip)
LED D7         H3     PLL locked
=============  =====  =================================================================

ADC interface (reserved, for the RHD front-end): header J1, the positive legs of the first
four differential pairs, so that the negative legs stay free for an LVDS front-end —
gp0 (B11) CS_n, gp1 (A10) SCLK, gp2 (A9) COPI, gp3 (B9) CIPO, 3.3 V LVCMOS.
:data:`ADC_RESOURCES` holds it as an Amaranth resource.
"""

from amaranth.build import Attrs, Pins, PinsN, Resource, Subsignal
from amaranth.hdl import ClockDomain, ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from .board_top import BoardTop
from .errors import BoardConfigError
from .registry import ULX3S_CLOCK_HZ

__all__ = ["ULX3STop", "ADC_RESOURCES", "PLL_PARAMETERS", "CODER_CLOCK_HZ"]

#: The ADC interface on J1; the front-end requests ``platform.request("adc_spi")``.
ADC_RESOURCES = [
    Resource("adc_spi", 0,
             Subsignal("cs", PinsN("0+", dir="o", conn=("gpio", 0))),
             Subsignal("clk", Pins("1+", dir="o", conn=("gpio", 0))),
             Subsignal("copi", Pins("2+", dir="o", conn=("gpio", 0))),
             Subsignal("cipo", Pins("3+", dir="i", conn=("gpio", 0))),
             Attrs(IO_TYPE="LVCMOS33")),
]

_OSCILLATOR_HZ = 25_000_000
#: EHXPLLL dividers for 25 -> 45 MHz: f_out = 25 MHz / CLKI_DIV * CLKFB_DIV (feedback from
#: CLKOP), f_vco = f_out * CLKOP_DIV; CLKOP_CPHASE = CLKOP_DIV / 2 as ``ecppll`` sets it.
PLL_PARAMETERS = {"CLKI_DIV": 5, "CLKFB_DIV": 9, "CLKOP_DIV": 13, "CLKOP_CPHASE": 6}
#: The v2 coder's clock on CLKOS (``codec_v2`` builds): the VCO (585 MHz) / 16.
CODER_PLL_PARAMETERS = {"CLKOS_DIV": 16, "CLKOS_CPHASE": 8, "CLKOS_FPHASE": 0}


def _pll_output_hz(parameters: dict[str, int] = PLL_PARAMETERS) -> float:
    return _OSCILLATOR_HZ / parameters["CLKI_DIV"] * parameters["CLKFB_DIV"]


CODER_CLOCK_HZ = (_pll_output_hz() * PLL_PARAMETERS["CLKOP_DIV"]
                  / CODER_PLL_PARAMETERS["CLKOS_DIV"])


class ULX3STop(BoardTop):
    """The acquisition system on the ULX3S's pins (see the module docstring).

    One class for every ULX3S size: the platform (``ULX3S_85F_Platform``, ...) picks the
    device, and :attr:`board` is only used to check the configuration (all sizes share the
    clock and the link).
    """

    board = "ulx3s-85f"
    flash_package = "CABGA381"
    adc_resources = ADC_RESOURCES

    def clocking(self, m: Module, platform) -> str | None:
        if _pll_output_hz() != ULX3S_CLOCK_HZ or self.config.clock_hz != ULX3S_CLOCK_HZ:
            raise BoardConfigError(
                f"the ULX3S PLL makes {_pll_output_hz() / 1e6:g} MHz, but config.clock_hz is "
                f"{self.config.clock_hz:,} Hz; build with clock_hz={ULX3S_CLOCK_HZ}"
            )
        m.domains.sync = ClockDomain("sync")
        coder = self.config.codec_v2.enabled   # the v2 coder in a domain of its own
        if coder:
            m.domains.coder = ClockDomain("coder")
        locked = Signal()
        pll_clock = Signal()  # a plain signal: Amaranth constrains signals, not domains
        coder_clock = Signal()
        self.pll_locked = locked
        if platform is None:  # elaborated for inspection only: no pins, no PLL
            return "coder" if coder else None
        second = ({"p_CLKOS_ENABLE": "ENABLED",
                   **{f"p_{name}": value for name, value in CODER_PLL_PARAMETERS.items()},
                   "a_FREQUENCY_PIN_CLKOS": f"{CODER_CLOCK_HZ / 1e6:g}",
                   "i_ENCLKOS": Const(0), "o_CLKOS": coder_clock} if coder else {})
        clk25 = platform.request(platform.default_clk, dir="-")
        m.submodules.clk25_buffer = clk25_buffer = io.Buffer("i", clk25)
        m.submodules.pll = Instance(
            "EHXPLLL",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            **{f"p_{name}": value for name, value in PLL_PARAMETERS.items()},
            # What nextpnr and the packer read to configure the loop filter (as ecppll).
            a_FREQUENCY_PIN_CLKI=f"{_OSCILLATOR_HZ / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{ULX3S_CLOCK_HZ / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            i_CLKI=clk25_buffer.i, i_CLKFB=pll_clock,
            i_RST=Const(0), i_STDBY=Const(0), i_PHASESEL0=Const(0), i_PHASESEL1=Const(0),
            i_PHASEDIR=Const(0), i_PHASESTEP=Const(0), i_PHASELOADREG=Const(0),
            i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0),
            o_CLKOP=pll_clock, o_LOCK=locked, **second,
        )
        m.d.comb += ClockSignal("sync").eq(pll_clock)
        platform.add_clock_constraint(pll_clock, ULX3S_CLOCK_HZ)
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
        if coder:
            m.d.comb += ClockSignal("coder").eq(coder_clock)
            platform.add_clock_constraint(coder_clock, CODER_CLOCK_HZ)
            m.submodules.reset_coder = ResetSynchronizer(~locked, domain="coder")

        m.submodules.led_pll_locked = led = io.Buffer(
            "o", platform.request("led", 7, dir="-"))
        m.d.comb += led.o.eq(locked)
        return "coder" if coder else None

    def pins(self, platform) -> dict[str, object]:
        return {
            "uart": platform.request("uart", 0, dir="-"),
            "streaming": platform.request("led", 0, dir="-"),
            "overflow": platform.request("led", 1, dir="-"),
            "chip_found": platform.request("led", 2, dir="-"),
        }
