"""Program a board: build the bitstream (cached), then write it with openFPGALoader.

openFPGALoader's failures are translated into one project exception each, whose message
says what is wrong, how to fix it, and where the built bitstream is (so that it can be
programmed later without a rebuild):

* ``unable to open ftdi device: -3`` (nothing with the board's USB ID):
  :class:`BoardNotFound`, exit code 3, naming the VID:PID (and serial) looked for;
* ``... -4`` (no permission): :class:`DevicePermissionDenied`, 3, with the udev rule
  shipped in ``boards/udev/`` and the commands that install it;
* ``... -5`` (claimed by someone else): :class:`DeviceBusy`, 3;
* ``error while loading shared libraries`` (libusb/libftdi missing):
  :class:`SystemLibraryMissing`, 5 — unless Linux shows that no board is attached either,
  then :class:`BoardNotFound` that also names the missing library;
* no openFPGALoader at all: :class:`ToolNotFound`, 5;
* anything else, or "CDONE FAIL" after writing: :class:`ProgrammingFailed`, 3.
"""

import logging
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeforge.firmware.config import SystemConfig

from .build import BuildResult, build
from .errors import (
    BitstreamMissing,
    BoardError,
    BoardNotFound,
    DeviceBusy,
    DevicePermissionDenied,
    ProgrammingFailed,
    SystemLibraryMissing,
    ToolNotFound,
)
from .registry import Board, get_board
from .toolchain import find_programmer

__all__ = ["flash", "program", "translate_failure", "scan_usb", "UsbScan", "UDEV_RULES"]

logger = logging.getLogger(__name__)

#: The udev rules file shipped with spikeforge (Linux USB permissions).
UDEV_RULES = Path(__file__).parent / "udev" / "99-spikeforge.rules"
#: How long programming may take (flash erase and write of an iCE40 image: seconds).
PROGRAM_TIMEOUT_S = 300


@dataclass(frozen=True)
class UsbScan:
    """What the operating system (Linux sysfs) shows of a board's USB device."""

    bus_present: bool  #: the machine has a USB bus at all (not so in many containers)
    attached: bool     #: a device with the board's VID:PID (and serial, if given) is there


def scan_usb(board: Board, ftdi_serial: str | None = None, *,
             sysfs: Path = Path("/sys")) -> UsbScan | None:
    """Look for the board's programmer in Linux sysfs; None where that cannot tell.

    Only used to explain a failure better: openFPGALoader always runs, and this says
    whether the board is attached when openFPGALoader cannot start at all.
    """
    if not sys.platform.startswith("linux") or not (sysfs / "bus").is_dir():
        return None
    devices = sysfs / "bus" / "usb" / "devices"
    if not devices.is_dir():
        return UsbScan(bus_present=False, attached=False)

    def read(path: Path) -> str:
        try:
            return path.read_text().strip().lower()
        except OSError:
            return ""

    for device in devices.iterdir():
        if (read(device / "idVendor") == f"{board.usb_vid:04x}"
                and read(device / "idProduct") == f"{board.usb_pid:04x}"
                and (not ftdi_serial or read(device / "serial") == ftdi_serial.lower())):
            return UsbScan(bus_present=True, attached=True)
    return UsbScan(bus_present=True, attached=False)


def flash(board: str, config: SystemConfig, *, build_dir: Path = Path("build"),
          ftdi_serial: str | None = None,
          system: Callable[[SystemConfig], Any] | None = None) -> BuildResult:
    """Build (or reuse) the bitstream for ``config`` and program it into ``board``.

    ``ftdi_serial`` picks one board when several are attached (see
    ``openFPGALoader --scan-usb``). Returns the build result; raises a
    :class:`~spikeforge.boards.errors.BoardError` subclass with an ``exit_code``.
    """
    result = build(board, config, build_dir, system=system)
    program(board, result.bitstream, ftdi_serial=ftdi_serial)
    return result


def program(board: str, bitstream: Path, *, ftdi_serial: str | None = None) -> str:
    """Write ``bitstream`` into ``board`` with openFPGALoader; returns its output."""
    spec = get_board(board)
    bitstream = Path(bitstream).resolve()
    if not bitstream.is_file():
        raise BitstreamMissing(
            f"bitstream {bitstream} does not exist; build it first "
            f"(spikeforge.boards.build.build, or `spikeforge flash --board {spec.name}`)")
    try:
        programmer = find_programmer()
    except ToolNotFound as exc:
        raise ToolNotFound(f"{exc}. {_later(spec, bitstream)}") from exc
    command = [programmer, *spec.programmer_args]
    if ftdi_serial:
        command += ["--ftdi-serial", ftdi_serial]
    command.append(str(bitstream))
    usb = scan_usb(spec, ftdi_serial)
    logger.info("programming %s: %s", spec.title, " ".join(command))
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", timeout=PROGRAM_TIMEOUT_S)
    except FileNotFoundError as exc:
        raise ToolNotFound(f"openFPGALoader could not be started ({exc}). "
                           f"{_later(spec, bitstream)}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProgrammingFailed(
            f"openFPGALoader did not finish within {PROGRAM_TIMEOUT_S} s; unplug and replug "
            f"the {spec.title} and retry. {_later(spec, bitstream)}",
            bitstream=bitstream, output=_text(exc.output),
        ) from exc
    error = translate_failure(spec, done.returncode, done.stdout, bitstream=bitstream,
                              ftdi_serial=ftdi_serial, programmer=programmer, usb=usb)
    if error is not None:
        raise error
    logger.info("programmed %s", spec.title)
    return done.stdout


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def _later(board: Board, bitstream: Path) -> str:
    return (f"The bitstream is built: {bitstream}\n(flashing again reuses it; or program it "
            f"by hand: openFPGALoader {' '.join(board.programmer_args)} {bitstream})")


