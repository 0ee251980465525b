"""Board tops for ECP5 boards with a Gigabit Ethernet PHY: the ButterStick and the Colorlight
5A-75B. The system's link is Gigabit Ethernet (``SystemConfig.link == "ethernet"``): UDP
datagrams over the board's RGMII PHY (docs/boards.md, "Ethernet boards").

What every Ethernet top does (:class:`EthernetBoardTop`):

* **Three clock domains.** ``sync`` (acquisition, ``config.clock_hz``) and ``link``
  (125 MHz, the transmit side of the MAC) from the board oscillator through ECP5 PLLs
  (``EHXPLLL``, dividers found and checked by :func:`pll_plan`); ``eth_rx`` from the PHY's
  receive clock pin (``rx_clk``, 125 MHz at 1000 Mb/s). All three are constrained for
  nextpnr (``rx_clk`` at its pin; the PLL outputs by nextpnr's derivation from the
  oscillator's constraint), so the build checks each one's Fmax. ``sync`` and ``link``
  are held in reset until the PLLs lock, ``eth_rx`` until the PHY is out of reset.
* **RGMII adapters** between the pins and the system's GMII ports
  (:class:`~spikeforge.hdl.ethernet.rgmii_tx.RGMIITransmitter` in ``link``,
  :class:`~spikeforge.hdl.ethernet.rgmii_rx.RGMIIReceiver` in ``eth_rx``; DDR through
  ``io.DDRBuffer``, ODDRX1F/IDDRX1F on the ECP5).
* **TX clock skew from the PHY.** ``tx_clk`` leaves in phase with the data (a DDR output
  of constant 1/0 in ``link``); the 90-degree-like delay the PHY needs to sample in the
  middle of a nibble is the PHY's own internal delay, as it comes out of reset on both
  boards (ButterStick: KSZ9031RNX, whose TX and RX clock paths carry a fixed internal
  delay of about 1.2 ns plus its pad-skew registers' default; Colorlight: B50612D,
  strapped for RGMII with internal delays). Nothing is written over MDIO; ``mdc`` and
  ``mdio`` stay unused. A PLL output at 90 degrees as well would delay the clock twice.
* **PHY reset** held for :data:`PHY_RESET_S` after the PLLs lock, then released.
"""

from dataclasses import dataclass
from fractions import Fraction

from amaranth.build import Attrs, Pins, PinsN, Resource, Subsignal
from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    Const,
    DomainRenamer,
    Elaboratable,
    Instance,
    Module,
    Signal,
)
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from spikeforge.firmware.ethernet import LINK_CLOCK_HZ

from .board_top import BoardTop
from .errors import BoardConfigError
from .registry import get_board

__all__ = [
    "EthernetBoardTop", "ButterStickTop", "Colorlight5A75BTop", "PLLSettings", "pll_plan",
    "BUTTERSTICK_ADC_RESOURCES", "COLORLIGHT_ADC_RESOURCES", "PHY_RESET_S", "VccioControl",
]

#: How long the PHY is held in reset after the PLLs lock (KSZ9031RNX: at least 10 ms after
#: its supplies are stable; B50612D: at least 2 ms). 20 ms covers both.
PHY_RESET_S = 0.020

# -- PLL ------------------------------------------------------------------------------------

#: ECP5 EHXPLLL limits (Lattice TN1263; the same as ``ecppll`` checks).
VCO_MIN_HZ, VCO_MAX_HZ = 400_000_000, 800_000_000
PFD_MIN_HZ = 3_125_000
MAX_DIV = 128


@dataclass(frozen=True)
class PLLSettings:
    """One EHXPLLL: ``CLKOP = f_in / clki_div * clkfb_div`` (feedback from CLKOP), the VCO
    at ``CLKOP * clkop_div``, and optionally ``CLKOS = VCO / clkos_div``."""

    input_hz: int
    clki_div: int
    clkfb_div: int
    clkop_div: int
    clkos_div: int | None = None

    @property
    def clkop_hz(self) -> Fraction:
        return Fraction(self.input_hz, self.clki_div) * self.clkfb_div

    @property
    def vco_hz(self) -> Fraction:
        return self.clkop_hz * self.clkop_div

    @property
    def clkos_hz(self) -> Fraction | None:
        return None if self.clkos_div is None else self.vco_hz / self.clkos_div

    def check(self) -> None:
        pfd = Fraction(self.input_hz, self.clki_div)
        if pfd < PFD_MIN_HZ or not VCO_MIN_HZ <= self.vco_hz <= VCO_MAX_HZ:
            raise BoardConfigError(f"PLL settings {self} are outside the ECP5's limits")


