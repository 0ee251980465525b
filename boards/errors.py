"""Errors of the board layer: building, checking and programming bitstreams.

Every class carries an ``exit_code`` from :class:`spikeforge.host.errors.ExitCode` (the one
table of exit codes) so that the CLI and scripts can tell the kinds of failure apart
without parsing messages: usage (unknown board, a configuration the board cannot implement,
no such file), device (no board on USB, no permission, busy, programming failed), gateware
(synthesis or place-and-route failed, does not fit, too slow), environment (a tool or a
system library is missing).

The device errors are the host's :class:`~spikeforge.host.errors.DeviceError` family, the
same classes whether a serial port or a USB programmer fails; :class:`BoardNotFound` and
:class:`ProgrammingFailed` are its board-specific members.
"""

from pathlib import Path

from spikeforge.firmware.errors import ConfigError, SpikeforgeError
from spikeforge.host.errors import (
    DeviceBusy,
    DeviceError,
    DeviceNotFound,
    DevicePermissionDenied,
    ExitCode,
)

__all__ = [
    "BoardError", "UnknownBoard", "BoardConfigError", "BitstreamMissing",
    "GatewareError", "ToolFailed", "DoesNotFit", "TimingNotMet",
    "EnvironmentProblem", "ToolNotFound", "SystemLibraryMissing",
    "DeviceError", "BoardNotFound", "DevicePermissionDenied", "DeviceBusy", "ProgrammingFailed",
]


class BoardError(SpikeforgeError):
    """Base of the board layer's errors."""

    exit_code: int = ExitCode.FAILURE


class UnknownBoard(BoardError, ValueError):
    """A board name that is not in the registry."""

    exit_code = ExitCode.USAGE


class BoardConfigError(ConfigError, BoardError):
    """A valid configuration that this board cannot implement (e.g. another clock)."""

    exit_code = ExitCode.USAGE


class BitstreamMissing(BoardError, FileNotFoundError):
    """A bitstream file to program does not exist."""

    exit_code = ExitCode.USAGE


# -- gateware ---------------------------------------------------------------------------------


class GatewareError(BoardError):
    """The design could not be turned into a usable bitstream."""

    exit_code = ExitCode.GATEWARE


class ToolFailed(GatewareError):
    """Yosys, nextpnr or the packer exited with an error.

    ``log`` is the file holding the tools' full output.
    """

    def __init__(self, message: str, *, log: Path | None = None):
        super().__init__(message)
        self.log = log


class DoesNotFit(GatewareError):
    """The design needs more of a resource than the FPGA has.

    ``resource``, ``used``, ``available`` name the worst one; ``utilization`` (resource
    name to ``(used, available)``) is every resource nextpnr reported, when known.
    """

    def __init__(self, message: str, *, resource: str, used: int, available: int,
                 utilization: dict | None = None):
        super().__init__(message)
        self.resource = resource
        self.used = used
        self.available = available
        self.utilization = dict(utilization or {})


class TimingNotMet(GatewareError):
    """Place and route finished, but the design is slower than its clock.

    The bitstream exists (nextpnr's frequency target is advisory), but it would not work
    reliably; ``result`` is the :class:`~spikeforge.boards.build.BuildResult` for inspection.
    """

    def __init__(self, message: str, *, clock: str, achieved_mhz: float, required_mhz: float,
                 result: object = None):
        super().__init__(message)
        self.clock = clock
        self.achieved_mhz = achieved_mhz
        self.required_mhz = required_mhz
        self.result = result


# -- environment ------------------------------------------------------------------------------


class EnvironmentProblem(BoardError):
    """Something the machine lacks: a tool, a library."""

    exit_code = ExitCode.ENVIRONMENT


class ToolNotFound(EnvironmentProblem):
    """A synthesis, place-and-route or programming tool is not installed or not runnable."""


class SystemLibraryMissing(EnvironmentProblem):
    """A shared library that a tool needs at run time (libusb, libftdi) is not installed."""


# -- device: the host's DeviceError family (spikeforge.host.errors) ----------------------------


class BoardNotFound(DeviceNotFound, BoardError):
    """No matching USB device is attached."""


class ProgrammingFailed(DeviceError, BoardError):
    """The programmer opened the device but failed for another reason."""
