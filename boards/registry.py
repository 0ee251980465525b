"""The boards spikeforge builds for, one table row each.

A row says everything the build and the programmer need to know about a board; adding a
board is adding a row (and, if its pins differ, a board top module like
:mod:`spikeforge.boards.icebreaker`). Importing this module does not import Amaranth:
platform and top classes are named by ``"module:Class"`` and loaded on first use.
"""

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.ethernet import LINK_RATE_BPS
from spikeforge.firmware.wire import MIN_RX_DIVISOR

from .errors import BoardConfigError, UnknownBoard

__all__ = ["Board", "BOARDS", "get_board", "board_names"]


@dataclass(frozen=True)
class Board:
    """One supported board.

    Attributes
    ----------
    name:
        Registry key, as typed on the command line (``--board icebreaker``).
    title:
        Human name, used in messages.
    fpga:
        Device and package, for messages and reports.
    family:
        Toolchain family (``"ice40"`` or ``"ecp5"``); selects nextpnr and the packer.
    platform:
        The Amaranth platform class, as ``"module:Class"``.
    top:
        The board top (pins, LEDs, the acquisition system), as ``"module:Class"``; called
        as ``Top(config, system=...)``.
    clock_hz:
        Frequency of the ``sync`` domain that the board top runs the design at; a
        configuration must name it (``SystemConfig.clock_hz``).
    bitstream_suffix:
        Extension of the file the programmer takes (``".bin"``, ``".bit"``).
    usb_vid, usb_pid:
        USB ID of the on-board programmer, for messages and the udev rule.
    usb_chip:
        Name of the on-board programmer chip, for messages.
    programmer_args:
        openFPGALoader arguments that select the board and the target memory.
    default_config:
        The configuration built when the user names none: the board's clock and its
        fastest reliable link rate (see ``link_note``).
    oscillator_hz:
        Frequency of the board oscillator; when it differs from ``clock_hz`` the board top
        makes ``clock_hz`` with a PLL. Default: ``clock_hz``.
    max_baud:
        Fastest baud rate the USB-serial bridge is specified for.
    link_note:
        Why ``default_config.baud`` is the fastest reliable rate on this board.
    adc_header:
        Where the ADC interface goes (connector and pins), for ``spikeforge boards``.
    link:
        Which link the board's top puts the system on (``SystemConfig.link``): ``"uart"``
        (the USB-serial bridge, at ``default_config.baud``) or ``"ethernet"`` (Gigabit
        Ethernet over the board's RGMII PHY, UDP).
    """

    name: str
    title: str
    fpga: str
    family: str
    platform: str
    top: str
    clock_hz: int
    bitstream_suffix: str
    usb_vid: int
    usb_pid: int
    usb_chip: str
    programmer_args: tuple[str, ...]
    default_config: SystemConfig = field(default_factory=SystemConfig)
    oscillator_hz: int | None = None
    max_baud: int = 3_000_000
    link_note: str = ""
    adc_header: str = ""
    link: str = "uart"

    @property
    def link_description(self) -> str:
        """The link and its rate, as ``spikeforge boards`` lists it."""
        if self.link == "ethernet":
            return f"Gigabit Ethernet, {LINK_RATE_BPS / 1e9:g} Gb/s UDP"
        return f"{self.usb_chip}, {self.default_config.baud / 1e6:g} Mbaud"

    @property
    def usb_id(self) -> str:
        """``"0403:6010"``-style USB ID, as ``lsusb`` prints it."""
        return f"{self.usb_vid:04x}:{self.usb_pid:04x}"

    def platform_class(self) -> type:
        return _load(self.platform)

    def top_class(self) -> type:
        return _load(self.top)

    def check_config(self, config: SystemConfig) -> None:
        """Raise :class:`BoardConfigError` if ``config`` cannot run on this board."""
        if config.clock_hz != self.clock_hz:
            source = ("its oscillator" if self.oscillator_hz in (None, self.clock_hz) else
                      f"a PLL from its {self.oscillator_hz / 1e6:g} MHz oscillator")
            raise BoardConfigError(
                f"the {self.title} clocks the design at {self.clock_hz / 1e6:g} MHz "
                f"({source}), but config.clock_hz is {config.clock_hz:,} Hz; build with "
                f"clock_hz={self.clock_hz} (other clocks are not supported)"
            )
        if config.link != self.link:
            raise BoardConfigError(
                f"the {self.title}'s top puts the system on its {self.link} link, but "
                f"config.link is {config.link!r}; build with link={self.link!r}"
            )
        if self.link != "uart":
            return
        if config.baud > self.max_baud:
            raise BoardConfigError(
                f"the {self.title}'s {self.usb_chip} USB-serial bridge runs at most "
                f"{self.max_baud / 1e6:g} Mbaud, but config.baud is {config.baud:,}; build "
                f"with baud={self.default_config.baud} (the board default) or lower"
            )
        if config.uart_divisor < MIN_RX_DIVISOR:
            raise BoardConfigError(
                f"{config.baud:,} baud at {config.clock_hz / 1e6:g} MHz is "
                f"{config.uart_divisor} clock cycle(s) per bit; the UART receiver of the "
                f"control path needs at least {MIN_RX_DIVISOR}, so on the {self.title} the "
                f"link can run at most {self.clock_hz // MIN_RX_DIVISOR:,} baud; build with "
                f"baud={self.default_config.baud} (the board default)"
            )