def _single(input_hz: int, clkop_hz: int, clkos_hz: int | None) -> PLLSettings | None:
    for clki_div in range(1, MAX_DIV + 1):
        if Fraction(input_hz, clki_div) < PFD_MIN_HZ:
            break
        clkfb = Fraction(clkop_hz * clki_div, input_hz)
        if clkfb.denominator != 1 or not 1 <= clkfb <= MAX_DIV:
            continue
        for clkop_div in range(1, MAX_DIV + 1):
            vco = clkop_hz * clkop_div
            if vco > VCO_MAX_HZ:
                break
            if vco < VCO_MIN_HZ:
                continue
            if clkos_hz is None:
                return PLLSettings(input_hz, clki_div, int(clkfb), clkop_div)
            clkos_div = Fraction(vco, clkos_hz)
            if clkos_div.denominator == 1 and 1 <= clkos_div <= MAX_DIV:
                return PLLSettings(input_hz, clki_div, int(clkfb), clkop_div, int(clkos_div))
    return None


def pll_plan(input_hz: int, link_hz: int, sync_hz: int) -> list[PLLSettings]:
    """The EHXPLLLs that make ``link_hz`` and ``sync_hz`` exactly from ``input_hz``: one
    PLL (``link`` on CLKOP, ``sync`` on CLKOS) when a VCO serves both, else two (each on
    its CLKOP). Raises :class:`BoardConfigError` if even two cannot."""
    one = _single(input_hz, link_hz, sync_hz)
    if one is not None:
        return [one]
    link, sync = _single(input_hz, link_hz, None), _single(input_hz, sync_hz, None)
    if link is None or sync is None:
        raise BoardConfigError(
            f"no ECP5 PLL makes {sync_hz:,} Hz and {link_hz:,} Hz exactly from a "
            f"{input_hz / 1e6:g} MHz oscillator")
    return [link, sync]


def _ehxplll(settings: PLLSettings, clki, clkop, clkos, locked) -> Instance:
    settings.check()
    secondary = {}
    if settings.clkos_div is not None:
        secondary = dict(p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=settings.clkos_div,
                         p_CLKOS_CPHASE=settings.clkos_div - 1, p_CLKOS_FPHASE=0,
                         a_FREQUENCY_PIN_CLKOS=f"{float(settings.clkos_hz) / 1e6:g}",
                         o_CLKOS=clkos)
    return Instance(
        "EHXPLLL",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
        p_CLKOP_ENABLE="ENABLED", p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
        p_CLKI_DIV=settings.clki_div, p_CLKFB_DIV=settings.clkfb_div,
        p_CLKOP_DIV=settings.clkop_div, p_CLKOP_CPHASE=settings.clkop_div - 1,
        a_FREQUENCY_PIN_CLKI=f"{settings.input_hz / 1e6:g}",
        a_FREQUENCY_PIN_CLKOP=f"{float(settings.clkop_hz) / 1e6:g}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8",
        a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
        i_CLKI=clki, i_CLKFB=clkop,
        i_RST=Const(0), i_STDBY=Const(0), i_PHASESEL0=Const(0), i_PHASESEL1=Const(0),
        i_PHASEDIR=Const(0), i_PHASESTEP=Const(0), i_PHASELOADREG=Const(0),
        i_PLLWAKESYNC=Const(0), i_ENCLKOP=Const(0),
        o_CLKOP=clkop, o_LOCK=locked,
        **secondary,
    )


# -- the common top ---------------------------------------------------------------------------