def _quote_output(output: str, lines: int = 12) -> str:
    kept = [line for line in output.strip().splitlines() if line.strip() != "empty"]
    return "\n".join("  | " + line for line in kept[-lines:])


def _permission_fix(board: Board) -> str:
    if sys.platform.startswith("linux"):
        return (
            f"install spikeforge's udev rule, then unplug and replug the {board.title}:\n"
            f"    sudo install -m 644 {UDEV_RULES} /etc/udev/rules.d/\n"
            f"    sudo udevadm control --reload-rules && sudo udevadm trigger\n"
            f"(the rule grants access to the logged-in user and the plugdev group; to join "
            f"it: sudo usermod -aG plugdev $USER, then log out and in)"
        )
    if sys.platform == "win32":
        return (f"install the WinUSB driver for interface 0 of the {board.usb_chip} "
                f"({board.usb_id}) with Zadig")
    return "check that no other program or driver holds the device"


_FTDI_OPEN = re.compile(r"unable to open ftdi device:\s*(-?\d+)")
_MISSING_LIBRARY = re.compile(
    r"error while loading shared libraries:\s*(\S+?):|Library not loaded:\s*(\S+)")


def _install_libraries(library: str) -> str:
    return (
        f"the system library {library} is missing (it needs libusb and libftdi); "
        f"install them: Debian/Ubuntu `sudo apt install libusb-1.0-0 libftdi1-2`, "
        f"Fedora `sudo dnf install libusb1 libftdi`, Arch `sudo pacman -S libusb libftdi`, "
        f"macOS `brew install libusb libftdi`"
    )


def translate_failure(board: Board, returncode: int, output: str, *, bitstream: Path,
                      ftdi_serial: str | None = None, programmer: str = "openFPGALoader",
                      usb: UsbScan | None = None) -> BoardError | None:
    """The project exception for an openFPGALoader run, or None if it succeeded.

    ``output`` is its stdout and stderr together; ``usb`` is :func:`scan_usb`'s view, used
    where openFPGALoader's own output cannot tell whether the board is attached.
    """
    quoted = _quote_output(output)
    said = f"openFPGALoader said:\n{quoted}" if quoted else "openFPGALoader printed nothing"
    later = _later(board, bitstream)
    which = f"{board.usb_chip}, USB ID {board.usb_id}"
    if ftdi_serial:
        which += f", serial {ftdi_serial!r}"

    def device_error(cls: type, message: str) -> BoardError:
        return cls(f"{message}\n{later}\n{said}", bitstream=bitstream, output=output)

    def not_found(extra: str = "") -> BoardError:
        if usb is not None and not usb.bus_present:
            hint = ("This computer shows no USB bus at all: is this a container or virtual "
                    "machine without USB pass-through? Flash from the host instead.")
        elif ftdi_serial:
            hint = (f"Is the serial right? `{programmer} --scan-usb` lists the attached "
                    f"probes and their serials.")
        else:
            hint = (f"Is it plugged in, with a data (not charge-only) cable? "
                    f"`lsusb -d {board.usb_id}` lists it when the computer sees it.")
        return device_error(
            BoardNotFound, f"no {board.title} found on USB (looked for the {which}). {hint}{extra}")

    missing = _MISSING_LIBRARY.search(output)
    if missing:
        library = missing.group(1) or missing.group(2)
        if usb is not None and not usb.attached:
            return not_found(f"\nAlso, openFPGALoader cannot start on this machine: "
                             f"{_install_libraries(library)}.")
        return SystemLibraryMissing(
            f"openFPGALoader ({programmer}) cannot start: {_install_libraries(library)}.\n"
            f"{later}\n{said}"
        )
    if returncode == 127 and re.search(r"not found|No such file", output):
        return ToolNotFound(f"openFPGALoader ({programmer}) could not be run.\n{later}\n{said}")

    match = _FTDI_OPEN.search(output)
    code = int(match.group(1)) if match else None
    if code == -3 or re.search(r"No cable found|device not found|No DFU compatible device",
                               output):
        return not_found()
    if code == -4 or re.search(r"LIBUSB_ERROR_ACCESS|[Pp]ermission denied|"
                               r"(?:lib)?usb_open\(\) failed", output):
        return device_error(
            DevicePermissionDenied,
            f"the {board.title} is attached ({which}) but this user may not open it; "
            f"{_permission_fix(board)}",
        )
    if code == -5 or re.search(r"unable to claim|LIBUSB_ERROR_BUSY", output):
        return device_error(
            DeviceBusy,
            f"the {board.title} ({which}) is in use by another program (another "
            f"openFPGALoader or iceprog, a JTAG server); close it and retry",
        )
    if returncode != 0:
        return device_error(
            ProgrammingFailed,
            f"programming the {board.title} failed (openFPGALoader exit status "
            f"{returncode}); unplug and replug the board and retry",
        )
    if re.search(r"CDONE\s*FAIL", output):
        return device_error(
            ProgrammingFailed,
            f"the bitstream was written but the {board.title}'s FPGA did not start (CDONE "
            f"stayed low); check the board's jumpers and power, then retry",
        )
    return None