def _load(qualified_name: str) -> Any:
    module_name, _, attr = qualified_name.partition(":")
    return getattr(importlib.import_module(module_name), attr)


#: The ULX3S system clock, made by a PLL from the 25 MHz oscillator (x 9 / 5). 45 MHz
#: divides into exact sample rates (30 kS/s: 1500 cycles, room for 1024 channels
#: channel-serial) and exact FT231X baud rates (3 Mbaud: 15 cycles per bit; 1.5, 1 Mbaud).
#: 60 MHz was tried first: the test source's single-cycle hash reaches only 52.5 MHz on
#: the ECP5 (see docs/boards.md), so 45 MHz is the fastest exact clock that meets timing.
ULX3S_CLOCK_HZ = 45_000_000

_ULX3S_LINK_NOTE = (
    "FT231X full-speed USB UART, specified to 3 Mbaud; 45 MHz / 15 = 3 Mbaud exactly, and "
    "full-speed USB (~1 MB/s of bulk data) carries its 300 kB/s with room to spare"
)


def _ulx3s(size: str) -> Board:
    return Board(
        name=f"ulx3s-{size.lower()}",
        title=f"ULX3S {size}",
        fpga=f"LFE5U-{size}-6BG381C",
        family="ecp5",
        platform=f"amaranth_boards.ulx3s:ULX3S_{size}_Platform",
        top="spikeforge.boards.ulx3s:ULX3STop",
        clock_hz=ULX3S_CLOCK_HZ,
        oscillator_hz=25_000_000,
        bitstream_suffix=".bit",
        usb_vid=0x0403,
        usb_pid=0x6015,
        usb_chip="FTDI FT231X",
        # JTAG through the FT231X's bit-bang mode; --write-flash keeps the design over a
        # power cycle, like the iCEBreaker's.
        programmer_args=("--board", "ulx3s", "--write-flash"),
        default_config=SystemConfig(channels=4, clock_hz=ULX3S_CLOCK_HZ, baud=3_000_000,
                                    sweeps_per_frame=32, link_buffer_samples=2048),
        max_baud=3_000_000,
        link_note=_ULX3S_LINK_NOTE,
        adc_header="J1 GPIO: gp0 CS_n, gp1 SCLK, gp2 COPI, gp3 CIPO (gn0..3 free for LVDS)",
    )


#: The ButterStick's acquisition clock: one PLL from the 30 MHz oscillator, VCO 750 MHz,
#: 125 MHz for the link (/6) and 75 MHz for ``sync`` (/10). 75 MHz is exact for 30 kS/s
#: (2500 cycles per sample period) and carries the framer's byte stream (one byte per
#: cycle, 75 MB/s) for 1024 raw channels (61.4 MB/s of samples, plus headers).
BUTTERSTICK_CLOCK_HZ = 75_000_000
#: The Colorlight 5A-75B's: one PLL from 25 MHz, VCO 750 MHz, 125 MHz (/6) and 37.5 MHz
#: (/20): 1250 cycles per 30 kS/s sample period, a 37.5 MB/s byte stream (512 raw channels).
COLORLIGHT_CLOCK_HZ = 37_500_000

_ETHERNET_LINK_NOTE = (
    "Gigabit Ethernet (RGMII PHY, 125 MHz): UDP datagrams of whole wire frames, about "
    "120 MB/s of payload; what limits a raw stream first is the acquisition clock, as the "
    "framer hands the link one byte per cycle"
)


def _ethernet_config(clock_hz: int, channels: int) -> SystemConfig:
    return SystemConfig(channels=channels, clock_hz=clock_hz, link="ethernet",
                        sweeps_per_frame=1, link_buffer_samples=4 * channels)


