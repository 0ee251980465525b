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
