"""A spikeforge device on a serial port or any pyserial URL.

``Device.open("/dev/ttyUSB1")``, ``Device.open("socket://localhost:7777")``,
``Device.open("loop://")``: the same API whatever carries the bytes. The device announces
its configuration in IDENTITY frames, so :meth:`Device.identify` needs no guessing; only
the baud rate must be known to open a real serial port (the board's default is used).

Reading is all this version does: the control path (writing registers from the host)
arrives with the device's UART command decoder.
"""

import errno
import time
from collections.abc import Iterator
from dataclasses import dataclass

import serial
import serial.tools.list_ports

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError

from .frames import DataBlock, Identity, LinkStats, StreamDecoder, StreamItem

__all__ = ["Device", "DeviceError", "DeviceNotFound", "DevicePermissionDenied", "DeviceBusy",
           "DeviceSilent", "DeviceDisconnected"]

DEFAULT_BAUD = SystemConfig().baud


class DeviceError(SpikeforgeError):
    exit_code = 3


class DeviceNotFound(DeviceError):
    pass


class DevicePermissionDenied(DeviceError):
    pass


class DeviceBusy(DeviceError):
    pass


class DeviceSilent(DeviceError):
    pass


class DeviceDisconnected(DeviceError):
    pass


def _available_ports() -> str:
    ports = [p.device for p in serial.tools.list_ports.comports()]
    return ", ".join(ports) if ports else "none"


@dataclass
class _Chunk:
    items: list[StreamItem]
    bytes: int


class Device:
    """A device streaming spikeforge frames. Use :meth:`open`; close with :meth:`close` or
    a ``with`` block."""

    def __init__(self, port: serial.SerialBase, url: str):
        self._port = port
        self.url = url
        self._decoder = StreamDecoder()
        self.config: SystemConfig | None = None
        self._pending: list[StreamItem] = []

    @classmethod
    def open(cls, url: str, *, baud: int = DEFAULT_BAUD, timeout_s: float = 0.05) -> "Device":
        """Open ``url`` (a port name or a pyserial URL); translate what can go wrong."""
        try:
            port = serial.serial_for_url(url, baudrate=baud, timeout=timeout_s)
        except serial.SerialException as exc:
            raise _translate_open_error(url, exc) from None
        except ValueError as exc:
            raise DeviceNotFound(f"cannot open {url!r}: {exc}") from None
        return cls(port, url)

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._port.close()

    @property
    def stats(self) -> LinkStats:
        """Link counters: bytes, CRC errors, sequence gaps (frames lost), malformed frames."""
        return self._decoder.stats

    def _read(self) -> _Chunk:
        try:
            data = self._port.read(max(1, self._port.in_waiting or 4096))
        except (serial.SerialException, OSError) as exc:
            raise DeviceDisconnected(
                f"lost the device on {self.url}: {exc}; is the cable still plugged in?"
            ) from None
        return _Chunk(self._decoder.feed(data), len(data))

    def identify(self, timeout_s: float = 3.0) -> SystemConfig:
        """Wait for the device's IDENTITY frame and return its configuration."""
        deadline = time.monotonic() + timeout_s
        received = 0
        while time.monotonic() < deadline:
            chunk = self._read()
            received += chunk.bytes
            self._pending.extend(chunk.items)
            for item in chunk.items:
                if isinstance(item, Identity):
                    self.config = item.config
                    return item.config
        if received == 0:
            raise DeviceSilent(
                f"no data from {self.url} in {timeout_s:g} s; is the board programmed "
                f"(make flash BOARD=...) and streaming, and is this its port? Ports here: "
                f"{_available_ports()}"
            )
        raise DeviceSilent(
            f"{received} bytes from {self.url} in {timeout_s:g} s but no identity frame "
            f"({self.stats.crc_errors} CRC errors, {self.stats.bytes_discarded} bytes "
            f"unreadable); is the baud rate right? The device sends an identity frame at "
            f"least every identity_interval_frames frames"
        )

    def items(self, *, idle_timeout_s: float = 2.0) -> Iterator[StreamItem]:
        """Everything the device sends, typed, in order. Raises :class:`DeviceSilent` if
        nothing arrives for ``idle_timeout_s`` and :class:`DeviceDisconnected` if the port
        goes away."""
        yield from self._pending
        self._pending.clear()
        last_data = time.monotonic()
        while True:
            chunk = self._read()
            if chunk.bytes:
                last_data = time.monotonic()
            elif time.monotonic() - last_data > idle_timeout_s:
                raise DeviceSilent(
                    f"the device on {self.url} stopped sending for {idle_timeout_s:g} s")
            for item in chunk.items:
                if isinstance(item, Identity):
                    self.config = item.config
                yield item

    def blocks(self, **kwargs: float) -> Iterator[DataBlock]:
        """Only the sample blocks of :meth:`items`."""
        for item in self.items(**kwargs):
            if isinstance(item, DataBlock):
                yield item


def _translate_open_error(url: str, exc: serial.SerialException) -> DeviceError:
    number = getattr(exc, "errno", None)
    text = str(exc)
    if number == errno.ENOENT or "No such file" in text or "could not open port" in text \
            and "FileNotFoundError" in text:
        return DeviceNotFound(
            f"no serial port {url!r}; ports on this computer: {_available_ports()}. "
            "Is the board plugged in?")
    if number == errno.EACCES or "Permission denied" in text:
        return DevicePermissionDenied(
            f"permission denied opening {url}; add yourself to the port's group "
            "(`sudo usermod -aG dialout $USER`, then log in again) or install the udev rule "
            "in boards/udev/99-spikeforge.rules")
    if number == errno.EBUSY or "busy" in text.lower() or "exclusively lock" in text:
        return DeviceBusy(
            f"{url} is busy: another program has it open (a terminal, another recording?); "
            "close it and try again")
    if "Connection refused" in text or number == errno.ECONNREFUSED:
        return DeviceNotFound(
            f"nothing listens at {url}; is the virtual board or bridge running?")
    return DeviceNotFound(f"cannot open {url}: {text}")