class EthernetBoardTop(BoardTop):
    """The acquisition system on an ECP5 board's RGMII PHY (see the module docstring).

    Subclasses set :attr:`board`, :attr:`oscillator_hz`, :attr:`eth_index` and implement
    :meth:`pins` (LEDs) and, if they have one, :meth:`pll_locked_led`.
    """

    oscillator_hz: int = 0
    #: Which ``eth_rgmii`` resource of the platform carries the link.
    eth_index: int = 0

    def pll_locked_led(self, platform):
        """The LED that shows the PLLs locked, or None."""
        return None

    def plan(self) -> list[PLLSettings]:
        return pll_plan(self.oscillator_hz, LINK_CLOCK_HZ, self.config.clock_hz)

    def clocking(self, m: Module, platform) -> str | None:
        spec = get_board(self.board)
        if self.config.clock_hz != spec.clock_hz:
            raise BoardConfigError(
                f"the {spec.title} clocks the design at {spec.clock_hz / 1e6:g} MHz, but "
                f"config.clock_hz is {self.config.clock_hz:,} Hz; build with "
                f"clock_hz={spec.clock_hz}")
        plan = self.plan()
        m.domains.sync = ClockDomain("sync")
        m.domains.link = ClockDomain("link")
        self.pll_locked = locked = Signal()
        if platform is None:  # elaborated for inspection only: no pins, no PLL
            return
        oscillator = platform.request(platform.default_clk, dir="-")
        m.submodules.oscillator_buffer = oscillator_buffer = io.Buffer("i", oscillator)
        # The PLL outputs drive the domains' clocks directly. nextpnr derives their
        # constraints from the oscillator's (FREQUENCY PORT, from the platform) through the
        # PLL's dividers ("Derived frequency constraint" in the log): a FREQUENCY NET on a
        # signal of ours would be lost, as Yosys keeps only one of a net's names.
        link_clock, sync_clock = ClockSignal("link"), ClockSignal("sync")
        locks = []
        if len(plan) == 1:
            lock = Signal()
            m.submodules.pll = _ehxplll(plan[0], oscillator_buffer.i, link_clock,
                                        sync_clock, lock)
            locks.append(lock)
        else:
            for name, settings, clock in (("pll_link", plan[0], link_clock),
                                          ("pll_sync", plan[1], sync_clock)):
                lock = Signal(name=f"{name}_lock")
                m.submodules[name] = _ehxplll(settings, oscillator_buffer.i, clock, None,
                                              lock)
                locks.append(lock)
        m.d.comb += locked.eq(locks[0] if len(locks) == 1 else locks[0] & locks[1])
        m.submodules.reset_sync = ResetSynchronizer(~locked, domain="sync")
        m.submodules.reset_link = ResetSynchronizer(~locked, domain="link")
        led = self.pll_locked_led(platform)
        if led is not None:
            m.submodules.led_pll_locked = led_buffer = io.Buffer("o", led)
            m.d.comb += led_buffer.o.eq(locked)

    def connect_link(self, m: Module, platform, system: Elaboratable,
                     pins: dict[str, object]) -> None:
        if self.config.link != "ethernet":
            raise BoardConfigError(
                f"the {get_board(self.board).title}'s link is Gigabit Ethernet; build with "
                f"link='ethernet'")
        from spikeforge.hdl.ethernet.rgmii_rx import RGMIIReceiver
        from spikeforge.hdl.ethernet.rgmii_tx import RGMIITransmitter

        m.domains.eth_rx = ClockDomain("eth_rx")
        eth = platform.request("eth_rgmii", self.eth_index, dir="-")

        # The PHY's receive clock is the eth_rx domain's clock, constrained at its pin
        # (FREQUENCY PORT: a pin keeps its name through synthesis).
        m.submodules.eth_rx_clk_buffer = rx_clk_buffer = io.Buffer("i", eth.rx_clk)
        m.d.comb += ClockSignal("eth_rx").eq(rx_clk_buffer.i)
        platform.add_clock_constraint(eth.rx_clk.io, LINK_CLOCK_HZ)

        # The PHY's reset: held for PHY_RESET_S after the PLLs lock (sync leaves reset
        # then), released for good afterwards; eth_rx stays in reset while the PHY is.
        hold = int(self.config.clock_hz * PHY_RESET_S)
        count = Signal(range(hold + 1))
        phy_in_reset = Signal(init=1)
        with m.If(count == hold):
            m.d.sync += phy_in_reset.eq(0)
        with m.Else():
            m.d.sync += count.eq(count + 1)
        m.submodules.eth_rst_buffer = rst_buffer = io.Buffer("o", eth.rst)  # PinsN: 1 = reset
        m.d.comb += rst_buffer.o.eq(phy_in_reset)
        m.submodules.reset_eth_rx = ResetSynchronizer(phy_in_reset, domain="eth_rx")
        self.phy_in_reset = phy_in_reset

        m.submodules.rgmii_tx = tx = DomainRenamer("link")(RGMIITransmitter(pins=eth))
        m.submodules.rgmii_rx = rx = DomainRenamer("eth_rx")(RGMIIReceiver(pins=eth))
        m.d.comb += [
            tx.tx_data.eq(system.gmii_tx_data),
            tx.tx_en.eq(system.gmii_tx_en),
            tx.tx_er.eq(system.gmii_tx_er),
            system.gmii_rx_data.eq(rx.rx_data),
            system.gmii_rx_dv.eq(rx.rx_dv),
            system.gmii_rx_er.eq(rx.rx_er),
        ]

    def elaborate(self, platform):
        self._rgb = None  # a board's shared LED resource, requested once per elaboration
        m = super().elaborate(platform)
        self.extra(m, platform)
        return m

    def extra(self, m: Module, platform) -> None:
        """Anything else the board needs (e.g. I/O bank supplies); nothing by default."""


