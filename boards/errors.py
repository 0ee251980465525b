"""Errors of the board layer: building, checking and programming bitstreams.

Every class carries an ``exit_code`` so that the CLI and scripts can tell the kinds of
failure apart without parsing messages:

====  ===========================================================================
code  meaning
====  ===========================================================================
2     usage: unknown board, a configuration the board cannot implement, no such file
3     device: no board on USB, no permission to open it, programming failed
4     gateware: synthesis or place-and-route failed, design does not fit or is too slow
5     environment: a tool or a system library is missing
====  ===========================================================================
"""

from pathlib import Path

from spikeforge.firmware.errors import ConfigError, SpikeforgeError

__all__ = [
    "EXIT_USAGE", "EXIT_DEVICE", "EXIT_GATEWARE", "EXIT_ENVIRONMENT",
    "BoardError", "UnknownBoard", "BoardConfigError", "BitstreamMissing",
    "GatewareError", "ToolFailed", "DoesNotFit", "TimingNotMet",
    "EnvironmentProblem", "ToolNotFound", "SystemLibraryMissing",
    "DeviceError", "BoardNotFound", "DevicePermissionDenied", "DeviceBusy", "ProgrammingFailed",
]

EXIT_USAGE = 2
EXIT_DEVICE = 3
EXIT_GATEWARE = 4
EXIT_ENVIRONMENT = 5


class BoardError(SpikeforgeError):
    """Base of the board layer's errors."""

    exit_code: int = 1


class UnknownBoard(BoardError, ValueError):
    """A board name that is not in the registry."""

    exit_code = EXIT_USAGE


class BoardConfigError(ConfigError, BoardError):
    """A valid configuration that this board cannot implement (e.g. another clock)."""

    exit_code = EXIT_USAGE


class BitstreamMissing(BoardError, FileNotFoundError):
    """A bitstream file to program does not exist."""

    exit_code = EXIT_USAGE


# -- gateware ---------------------------------------------------------------------------------


class GatewareError(BoardError):
    """The design could not be turned into a usable bitstream."""

    exit_code = EXIT_GATEWARE


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

    exit_code = EXIT_ENVIRONMENT


class ToolNotFound(EnvironmentProblem):
    """A synthesis, place-and-route or programming tool is not installed or not runnable."""


class SystemLibraryMissing(EnvironmentProblem):
    """A shared library that a tool needs at run time (libusb, libftdi) is not installed."""


# -- device -----------------------------------------------------------------------------------


class DeviceError(BoardError):
    """The board could not be programmed.

    ``bitstream`` is the built file, so that the user can program it later by hand.
    """

    exit_code = EXIT_DEVICE

    def __init__(self, message: str, *, bitstream: Path | None = None, output: str = ""):
        super().__init__(message)
        self.bitstream = bitstream
        self.output = output


class BoardNotFound(DeviceError):
    """No matching USB device is attached."""


class DevicePermissionDenied(DeviceError):
    """The USB device is there but this user may not open it (udev rule missing)."""


class DeviceBusy(DeviceError):
    """The USB device is there but another program or kernel driver holds it."""


class ProgrammingFailed(DeviceError):
    """The programmer opened the device but failed for another reason."""