BOARDS: dict[str, Board] = {
    board.name: board
    for board in [
        Board(
            name="icebreaker",
            title="iCEBreaker",
            fpga="iCE40UP5K-SG48",
            family="ice40",
            platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
            top="spikeforge.boards.icebreaker:ICEBreakerTop",
            clock_hz=12_000_000,
            bitstream_suffix=".bin",
            usb_vid=0x0403,
            usb_pid=0x6010,
            usb_chip="FTDI FT2232H",
            # The iCEBreaker's jumpers are set for SPI flash out of the box (SRAM loading
            # needs them changed), and flash survives a power cycle: write the flash.
            programmer_args=("--board", "ice40_generic", "--write-flash"),
            # The FT2232H goes to 12 Mbaud, but that is one bit per 12 MHz cycle: nothing
            # left to sample the host's commands with (one baud for both directions). 4 Mbaud
            # (120 MHz / 10 / 3, exact on both sides) is the fastest the UART receiver takes
            # (MIN_RX_DIVISOR = 3 cycles per bit); 4 channels at 30 kS/s use 66 % of it.
            default_config=SystemConfig(channels=4, clock_hz=12_000_000, baud=4_000_000,
                                        sweeps_per_frame=16, link_buffer_samples=1024),
            max_baud=12_000_000,
            link_note=("FT2232H high-speed USB UART, specified to 12 Mbaud; 12 MHz / 3 = 4 "
                       "Mbaud exactly, the fastest rate the control path's UART receiver "
                       "samples (3 cycles per bit)"),
            adc_header="PMOD1A: pin 1 CS_n, 2 COPI, 3 CIPO, 4 SCLK (Digilent PMOD SPI order)",
        ),
        *(_ulx3s(size) for size in ("12F", "45F", "85F")),
        Board(
            name="butterstick",
            title="ButterStick r1.0",
            fpga="LFE5UM5G-85F-8BG381C",
            family="ecp5",
            platform="amaranth_boards.butterstick:ButterStickPlatform",
            top="spikeforge.boards.ethernet_boards:ButterStickTop",
            clock_hz=BUTTERSTICK_CLOCK_HZ,
            oscillator_hz=30_000_000,
            bitstream_suffix=".bit",
            # The ButterStick's USB DFU bootloader (in its SPI flash, started by holding
            # the button next to the USB connector at power-up) writes the bitstream into
            # the user slot of the flash; openFPGALoader speaks DFU itself.
            usb_vid=0x1209,
            usb_pid=0x5AF1,
            usb_chip="ButterStick DFU bootloader",
            programmer_args=("--dfu", "--vid", "0x1209", "--pid", "0x5af1",
                             "--altsetting", "0"),
            default_config=_ethernet_config(BUTTERSTICK_CLOCK_HZ, 1024),
            link_note=_ETHERNET_LINK_NOTE,
            adc_header="SYZYGY port A (VIO0 set to 3.3 V): S0 CS_n, S1 SCLK, S2 COPI, S3 CIPO",
            link="ethernet",
        ),
        Board(
            name="colorlight-5a75b",
            title="Colorlight 5A-75B v7.0",
            fpga="LFE5U-25F-6BG256C",
            family="ecp5",
            platform="amaranth_boards.colorlight_5a75b_r7_0:Colorlight_5A75B_R70Platform",
            top="spikeforge.boards.ethernet_boards:Colorlight5A75BTop",
            clock_hz=COLORLIGHT_CLOCK_HZ,
            oscillator_hz=25_000_000,
            bitstream_suffix=".bit",
            # No programmer on the board: an FT232H JTAG cable on its JTAG pads (J27),
            # as amaranth-boards programs it (openFPGALoader -c ft232).
            usb_vid=0x0403,
            usb_pid=0x6014,
            usb_chip="FTDI FT232H JTAG cable",
            programmer_args=("--cable", "ft232", "--write-flash"),
            default_config=_ethernet_config(COLORLIGHT_CLOCK_HZ, 512),
            link_note=_ETHERNET_LINK_NOTE,
            adc_header=("HUB75 J1 (after a hardware change: its 74HC245 bridged): pin 1 CS_n, "
                        "2 SCLK, 3 COPI, 5 CIPO"),
            link="ethernet",
        ),
    ]
}


def board_names() -> list[str]:
    return sorted(BOARDS)


def get_board(name: str) -> Board:
    """The registry row for ``name`` (case-insensitive)."""
    board = BOARDS.get(name.strip().lower()) if isinstance(name, str) else None
    if board is None:
        known = ", ".join(f"{b.name} ({b.title}, {b.fpga})" for b in BOARDS.values())
        close = difflib.get_close_matches(str(name).lower(), BOARDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownBoard(f"unknown board {name!r}; known boards: {known}{hint}")
    return board
