"""The exit codes of every spikeforge error, and the device errors the host and the boards share.

:class:`ExitCode` is the one table of exit codes: every :class:`SpikeforgeError` subclass
that means something more specific than "failed" sets ``exit_code`` to one of its members,
and the CLI exits with it (:func:`exit_code_of`), so scripts can tell the kinds of failure
apart without parsing messages. ``docs/architecture.md`` ("Errors and exit codes") shows the
same table.

:class:`DeviceError` and its subclasses are one family for everything that talks to a
device: the host driver opening a serial port or URL (:mod:`spikeforge.host.device`) and
the board layer programming a board over USB (:mod:`spikeforge.boards.errors`). This module
imports neither ``boards/`` nor Amaranth, so the host can use it on a lab PC without the HDL
toolchain.
"""

import enum
from pathlib import Path

from spikeforge.firmware.errors import ConfigError, SpikeforgeError

__all__ = ["ExitCode", "exit_code_of",
           "DeviceError", "DeviceNotFound", "DevicePermissionDenied", "DeviceBusy",
           "DeviceSilent", "DeviceDisconnected", "DeviceRestarted", "DeviceNoControl",
           "RegisterRefused"]


class ExitCode(enum.IntEnum):
    """What a ``spikeforge`` command's exit status means."""

    OK = 0
    #: Any other failure: a bench failed, an error with no more specific code.
    FAILURE = 1
    #: Usage: a bad option, an unknown board, a configuration the board cannot implement,
    #: a missing or malformed input file, a mode the device's build lacks.
    USAGE = 2
    #: Device: no board or port, no permission, busy, silent, disconnected, a command
    #: refused, programming failed.
    DEVICE = 3
    #: Gateware: synthesis or place-and-route failed, the design does not fit or is too
    #: slow, the virtual board did not build or start.
    GATEWARE = 4
    #: Environment: a tool, a system library or an optional Python package is missing.
    ENVIRONMENT = 5
    #: The disk filled during a recording (what was written is kept and readable).
    DISK_FULL = 6
    #: Ctrl-C.
    INTERRUPTED = 130


def exit_code_of(error: BaseException) -> int:
    """The exit status for ``error``: its ``exit_code``; else :attr:`ExitCode.USAGE` for a
    :class:`ConfigError` (a configuration that cannot be built is a bad input; ``firmware/``
    cannot name this table), else :attr:`ExitCode.FAILURE`."""
    code = getattr(error, "exit_code", None)
    if code is None:
        code = ExitCode.USAGE if isinstance(error, ConfigError) else ExitCode.FAILURE
    return int(code)


class DeviceError(SpikeforgeError):
    """A device could not be reached, controlled or programmed.

    ``output`` is what the tool or the driver said, when known. ``bitstream`` is the built
    file when programming failed, so that the user can program it later by hand.
    """

    exit_code = ExitCode.DEVICE

    def __init__(self, message: str, *, bitstream: Path | None = None, output: str = ""):
        super().__init__(message)
        self.bitstream = bitstream
        self.output = output


class DeviceNotFound(DeviceError):
    """Nothing at the place named: no serial port, nothing listening at a URL, no USB ID."""


class DevicePermissionDenied(DeviceError):
    """The device is there but this user may not open it (a udev rule or group missing)."""


class DeviceBusy(DeviceError):
    """The device is there but another program or a kernel driver holds it."""


class DeviceSilent(DeviceError):
    """The port is open but the device sends nothing."""


class DeviceDisconnected(DeviceError):
    """The device went away while in use (unplugged, the connection closed)."""


class DeviceRestarted(DeviceError):
    """The device's sample numbers went back mid-stream: it was reset or rebuilt."""


class DeviceNoControl(DeviceError):
    """The device streams but does not answer commands."""


class RegisterRefused(DeviceError):
    """The device answered a command with an error status."""
