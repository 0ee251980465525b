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
        Frequency of the board oscillator that clocks the ``sync`` domain.
    bitstream_suffix:
        Extension of the file the programmer takes (``".bin"``, ``".bit"``).
    usb_vid, usb_pid:
        USB ID of the on-board programmer, for messages and the udev rule.
    usb_chip:
        Name of the on-board programmer chip, for messages.
    programmer_args:
        openFPGALoader arguments that select the board and the target memory.
    default_config:
        The configuration built when the user names none.
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
            raise BoardConfigError(
                f"the {self.title} clocks the design at {self.clock_hz / 1e6:g} MHz (its "
                f"oscillator), but config.clock_hz is {config.clock_hz:,} Hz; build with "
                f"clock_hz={self.clock_hz} (a PLL for other clocks is not supported yet)"
            )


def _load(qualified_name: str) -> Any:
    module_name, _, attr = qualified_name.partition(":")
    return getattr(importlib.import_module(module_name), attr)


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
