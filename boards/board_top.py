"""What every board top does: put the acquisition system on the link and the status LEDs.

A board module (:mod:`.icebreaker`, :mod:`.ulx3s`) subclasses :class:`BoardTop` and says
which pins to use and, if the board needs one, how to make the ``sync`` clock. Everything
else (checking the configuration, retiming the UART line, the LEDs) is here, once.

Status LEDs, the same meaning on every board:

* **streaming** — the stream is enabled (register ``STREAM_ENABLE``);
* **overflow** — a frame was dropped in the last 125 ms (link too slow);
* **chip found** — the ADC front-end answered; driven by the system's ``chip_found``
  output as soon as the design has one (the RHD front-end adds it), off until then.
"""

from collections.abc import Callable

from amaranth.build import Attrs, Pins, PinsN, Resource, Subsignal
from amaranth.hdl import Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io

from spikeforge.firmware.config import SystemConfig

from .errors import BoardConfigError
from .registry import get_board

__all__ = ["BoardTop", "acquisition_system", "ADC_SPI_SIGNALS", "ECP5_FLASH_PINS"]

#: The ADC interface's signals, in the order the board modules document their pins.
ADC_SPI_SIGNALS = ("cs", "copi", "cipo", "clk")

#: The ECP5's dedicated configuration-flash pins by package — chip select, MOSI (D0), MISO
#: (D1), D2 (the flash's write protect), D3 (its hold) — which every board that boots
#: from SPI flash wires to it; the clock (CCLK) is reached through ``USRMCLK``.
ECP5_FLASH_PINS = {
    "CABGA381": ("R2", "W2", "V2", "Y2", "W1"),
    "CABGA256": ("N8", "T8", "T7", "M7", "N7"),
}


def acquisition_system(config: SystemConfig, coder_domain: str = "sync") -> Elaboratable:
    """The design that goes on a board by default: whatever ``AcquisitionSystem`` builds
    for ``config`` (so new cores enabled in the configuration are picked up), its v2 coder
    in ``coder_domain``."""
    # Imported here so that the board layer can be imported (registry, cache keys, error
    # messages) without elaborating the HDL package.
    from spikeforge.hdl.top import AcquisitionSystem

    return AcquisitionSystem(config, coder_domain=coder_domain)