# -- ButterStick --------------------------------------------------------------------------------

#: The RHD2000 SPI lines on SYZYGY port A (silk "VIO0" bank, set to 3.3 V by the top):
#: S0 CS_n, S1 SCLK, S2 COPI, S3 CIPO; CIPO of chips 1..3 on S4, S5, S6.
BUTTERSTICK_ADC_RESOURCES = [
    Resource("adc_spi", 0,
             Subsignal("cs", PinsN("S0", dir="o", conn=("syzygy", 0))),
             Subsignal("clk", Pins("S1", dir="o", conn=("syzygy", 0))),
             Subsignal("copi", Pins("S2", dir="o", conn=("syzygy", 0))),
             Subsignal("cipo", Pins("S3", dir="i", conn=("syzygy", 0))),
             Attrs(IO_TYPE="LVCMOS33")),
    *(Resource("adc_cipo", line, Pins(f"S{3 + line}", dir="i", conn=("syzygy", 0)),
               Attrs(IO_TYPE="LVCMOS33"))
      for line in (1, 2, 3)),
]


class VccioControl(Elaboratable):
    """The ButterStick's SYZYGY bank supplies (VIO0, VIO1, VIO3 on the silk): each buck's
    output is set by a sigma-delta DAC from the FPGA injecting current into its feedback
    node; the regulators are enabled once the DACs have settled. The arithmetic is the
    one amaranth-boards documents for the board (``ButterStickPlatform``'s docstring).
    Runs in ``sync`` at ``clock_hz``.
    """

    def __init__(self, clock_hz: int, volts: tuple[float, float, float]):
        self.clock_hz = clock_hz
        self.volts = volts
        self.power_good = Signal()

    @staticmethod
    def control_voltage(vcc_out: float) -> float:
        vfb, ri, rf, rs = 0.6, 68_000, 53_600, 13_000
        vctl = vfb * (1 + ri / rf) + ri * (vfb / rs) - (ri / rf) * vcc_out
        if not 0 < vctl < 3.3:
            raise BoardConfigError(f"the ButterStick cannot set a bank to {vcc_out} V")
        return vctl

    def elaborate(self, platform):
        m = Module()
        control = platform.request("vccio_ctrl", 0, dir="-")
        counter = Signal(10)
        m.d.sync += counter.eq(counter + 1)
        m.submodules.pdm = pdm = io.Buffer("o", control.pdm)
        m.submodules.en = en = io.Buffer("o", control.en)
        for index, volts in enumerate(self.volts):
            level = int(self.control_voltage(volts) / 3.3 * (1 << len(counter)))
            m.d.sync += pdm.o[index].eq(counter < level)
        cutoff_hz = 1 / (2 * 3.141592653589793 * 68_000 * 0.1e-6)
        boot = int(4 / cutoff_hz * self.clock_hz)
        soft = int(0.001 * self.clock_hz)
        timer = Signal(range(boot + soft + 1))
        with m.If(timer != boot + soft):
            m.d.sync += timer.eq(timer + 1)
        m.d.sync += [en.o.eq(timer >= boot), self.power_good.eq(timer == boot + soft)]
        return m


class ButterStickTop(EthernetBoardTop):
    """The acquisition system on the ButterStick r1.0 (LFE5UM5G-85F, KSZ9031RNX PHY).

    Clocks: the 30 MHz oscillator (B12) into one EHXPLLL (:func:`pll_plan`): VCO 750 MHz,
    CLKOP 125 MHz (``link``), CLKOS :data:`~spikeforge.boards.registry.BUTTERSTICK_CLOCK_HZ`
    (``sync``). LEDs (the seven RGB LEDs share their colour lines; all shown blue): LED 0
    streaming, 1 overflow, 2 chip found, 3 PLLs locked. ADC: SYZYGY port A
    (:data:`BUTTERSTICK_ADC_RESOURCES`); with the RHD source the top also sets the port's
    bank supply to 3.3 V (:class:`VccioControl`: VIO0 and VIO1 3.3 V, VIO3 1.8 V for the
    ULPI PHY), as the board powers its SYZYGY banks down until the FPGA sets them.
    """

    board = "butterstick"
    flash_package = "CABGA381"
    oscillator_hz = 30_000_000
    adc_resources = BUTTERSTICK_ADC_RESOURCES

    def _leds(self, platform):
        if self._rgb is None:
            self._rgb = platform.request("rgb_leds_muxed", 0, dir="-")
        return self._rgb

    def pll_locked_led(self, platform):
        return self._leds(platform).leds[3]

    def pins(self, platform) -> dict[str, object]:
        rgb = self._leds(platform)
        return {"streaming": rgb.leds[0], "overflow": rgb.leds[1],
                "chip_found": rgb.leds[2]}

    def extra(self, m: Module, platform) -> None:
        rgb = self._leds(platform)
        for colour, value in (("r", 0), ("g", 0), ("b", 1)):
            buffer = io.Buffer("o", getattr(rgb, colour))
            m.submodules[f"led_colour_{colour}"] = buffer
            m.d.comb += buffer.o.eq(value)
        m.submodules.led_unused = unused = io.Buffer("o", rgb.leds[4:])  # LEDs 4-6 off
        m.d.comb += unused.o.eq(0)
        if self.config.source == "rhd":
            m.submodules.vccio = VccioControl(self.config.clock_hz, (3.3, 3.3, 1.8))


# -- Colorlight 5A-75B ------------------------------------------------------------------------

#: The RHD2000 SPI lines on HUB75 connector J1 (v7.0 board): pin 1 (F3) CS_n, pin 2 (F1)
#: SCLK, pin 3 (G3) COPI, pin 5 (G2) CIPO; CIPO of chips 1, 2 on pins 6 (H3), 7 (H5). The
#: connector's lines go through a 74HC245 powered from 5 V that only drives outwards:
#: **hardware change needed** (docs/boards.md): remove J1's buffer and bridge its A and B
#: pads for these lines, so they are the FPGA's 3.3 V pins both ways.
COLORLIGHT_ADC_RESOURCES = [
    Resource("adc_spi", 0,
             Subsignal("cs", PinsN("1", dir="o", conn=("j", 1))),
             Subsignal("clk", Pins("2", dir="o", conn=("j", 1))),
             Subsignal("copi", Pins("3", dir="o", conn=("j", 1))),
             Subsignal("cipo", Pins("5", dir="i", conn=("j", 1))),
             Attrs(IO_TYPE="LVCMOS33")),
    *(Resource("adc_cipo", line, Pins(pin, dir="i", conn=("j", 1)), Attrs(IO_TYPE="LVCMOS33"))
      for line, pin in ((1, "6"), (2, "7"))),
]


class Colorlight5A75BTop(EthernetBoardTop):
    """The acquisition system on the Colorlight 5A-75B v7.0 (LFE5U-25F, two B50612D PHYs).

    Clocks: the 25 MHz oscillator (P6) into one EHXPLLL: VCO 750 MHz, CLKOP 125 MHz
    (``link``), CLKOS :data:`~spikeforge.boards.registry.COLORLIGHT_CLOCK_HZ` (``sync``).
    Link: the PHY of ``eth_rgmii`` 0 (the port next to the power connector on v7.0; both
    PHYs share reset and MDIO). The board has one user LED (P11, active low): it shows
    streaming; overflow and chip found have no LED (the registers report both).
    """

    board = "colorlight-5a75b"
    flash_package = "CABGA256"
    oscillator_hz = 25_000_000
    adc_resources = COLORLIGHT_ADC_RESOURCES

    def pins(self, platform) -> dict[str, object]:
        return {"streaming": platform.request("led", 0, dir="-"), "overflow": None,
                "chip_found": None}