class BoardTop(Elaboratable):
    """The acquisition system on one board's pins.

    Parameters
    ----------
    config:
        What to build; ``config.clock_hz`` must be the board's ``clock_hz`` (checked when
        elaborated: :class:`~spikeforge.boards.errors.BoardConfigError` otherwise).
    system:
        Makes the design to put on the board from ``config``; default
        :func:`acquisition_system`. Anything with the same ports (outputs ``uart_tx``,
        ``streaming``, ``overflow``, optionally ``chip_found``; optionally the input
        ``uart_rx``) will do, e.g. a test design. It is called with the config alone,
        or, when the board makes a clock domain for the v2 coder (:meth:`clocking`
        returns its name), with ``coder_domain=`` that name as well.

    Subclasses set :attr:`board` (registry name) and implement :meth:`pins`; they may
    override :meth:`clocking` to make the ``sync`` domain (default: the platform's clock)
    and a domain of the v2 coder's own.
    """

    #: Registry name of the board; set by subclasses.
    board: str = ""
    #: Amaranth resources of the ADC interface: ``adc_spi`` 0 (cs, copi, cipo, clk) and,
    #: for more chips, ``adc_cipo`` 1..3; added to the platform when ``source == "rhd"``.
    adc_resources: list = []

    def __init__(self, config: SystemConfig,
                 system: Callable[[SystemConfig], Elaboratable] | None = None):
        self.config = config
        self._make_system = system or acquisition_system

    def clocking(self, m: Module, platform) -> str | None:
        """Make the ``sync`` domain at ``config.clock_hz``; return the name of a domain it
        made for the v2 coder, or None (the coder in ``sync``). Default: the board
        oscillator through the platform's default clock (nothing to do here)."""
        if platform is not None and platform.default_clk_frequency != self.config.clock_hz:
            raise BoardConfigError(
                f"platform {type(platform).__name__} clocks the design at "
                f"{platform.default_clk_frequency / 1e6:g} MHz, but config.clock_hz is "
                f"{self.config.clock_hz:,} Hz"
            )
        return None

    def pins(self, platform) -> dict[str, object]:
        """The board's pins: ``{"uart": ..., "streaming": ..., "overflow": ...,
        "chip_found": ...}``, each the result of ``platform.request(..., dir="-")`` (a LED
        may be None where the board has none; an Ethernet board has no ``"uart"``)."""
        raise NotImplementedError

    def elaborate(self, platform):
        spec = get_board(self.board)
        spec.check_config(self.config)

        m = Module()
        coder_domain = self.clocking(m, platform)
        m.submodules.system = system = (
            self._make_system(self.config) if coder_domain is None
            else self._make_system(self.config, coder_domain=coder_domain))
        pins = self.pins(platform)

        members = system.signature.members if hasattr(system, "signature") else {}
        self.connect_link(m, platform, system, pins)

        if self.config.source == "rhd":
            self._connect_adc(m, platform, system)
        if "flash_sck" in members and platform is not None:
            self.connect_flash(m, platform, system)

        # AcquisitionSystem.chip_found (RHD source): the start-up calibration found a chip.
        chip_found = system.chip_found if "chip_found" in members else Const(0)
        for name, value in (("streaming", system.streaming), ("overflow", system.overflow),
                            ("chip_found", chip_found)):
            if pins.get(name) is None:  # the board has no LED for it (documented per board)
                continue
            buffer = io.Buffer("o", pins[name])
            m.submodules[f"led_{name}"] = buffer
            m.d.comb += buffer.o.eq(value)
        return m

    def connect_link(self, m: Module, platform, system: Elaboratable,
                     pins: dict[str, object]) -> None:
        """Put the system's link on the board's pins; here the UART (``pins["uart"]``).
        Ethernet boards override it (:class:`spikeforge.boards.ethernet_boards.EthernetBoardTop`:
        RGMII adapters, the ``link`` and ``eth_rx`` domains)."""
        if self.config.link != "uart":
            raise BoardConfigError(
                f"the {get_board(self.board).title} has no {self.config.link} link; build with "
                f"link='uart'")
        # The system's line may come from logic (glitches within a cycle) and an FPGA I/O
        # register may power up low (a false start bit): retime it in a fabric register
        # that is high from configuration on, then drive the pin directly.
        uart_tx = Signal(init=1)
        m.d.sync += uart_tx.eq(system.uart_tx)
        m.submodules.uart_tx_buffer = tx_buffer = io.Buffer("o", pins["uart"].tx)
        m.d.comb += tx_buffer.o.eq(uart_tx)

        members = system.signature.members if hasattr(system, "signature") else {}
        # The host's commands (AcquisitionSystem.uart_rx; it synchronises the line itself).
        m.submodules.uart_rx_buffer = rx_buffer = io.Buffer("i", pins["uart"].rx)
        if "uart_rx" in members:
            m.d.comb += system.uart_rx.eq(rx_buffer.i)

    #: Keyed builds: the package of the board's ECP5 (a key of :data:`ECP5_FLASH_PINS`),
    #: whose configuration flash keeps the spent epochs; None: not wired on this board.
    flash_package: str | None = None

    def connect_flash(self, m: Module, platform, system: Elaboratable) -> None:
        """Keyed builds: the system's ``flash_*`` ports on the configuration flash (the
        :class:`~spikeforge.hdl.epoch_store.EpochStore`); write protect and hold held off."""
        if self.flash_package is None:
            raise BoardConfigError(
                f"{self.board}: a keyed build (control_key) keeps its spent command epochs "
                "in the configuration flash, and this board's top does not wire it; build "
                "without control_key, or on an ECP5 board (docs/wire-format.md, Epochs)")
        cs, copi, cipo, wp, hold = ECP5_FLASH_PINS[self.flash_package]
        platform.add_resources([Resource(
            "epoch_flash", 0, Subsignal("cs", PinsN(cs, dir="o")),
            Subsignal("copi", Pins(copi, dir="o")), Subsignal("cipo", Pins(cipo, dir="i")),
            Subsignal("wp", PinsN(wp, dir="o")), Subsignal("hold", PinsN(hold, dir="o")),
            Attrs(IO_TYPE="LVCMOS33"))])
        pins = platform.request("epoch_flash", 0, dir="-")
        outputs = {"cs": ~system.flash_cs_n, "copi": system.flash_copi, "wp": 0, "hold": 0}
        for name, value in outputs.items():
            m.submodules[f"flash_{name}"] = buffer = io.Buffer("o", getattr(pins, name))
            m.d.comb += buffer.o.eq(value)
        m.submodules.flash_cipo = cipo_buffer = io.Buffer("i", pins.cipo)
        m.d.comb += system.flash_cipo.eq(cipo_buffer.i)
        # CCLK is the FPGA's configuration clock pin: user logic drives it through USRMCLK.
        m.submodules.flash_clock = Instance("USRMCLK", i_USRMCLKI=system.flash_sck,
                                            i_USRMCLKTS=Const(0))

    def _connect_adc(self, m: Module, platform, system: Elaboratable) -> None:
        """The RHD2000 SPI bus on the board's ADC pins.

        Outputs leave through fabric registers that hold their idle levels from
        configuration on (CS must not glitch active at power-up); MISO enters through one
        register. The two cycles this adds to the round trip are part of what the MISO
        delay calibration measures.
        """
        lines = self.config.rhd.lines
        names = {r.name for r in self.adc_resources}
        extra = sum(1 for r in self.adc_resources if r.name == "adc_cipo")
        if "adc_spi" not in names or extra < lines - 1:
            raise BoardConfigError(
                f"the {get_board(self.board).title} has ADC pins for {extra + ('adc_spi' in names)}"
                f" RHD chip(s), not {lines}; use fewer rhd.chips")
        platform.add_resources(self.adc_resources)
        spi = platform.request("adc_spi", 0, dir="-")
        # cs is active low at the pin; the resource inverts it (PinsN), so drive "selected".
        for pin, signal, idle, invert in ((spi.cs, system.rhd_cs, 1, True),
                                          (spi.clk, system.rhd_sclk, 0, False),
                                          (spi.copi, system.rhd_mosi, 0, False)):
            retimed = Signal(init=idle)
            m.d.sync += retimed.eq(signal)
            buffer = io.Buffer("o", pin)
            m.submodules += buffer
            m.d.comb += buffer.o.eq(~retimed if invert else retimed)
        cipo = [spi.cipo] + [platform.request("adc_cipo", line, dir="-")
                             for line in range(1, lines)]
        for line, pin in enumerate(cipo):
            buffer = io.Buffer("i", pin)
            m.submodules += buffer
            m.d.sync += system.rhd_miso[line].eq(buffer.i)
