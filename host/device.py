"""A spikeforge device on a serial port or any pyserial URL.

``Device.open("/dev/ttyUSB1")``, ``Device.open("socket://localhost:7777")``,
``Device.open("loop://")``: the same API whatever carries the bytes. The device announces
its configuration in IDENTITY frames, so :meth:`Device.identify` needs no guessing; only
the baud rate must be known to open a real serial port (the board's default is used).

Control: :meth:`Device.read_register` / :meth:`Device.write_register` send COMMAND frames
(:mod:`spikeforge.firmware.wire`) and wait for the REPLY among the streamed frames; a lost,
corrupt or late reply is retried with the same tag, which the device recognises (it re-sends
its stored reply instead of carrying the command out again). :meth:`configure`,
:meth:`start`, :meth:`stop`, :meth:`status` and :meth:`chips` are built on them.

Channel mask: DATA frames carry only the channels the device's mask enables.
:meth:`identify` learns the reset mask from the identity frame; :meth:`read_channel_mask`
reads the mask in force from the registers, and ``configure(channels=[...])`` changes it
(only while the stream is stopped; see :meth:`set_channel_mask`). Either way the decoder
follows, so :class:`DataBlock` names its channels.

Authenticated control (keyed builds, ``SystemConfig.control_key``): give the device's key
(``Device.open(url, key=load_key("lab-board"))``, :mod:`.keys`) and every write is signed
with it and a fresh counter from the key's counter file; retries resend the same signed
frame. A device that refuses a counter as a replay (its AUTH_COUNTER is ahead, e.g. after
another host wrote) is caught up with once: the counter file is raised above AUTH_COUNTER
and the write is signed again. Reads are never signed (they stay open).

Encrypted stream (``SystemConfig.stream_cipher`` builds): :meth:`identify` asks the device
whether it seals its stream (a read of ``CIPHER_FRAMES_WITHHELD``, a register only cipher
builds have; asked by ``identify`` when a key is given, else before the first
``start``/``supports_control``). If it does, a Device opened with the key picks a random
56-bit session (``secrets.randbits(56)``), keeps it next to the key file (``NAME.session``)
before writing ``CIPHER_SESSION_LO`` then ``CIPHER_SESSION_HI`` (signed writes), and decodes
the stream through a :class:`~spikeforge.host.cipher.FrameOpener`: all after it is plain.
A session already in force (set earlier in this boot) is adopted only if it is the one this
host chose last for the device; any other is refused (reset the device). Without the key,
:meth:`open_stream_cipher` raises :class:`CipherKeyMissing` (naming ``--key``).

Codebook (``codec.codebook`` builds): :meth:`load_codebook` writes the coder's value table
over the control path, verifies it, and hands the same table to this Device's decoder, so
COMPRESSED frames decode with the table the device codes with. Value grid (``codec_v2.grid``
builds): :meth:`load_grid` likewise writes the v2 coder's grid and decodes with it,
:meth:`load_code_weights` its code weights (``codec_v2.code_weights`` builds), and
:meth:`load_prior` its restart prior (``codec_v2.restart_prior`` builds);
:meth:`switch_to_lossless` then writes the mode (the framer keeps sending raw frames until its
first coded block, so no sweep falls between them).
"""

import errno
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import serial
import serial.tools.list_ports

from spikeforge.firmware.compression import Codebook, codebook_entry_word
from spikeforge.firmware.compression_v2 import ValueGrid, prior_words, weight_pair_words
from spikeforge.firmware.config import SystemConfig, format_channels
from spikeforge.firmware.errors import ConfigError, SpikeforgeError
from spikeforge.firmware.registers import REGISTERS, Register, register
from spikeforge.firmware.rhd2000 import CHIPS, ChipKind
from spikeforge.firmware.stream_cipher import SESSION_BITS
from spikeforge.firmware.wire import (
    MIN_RX_DIVISOR,
    MODE_NAMES,
    BandwidthMode,
    CommandOp,
    Reply,
    ReplyStatus,
    encode_authenticated_command,
    encode_command,
    has_control_path,
    mode_unavailable_reason,
)

from .errors import (
    DeviceBusy,
    DeviceDisconnected,
    DeviceError,
    DeviceNoControl,
    DeviceNotFound,
    DevicePermissionDenied,
    DeviceSilent,
    RegisterRefused,
)
from .frames import DataBlock, Identity, LinkStats, StreamDecoder, StreamItem
from .keys import DeviceKey

if TYPE_CHECKING:
    from .cipher import FrameOpener
    from .compression_v2_stream import V2SegmentDecoder
    from .udp import UdpLinkStats

__all__ = ["Device", "DeviceError", "DeviceNotFound", "DevicePermissionDenied", "DeviceBusy",
           "DeviceSilent", "DeviceDisconnected", "DeviceNoControl", "RegisterRefused",
           "DeviceStatus", "ChipFound", "CipherKeyMissing", "CipherSessionRefused",
           "set_ftdi_latency_timer", "FTDI_LATENCY_TIMER_MS"]

DEFAULT_BAUD = SystemConfig().baud


class CipherKeyMissing(DeviceError):
    """The device encrypts its stream and no key was given to decrypt it."""


class CipherSessionRefused(DeviceError):
    """The device's stream session was not set by this host: it does not stream under it."""


@dataclass(frozen=True)
class ChipFound:
    """An RHD2000 chip the device found at start-up on MISO line ``line``."""

    line: int
    kind: str           #: "RHD2132", "RHD2164", "RHD2216"
    amplifiers: int
    miso_delay: int     #: the sampling delay the start-up calibration chose, in cycles


@dataclass(frozen=True)
class DeviceStatus:
    """What :meth:`Device.status` reads: the device's status registers by name (frames
    sent/dropped, overruns, events, command counters, ...) and the host's link counters."""

    registers: dict[str, int]
    link: LinkStats
    #: The bandwidth mode in force ("raw", "lossless", "events", "events+lfp").
    mode: str | None = None
    #: The host receiver's UDP counters (a ``udp://`` device; None otherwise).
    udp: "UdpLinkStats | None" = None

    def lines(self) -> list[str]:
        from spikeforge.firmware.registers import register

        rows = [f"{'bandwidth mode':<22} {self.mode}"] if self.mode is not None else []
        for name, value in self.registers.items():
            reg = register(name)
            # Narrow device counters wrap (firmware.registers.ERROR_COUNTER_BITS); the host's
            # own sequence-gap count below does not.
            narrow = reg.access == "status" and isinstance(reg.bits, int) and reg.bits < 32
            wraps = f"  (mod {1 << reg.bits})" if narrow else ""
            if name == "ETH_HOST_IP":
                shown = ".".join(str(value >> s & 0xFF) for s in (24, 16, 8, 0)) \
                    if value else "none learned yet"
                rows.append(f"{name.lower():<22} {shown}")
                continue
            rows.append(f"{name.lower():<22} {value}{wraps}")
        link = self.link
        rows += [f"{'host crc_errors':<22} {link.crc_errors}",
                 f"{'host sequence_gaps':<22} {link.sequence_gaps}",
                 *([f"{'host paused_slots':<22} {link.paused_slots}"] if link.paused_slots
                   else []),
                 f"{'host bytes_discarded':<22} {link.bytes_discarded}",
                 f"{'host malformed':<22} {link.malformed}"]
        if self.udp is not None:
            rows += self.udp.lines()
        return rows


def _available_ports() -> str:
    ports = [p.device for p in serial.tools.list_ports.comports()]
    return ", ".join(ports) if ports else "none"


#: How long :meth:`Device.identify` waits for the identity frame once good frames arrive.
IDENTITY_PATIENCE_S = 30.0


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
        # A random start, so a new session never repeats the tag the device remembers.
        self._tag = int.from_bytes(os.urandom(4), "little")
        #: RHD2000 chips found (filled by :meth:`identify` with the RHD source).
        self.chips_found: list[ChipFound] | None = None
        #: The device's control key (:mod:`.keys`); with it, writes are signed.
        self.key: DeviceKey | None = None
        #: Whether the device seals its stream (None: not asked yet; see :meth:`identify`).
        self.stream_cipher: bool | None = None
        #: The stream's session this host set (cipher builds, after :meth:`identify`).
        self.session: int | None = None
        #: The FTDI bridge's latency timer in ms (None: not an FTDI port), and a note when
        #: the host could not lower it (:func:`set_ftdi_latency_timer`).
        self.latency_timer_ms: int | None = None
        self.latency_note: str | None = None
        #: Whether this host stopped the stream (:meth:`stop`) and has not started it since.
        self._stopped_here = False
        #: The device sweep (``SWEEPS``, read while stopped) at which :meth:`start` last
        #: restarted a stream this host had stopped: DATA, COMPRESSED and LFP slots starting
        #: before it belong to the stream before the pause (None: no such restart).
        self.restarted_at_sweep: int | None = None

    @classmethod
    def open(cls, url: str, *, baud: int = DEFAULT_BAUD, timeout_s: float = 0.05,
             key: DeviceKey | None = None) -> "Device":
        """Open ``url`` (a port name or a pyserial URL); translate what can go wrong.
        ``udp://BOARD_IP[:CONTROL_PORT]``: a Gigabit Ethernet board (:mod:`.udp`). ``key``:
        the device's control key (keyed builds), see :mod:`.keys`."""
        if url.startswith("udp://"):
            from .udp import UdpTransport

            transport = UdpTransport.open(url, timeout_s=timeout_s, key=key)
            device = cls(transport, url)  # type: ignore[arg-type]
            device.key = key
            return device
        try:
            port = serial.serial_for_url(url, baudrate=baud, timeout=timeout_s)
        except serial.SerialException as exc:
            raise _translate_open_error(url, exc) from None
        except ValueError as exc:
            raise DeviceNotFound(f"cannot open {url!r}: {exc}") from None
        device = cls(port, url)
        device.key = key
        device.latency_timer_ms, device.latency_note = set_ftdi_latency_timer(url)
        return device

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
            waiting = self._port.in_waiting
            data = self._port.read(max(1, waiting or 4096))
            if waiting == 1 and data and self._port.in_waiting:
                # pyserial's socket:// says 1 for "something is waiting": take the rest
                # without waiting, not one byte per call
                timeout, self._port.timeout = self._port.timeout, 0
                try:
                    data += self._port.read(1 << 16)
                finally:
                    self._port.timeout = timeout
        except (serial.SerialException, OSError) as exc:
            raise DeviceDisconnected(
                f"lost the device on {self.url}: {exc}; is the cable still plugged in?"
            ) from None
        return _Chunk(self._decoder.feed(data), len(data))

    def identify(self, timeout_s: float = 3.0,
                 patience_s: float = IDENTITY_PATIENCE_S) -> SystemConfig:
        """Wait for the device's IDENTITY frame and return its configuration.

        Gives up after ``timeout_s`` unless good frames arrive: a device whose frames check
        sends an identity frame every ``identity_interval_frames`` frames, which on a slow
        link (or a slow simulated board) can take longer, so it is then waited for up to
        ``patience_s`` from the start.

        With the RHD2000 source and a device that answers commands, the chips the device
        found at start-up are read too and kept in :attr:`chips_found` (see :meth:`chips`).
        """
        config = self._wait_identity(timeout_s, patience_s)
        if self.key is not None and has_control_path(config):
            self.open_stream_cipher()
        if config.source == "rhd" and has_control_path(config):
            try:
                self.chips_found = self.chips()
            except DeviceNoControl:
                self.chips_found = None
        return config

    # -- encrypted stream (stream_cipher builds; docs/wire-format.md) -----------------------
    @property
    def opener(self) -> "FrameOpener | None":
        """What opens the sealed frames (None: the stream is not encrypted)."""
        return self._decoder.opener

    def open_stream_cipher(self) -> None:
        """Ask whether the device seals its stream (once); if so, set this boot's session
        and decode through a :class:`FrameOpener` (see the module's docstring). Called by
        :meth:`identify` when a key was given, else by :meth:`supports_control` and
        :meth:`start`; raises :class:`CipherKeyMissing` for a cipher build without a key."""
        if self.stream_cipher is not None:
            return
        probe = register("CIPHER_FRAMES_WITHHELD")
        try:
            reply = self.command(probe.address, CommandOp.READ, timeout_s=0.3, retries=1)
        except DeviceNoControl:
            return       # does not answer: it cannot have the cipher (that needs control)
        self.stream_cipher = reply.status != ReplyStatus.UNKNOWN_REGISTER
        if not self.stream_cipher:
            return
        if self.key is None:
            raise CipherKeyMissing(
                f"the device on {self.url} encrypts its stream (a stream_cipher build): give "
                "its key to decrypt it, --key NAME (Device.open(url, key=load_key(NAME))); "
                "`spikeforge key show NAME` names the key files, `spikeforge key new NAME` "
                "makes one for a new build")
        self.session = self._set_session()

    def _set_session(self) -> int:
        """Write a fresh random session (LO, then HI); return the session in force. The
        opener is in place before HI is written: sealed frames follow that write at once."""
        from .cipher import FrameOpener

        assert self.key is not None
        session = secrets.randbits(SESSION_BITS)
        low, high = session & 0xFFFFFFFF, session >> 32
        previous = _last_session(self.key)
        # Kept before HI is written: a later open in this boot recognises it as its own.
        _store_session(self.key, session)
        self._decoder.opener = FrameOpener(self.key.key, session)
        if self.write_register("CIPHER_SESSION_LO", low) == low \
                and self.write_register("CIPHER_SESSION_HI", high) == high:
            return session
        self._decoder.opener = None
        # Refused: the session was set before in this boot (it is write-protected then).
        in_force = (self.read_register("CIPHER_SESSION_LO")
                    | self.read_register("CIPHER_SESSION_HI") << 32)
        if in_force == previous:
            _store_session(self.key, in_force)
            self._decoder.opener = FrameOpener(self.key.key, in_force)
            return in_force
        raise CipherSessionRefused(
            f"the device on {self.url} already has a stream session ({in_force:#016x}) that "
            f"this host did not choose last for key {self.key.name!r}: another host set it, "
            "or an old session-setting command was replayed. Nothing is recorded under a "
            "session this host did not pick (its nonces may repeat an earlier boot's): "
            "reset the device (power-cycle or reprogram it) and open it again")

    def _wait_identity(self, timeout_s: float, patience_s: float) -> SystemConfig:
        start = time.monotonic()
        deadline = start + timeout_s
        received = 0
        while time.monotonic() < deadline:
            chunk = self._read()
            received += chunk.bytes
            self._pending.extend(chunk.items)
            for item in chunk.items:
                if isinstance(item, Identity):
                    self.config = item.config
                    return item.config
            if self.stats.frames_ok:
                deadline = max(deadline, start + patience_s)
        waited = round(time.monotonic() - start, 1)
        if received == 0:
            raise DeviceSilent(
                f"no data from {self.url} in {waited:g} s; is the board programmed "
                f"(make flash BOARD=...) and streaming, and is this its port? Ports here: "
                f"{_available_ports()}"
            )
        if self.stats.frames_ok:
            raise DeviceSilent(
                f"{self.stats.frames_ok} good frames from {self.url} in {waited:g} s but no "
                f"identity frame; a spikeforge device sends one at least every "
                f"identity_interval_frames frames: is it one, and is it streaming?")
        raise DeviceSilent(
            f"{received} bytes from {self.url} in {waited:g} s but no identity frame "
            f"({self.stats.crc_errors} CRC errors, {self.stats.bytes_discarded} bytes "
            f"unreadable); is the baud rate right? The device sends an identity frame at "
            f"least every identity_interval_frames frames"
        )

    def items(self, *, idle_timeout_s: float = 2.0) -> Iterator[StreamItem]:
        """Everything the device sends, typed, in order. Raises :class:`DeviceSilent` if
        nothing arrives for ``idle_timeout_s`` and :class:`DeviceDisconnected` if the port
        goes away. Frames read by commands sent while iterating (the caller's, between two
        items) come next, in the order they arrived."""
        last_data = time.monotonic()
        while True:
            if self._pending:
                pending, self._pending = self._pending, []
                yield from pending
                last_data = time.monotonic()
                continue
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

    # -- channel mask -------------------------------------------------------------
    @property
    def enabled_channels(self) -> tuple[int, ...] | None:
        """The channels DATA frames carry, as far as the host knows (None before
        :meth:`identify`)."""
        return self._decoder.enabled_channels

    def read_channel_mask(self) -> tuple[int, ...]:
        """Read the channel mask in force from the device (``ENABLED_CHANNELS``,
        ``CHANNEL_MASK_IN_FORCE``) and decode the following DATA frames with it."""
        config = self.config or self.identify()
        enabled = self.read_register("ENABLED_CHANNELS")
        if enabled == config.channels:
            channels = tuple(range(config.channels))
        else:
            words = []
            for index in range(-(-config.channels // 32)):
                self.write_register("CHANNEL_MASK_INDEX", index)
                words.append(self.read_register("CHANNEL_MASK_IN_FORCE"))
            channels = tuple(c for c in range(config.channels) if words[c // 32] >> c % 32 & 1)
            if len(channels) != enabled:
                raise DeviceError(
                    f"the device reports {enabled} enabled channels but its mask words "
                    f"{[hex(w) for w in words]} enable {len(channels)}; was the mask "
                    "changed while reading it? Read it again")
        self._decoder.set_enabled_channels(channels)
        return channels

    def set_channel_mask(self, channels: "list[int] | tuple[int, ...] | range",
                         *, drain_timeout_s: float = 5.0) -> tuple[int, ...]:
        """Make DATA frames carry only ``channels`` (device channel numbers).

        The device takes a new mask only while the stream is stopped (``STREAM_ENABLE`` 0)
        and once the DATA frames it still buffers have gone out, so every frame has one
        mask; until ``drain_timeout_s`` has passed a word the device did not take is written
        again. Each word is checked against ``CHANNEL_MASK_IN_FORCE``; a word the device
        refuses raises :class:`RegisterRefused`. Returns the channels now enabled.
        """
        config = self.config or self.identify()
        try:
            enabled = config.replace(channel_mask=tuple(channels)).enabled_channels
        except SpikeforgeError as exc:
            raise RegisterRefused(f"cannot set the channel mask: {exc}") from None
        new = config.replace(channel_mask=enabled).channel_mask_words
        # Words that enable channels first, so at least one channel is enabled throughout.
        order = sorted(range(len(new)), key=lambda index: new[index] == 0)
        for index in order:
            self._write_mask_word(index, new[index], drain_timeout_s)
        count = self.read_register("ENABLED_CHANNELS")
        if count != len(enabled):
            raise DeviceError(
                f"the device reports {count} enabled channels after the mask "
                f"{format_channels(enabled)} ({len(enabled)}) was written; is another "
                "program writing to the device?")
        self._decoder.set_enabled_channels(enabled)
        return enabled

    def _write_mask_word(self, index: int, word: int, drain_timeout_s: float) -> None:
        self.write_register("CHANNEL_MASK_INDEX", index)
        deadline = time.monotonic() + drain_timeout_s
        while True:
            self.write_register("CHANNEL_MASK", word)
            in_force = self.read_register("CHANNEL_MASK_IN_FORCE")
            if in_force == word:
                return
            if self.read_register("STREAM_ENABLE"):
                raise RegisterRefused(
                    f"the device refused the channel mask (word {index} reads "
                    f"0x{in_force:08x}, not 0x{word:08x}): it is streaming; stop the stream "
                    "first (Device.stop(), or configure(stream=False, channels=...)) and "
                    "start it again afterwards")
            if time.monotonic() > deadline:
                raise RegisterRefused(
                    f"the device refused the channel mask (word {index} reads "
                    f"0x{in_force:08x}, not 0x{word:08x}) for {drain_timeout_s:g} s although "
                    "the stream is stopped: DATA frames are still waiting to go out (is the "
                    "link stalled?), or the mask would leave no channel enabled; at least "
                    "one channel must stay enabled")
            time.sleep(0.02)   # let the device send the DATA frames it still buffers

    def blocks(self, **kwargs: float) -> Iterator[DataBlock]:
        """Only the sample blocks of :meth:`items`."""
        for item in self.items(**kwargs):
            if isinstance(item, DataBlock):
                yield item

    # -- control --------------------------------------------------------------------------------
    def command(self, address: int, op: CommandOp, value: int = 0, *,
                timeout_s: float = 0.5, retries: int = 3) -> Reply:
        """Send one command and return the device's reply, retrying (same tag) on a timeout
        or a reply that does not fit. Frames that arrive meanwhile are kept for
        :meth:`items`. Raises :class:`DeviceNoControl` if no reply comes."""
        if self.config is not None and not has_control_path(self.config):
            raise DeviceNoControl(self._no_control_reason())
        self._tag = (self._tag + 1) & 0xFFFFFFFF
        tag = self._tag
        if self.key is not None and op == CommandOp.WRITE:
            # Signed once: a retry resends this very frame (same tag and counter), which
            # the device answers from its stored reply.
            frame = encode_authenticated_command(tag, address, op, value,
                                                 self.key.next_counter(), self.key.key)
        else:
            frame = encode_command(tag, address, op, value)
        for _ in range(retries + 1):
            self._write(frame)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                reply = None
                for item in self._read().items:
                    if isinstance(item, Reply):
                        if item.tag == tag and item.address == address and reply is None:
                            reply = item
                        continue          # a late reply to an earlier command
                    if isinstance(item, Identity):
                        self.config = item.config
                    self._pending.append(item)
                if reply is not None:
                    return reply
        raise DeviceNoControl(
            f"the device on {self.url} did not answer a command ({retries + 1} tries, "
            f"{timeout_s:g} s each). {self._no_control_reason()}")

    def _no_control_reason(self) -> str:
        config = self.config
        if config is not None and not has_control_path(config):
            return (f"It was built without the control path: {config.clock_hz:,} Hz / "
                    f"{config.baud:,} baud is {config.uart_divisor} clock cycles per bit, and "
                    f"the UART receiver needs at least {MIN_RX_DIVISOR}. Rebuild it with "
                    f"baud <= {config.clock_hz // MIN_RX_DIVISOR:,} (the board default does).")
        return ("Is the bitstream older than the control path (rebuild and flash it), is "
                "something else writing to the port, or is the baud rate wrong?")

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise DeviceDisconnected(
                f"lost the device on {self.url}: {exc}; is the cable still plugged in?"
            ) from None

    def read_register(self, name: str | Register, **kwargs: float) -> int:
        """The value of a register (by name, as in :mod:`spikeforge.firmware.registers`)."""
        reg = name if isinstance(name, Register) else register(name)
        return self._checked(reg, self.command(reg.address, CommandOp.READ, **kwargs))

    def write_register(self, name: str | Register, value: int, **kwargs: float) -> int:
        """Write a register; returns the value the device holds afterwards."""
        reg = name if isinstance(name, Register) else register(name)
        if reg.access != "rw":
            raise RegisterRefused(f"register {reg.name} is {reg.access}, not writable; "
                                  "writable registers: " + ", ".join(
                                      r.name for r in REGISTERS if r.access == "rw"))
        reply = self.command(reg.address, CommandOp.WRITE, value, **kwargs)
        if reply.status == ReplyStatus.REPLAYED and self.key is not None:
            # The device accepted a higher counter than ours (another host, or a lost
            # counter file): catch up once and sign again.
            self.key.raise_counter(self.read_register("AUTH_COUNTER"))
            reply = self.command(reg.address, CommandOp.WRITE, value, **kwargs)
        return self._checked(reg, reply)

    def _checked(self, reg: Register, reply: Reply) -> int:
        if reply.status == ReplyStatus.UNKNOWN_REGISTER:
            raise RegisterRefused(
                f"the device has no register {reg.name} (0x{reg.address:02x}): it was built "
                "without that capability or from an older version; rebuild it, or check "
                "the configuration with identify()")
        if reply.status == ReplyStatus.READ_ONLY:
            raise RegisterRefused(f"the device refused the write: {reg.name} is read-only")
        if reply.status == ReplyStatus.AUTH_REQUIRED:
            raise RegisterRefused(
                f"the device refused the write to {reg.name}: it was built with a control key "
                "and only takes signed writes; open it with its key (Device.open(url, "
                "key=load_key(NAME)), or --key NAME; `spikeforge key show NAME`)")
        if reply.status == ReplyStatus.AUTH_FAILED:
            name = self.key.name if self.key is not None else "?"
            raise RegisterRefused(
                f"the device refused the write to {reg.name}: wrong key (key {name!r} is not "
                "the one it was built with; after `spikeforge key rotate` rebuild the device "
                "with `spikeforge key provision`, or use the old key, NAME.key.old)")
        if reply.status == ReplyStatus.NOT_STORED:
            raise RegisterRefused(
                f"the device refused the write to {reg.name}: it could not store the "
                "command's epoch in its configuration flash (AUTH_EPOCHS: bit 25 set, the "
                "flash did not take the program — is the flash write-protected? — or all "
                "65,536 epochs spent: rotate the key and erase the epoch region, "
                "docs/wire-format.md, \"Epochs\")")
        if reply.status == ReplyStatus.REPLAYED:
            raise RegisterRefused(
                f"the device refused the write to {reg.name} as a replay: its AUTH_COUNTER is "
                "not below the counter sent; check that no other host writes with this key")
        return reply.value

    def supports_control(self, timeout_s: float = 0.3) -> bool:
        """Whether the device answers commands (one quick read of IDENTITY)."""
        if self.config is not None and not has_control_path(self.config):
            return False
        try:
            self.read_register("IDENTITY", timeout_s=timeout_s, retries=1)
        except DeviceNoControl:
            return False
        self.open_stream_cipher()
        return True

    def start(self) -> None:
        """Start streaming DATA frames (``STREAM_ENABLE`` = 1); an encrypted stream's
        session first (:meth:`open_stream_cipher`).

        After a :meth:`stop` of this host the device's sweep counter is read first (into
        :attr:`restarted_at_sweep`): the slots the device skipped while stopped are a pause,
        not lost frames, and the decoder counts them in ``LinkStats.paused_slots``
        (:meth:`StreamDecoder.stream_restarted`), wherever the frames buffered before the stop
        arrive."""
        self.open_stream_cipher()
        if self._stopped_here:
            try:
                at_sweep = self.read_register("SWEEPS")
            except RegisterRefused:
                pass    # a build without the counter: the pause shows as a sequence gap
            else:
                self._decoder.stream_restarted(at_sweep)
                self.restarted_at_sweep = at_sweep
        self.write_register("STREAM_ENABLE", 1)
        self._stopped_here = False

    def stop(self) -> None:
        """Stop streaming DATA frames (``STREAM_ENABLE`` = 0); frames already buffered on
        the device still arrive. Events and replies keep flowing."""
        self.write_register("STREAM_ENABLE", 0)
        self._stopped_here = True

    def mode(self) -> str:
        """The bandwidth mode in force (register ``BANDWIDTH_MODE``), by name. A build that
        has only the raw mode has no such register and is always "raw"."""
        config = self.config or self.identify()
        if not register("BANDWIDTH_MODE").present(config):
            return "raw"
        return _mode_name(self.read_register("BANDWIDTH_MODE"))

    def set_mode(self, mode: str | int) -> None:
        """Switch the bandwidth mode ("raw", "lossless", "events", "events+lfp"; see
        ``docs/wire-format.md``). It takes effect at the device's next frame slot / coder
        block. Raises :class:`RegisterRefused` if the device kept its mode: the read-back
        differs when the build lacks the mode (no coder, no detector, no LFP path)."""
        if isinstance(mode, str):
            if mode not in MODE_NAMES:
                raise RegisterRefused(f"mode must be one of {', '.join(MODE_NAMES)}, "
                                      f"not {mode!r}")
            code = int(MODE_NAMES[mode])
        else:
            code = int(mode)
        config = self.config or self.identify()
        if register("BANDWIDTH_MODE").present(config):
            held = self.write_register("BANDWIDTH_MODE", code)
        else:      # a raw-only build has no mode register: it is raw, and stays raw
            held = BandwidthMode.RAW
        if held != code:
            reason = (mode_unavailable_reason(config, code)
                      or "the device did not say why; BANDWIDTH_MODES lists what it runs")
            raise RegisterRefused(
                f"the device refused bandwidth mode {_mode_name(code)!r} and stays in "
                f"{_mode_name(held)!r}: {reason}")

    # -- codebook (codec.codebook builds; docs/compression.md, "Loading the codebook") -----
    @property
    def codebook(self) -> Codebook | None:
        """The codebook COMPRESSED frames are decoded with (set by :meth:`load_codebook`)."""
        return self._decoder.codebook

    def load_codebook(self, codebook: Codebook, *, refused_timeout_s: float = 2.0) -> None:
        """Load ``codebook`` into the device's coder and decode COMPRESSED frames with it.

        Learns nothing: the table, base, multiplier and shift come from the caller (e.g.
        :func:`~spikeforge.firmware.compression.learn_codebook` on a recording from the
        same ADC). Writes CODEBOOK_BASE, CODEBOOK_MULTIPLIER, CODEBOOK_SHIFT (each read
        back in the reply), then one CODEBOOK_ENTRY per table entry (``2**codebook_bits``,
        zero padded), each verified by reading CODEBOOK_VALUE: two commands per entry.

        The device refuses codebook writes while its bandwidth mode is lossless (and until
        its coder starts the next block after leaving it), so no block on the wire mixes
        two tables: load in another mode, then :meth:`set_mode` ("lossless"). Raises
        :class:`RegisterRefused` in lossless mode, if a write stays refused for
        ``refused_timeout_s``, or if the build has no codebook; :class:`DeviceError` if an
        entry reads back wrong.
        """
        config = self.config or self.identify()
        codec = config.codec
        if not (codec.enabled and codec.codebook):
            raise RegisterRefused(
                "the device's coder has no codebook (it was built with "
                f"codec.enabled={codec.enabled}, codec.codebook={codec.codebook}); rebuild "
                "it with a codebook (codec codebook=True) to load one")
        try:
            table = codebook.table(codec.codebook_bits)
        except SpikeforgeError as exc:
            raise RegisterRefused(f"cannot load the codebook: {exc}") from None
        self._refuse_in_lossless("codebook", "a block must be coded with one table",
                                 "set_mode('lossless')")
        deadline = time.monotonic() + refused_timeout_s
        for name, value in (("CODEBOOK_BASE", codebook.base & 0xFFFF),
                            ("CODEBOOK_MULTIPLIER", codebook.multiplier),
                            ("CODEBOOK_SHIFT", codebook.shift)):
            self._write_codebook(name, value, value, deadline)
        for index, value in enumerate(table):
            self._write_codebook("CODEBOOK_ENTRY", codebook_entry_word(index, int(value)),
                                 index, deadline)
            held = self.read_register("CODEBOOK_VALUE")
            if held != int(value) & 0xFFFF:
                raise DeviceError(
                    f"codebook entry {index} reads back 0x{held:04x} from the device, not the "
                    f"0x{int(value) & 0xFFFF:04x} written; is another program writing to the "
                    "device? Load the codebook again")
        self._decoder.codebook = codebook

    def _refuse_in_lossless(self, what: str, why: str, then: str) -> None:
        """Tables the coder reads are loaded outside lossless mode only (the device refuses
        their writes there): say so before the first write."""
        if self.mode() == "lossless":
            table = what.split("-")[-1]
            raise RegisterRefused(
                f"the device refuses {what} writes in lossless mode ({why}); switch to raw "
                f"first (set_mode('raw')), load the {table}, then {then}")

    def _write_codebook(self, name: str, value: int, expected: int, deadline: float,
                        what: str = "codebook") -> None:
        """Write a codebook (or grid) register until the device takes it (it refuses while a
        lossless block may still be coded) or ``deadline`` passes."""
        while True:
            held = self.write_register(name, value)
            if held == expected:
                return
            if time.monotonic() > deadline:
                raise RegisterRefused(
                    f"the device refused the {what} ({name} holds {held}, not {expected}): "
                    f"it takes {what} writes only outside lossless mode (now "
                    f"{self.mode()!r}) and once its coder has started a block since; switch "
                    "to raw (set_mode('raw')) and load again")
            time.sleep(0.01)

    @property
    def v2(self) -> "V2SegmentDecoder | None":
        """The v2 segment decoder's counters (decoded, lost, undecoded sweeps; None before
        the first v2 COMPRESSED frame)."""
        return self._decoder.v2

    # -- value grid (codec_v2.grid builds; docs/recording.md, "Lossless from a v2 build") --
    @property
    def grid(self) -> ValueGrid | None:
        """The value grid v2 COMPRESSED frames are decoded with (set by :meth:`load_grid`)."""
        return self._decoder.grid

    def load_grid(self, grid: ValueGrid, *, refused_timeout_s: float = 2.0) -> None:
        """Load ``grid`` into the device's v2 coder and decode COMPRESSED frames with it.

        Learns nothing: the grid comes from the caller (e.g.
        :func:`~spikeforge.firmware.compression_v2.learn_grid` on the stream's first raw
        samples, as :class:`~spikeforge.host.recorder.Recorder` does). Writes GRID_BASE
        (18-bit two's complement), GRID_RECIPROCAL, GRID_SHIFT, GRID_CODE_MAX
        (``2**grid.bits - 1``), then one GRID_ENTRY per code (``2**grid.bits``: index in
        bits 0..11, the code's value in bits 12..29, clamped to 18 bits signed: codes
        outside int16 never match a sample). Each write is checked in its reply (the
        register holds what was written); the table has no read-back register.

        The device refuses grid writes while its bandwidth mode is lossless (and until its
        coder starts the next block after leaving it): load in another mode, then
        :meth:`switch_to_lossless`. Raises :class:`RegisterRefused` in lossless mode, if a
        write stays refused for ``refused_timeout_s``, if the build has no value grid, or
        if ``grid`` is wider than the build's table (``codec_v2.grid_bits``).
        """
        config = self.config or self.identify()
        codec = config.codec_v2
        if not (codec.enabled and codec.grid):
            raise RegisterRefused(
                "the device's coder has no value grid (it was built with "
                f"codec_v2.enabled={codec.enabled}, codec_v2.grid={codec.grid}); rebuild it "
                "with codec_v2 grid=True to load one")
        if grid.bits > codec.grid_bits:
            raise RegisterRefused(
                f"cannot load a {grid.bits}-bit value grid: the device's table holds "
                f"{codec.grid_bits}-bit codes (codec_v2.grid_bits); learn the grid with "
                f"learn_grid(samples, max_bits={codec.grid_bits}) or rebuild with wider "
                "grid_bits")
        try:
            reciprocal, shift = grid.reciprocal
        except SpikeforgeError as exc:
            raise RegisterRefused(f"cannot load the value grid: {exc}") from None
        self._refuse_in_lossless("value-grid", "a segment must be coded with one grid",
                                 "switch_to_lossless()")
        deadline = time.monotonic() + refused_timeout_s
        code_max = (1 << grid.bits) - 1
        for name, value in (("GRID_BASE", grid.base & _GRID_VALUE_MASK),
                            ("GRID_RECIPROCAL", reciprocal), ("GRID_SHIFT", shift),
                            ("GRID_CODE_MAX", code_max)):
            self._write_codebook(name, value, value, deadline, what="value grid")
        for index, value in enumerate(grid.table().tolist()):
            word = grid_entry_word(index, value)
            self._write_codebook("GRID_ENTRY", word, word, deadline, what="value grid")
        self._decoder.grid = grid

    # -- code weights (codec_v2.code_weights builds; docs/recording.md, "Code weights") -----
    @property
    def code_weights(self) -> np.ndarray | None:
        """The code weights v2 COMPRESSED frames are decoded with (set by
        :meth:`load_code_weights`; None: unweighted, as WEIGHTS_ON = 0)."""
        return self._decoder.weights

    def load_code_weights(self, weights: np.ndarray | None, grid: ValueGrid, *,
                          refused_timeout_s: float = 2.0) -> None:
        """Load ``weights`` into the device's v2 coder, switch them on, and decode
        COMPRESSED frames with them; ``weights`` None switches them off (WEIGHTS_ON = 0, no
        table written): the coder then codes as a build without code weights.

        Learns nothing: the table (``2**grid.bits`` weights 1..255, one per code of
        ``grid``, the grid loaded with :meth:`load_grid`) comes from the caller, e.g.
        :func:`~spikeforge.firmware.compression_v2.learn_code_weights` on the samples the
        grid was learned from, as :class:`~spikeforge.host.recorder.Recorder` does. Writes
        one WEIGHT_PAIR per two entries of the padded table (:func:`~spikeforge.firmware.
        compression_v2.weight_pair_words`: ``(2**grid.bits + 2 * LITERALS) / 2`` commands),
        then WEIGHTS_ON = 1; each write is checked in its reply (the register holds what was
        written).

        The device refuses weight writes while its bandwidth mode is lossless (and until its
        coder starts the next block after leaving it): load in another mode, then
        :meth:`switch_to_lossless`. Raises :class:`RegisterRefused` in lossless mode, if a
        write stays refused for ``refused_timeout_s`` or if the build has no code weights;
        :class:`ConfigError` (before any write) if ``weights`` is not a table for ``grid``.
        """
        config = self.config or self.identify()
        codec = config.codec_v2
        if not (codec.enabled and codec.code_weights):
            raise RegisterRefused(
                "the device's coder has no code weights (it was built with "
                f"codec_v2.enabled={codec.enabled}, codec_v2.code_weights="
                f"{codec.code_weights}); rebuild it with codec_v2 code_weights=True (and "
                "grid=True) to load them, or record without code weights")
        if grid.bits > codec.grid_bits:
            raise RegisterRefused(
                f"cannot load code weights for a {grid.bits}-bit value grid: the device's "
                f"grid holds {codec.grid_bits}-bit codes (codec_v2.grid_bits); learn the grid "
                f"with learn_grid(samples, max_bits={codec.grid_bits})")
        words = []
        if weights is not None:
            try:
                words = weight_pair_words(weights, 1 << grid.bits)
            except ConfigError as exc:
                raise ConfigError(f"cannot load the code weights: {exc}") from None
        self._refuse_in_lossless("code-weights", "a segment must be coded with one table",
                                 "switch_to_lossless()")
        deadline = time.monotonic() + refused_timeout_s
        for word in words:
            self._write_codebook("WEIGHT_PAIR", word, word, deadline, what="code weights")
        on = int(weights is not None)
        self._write_codebook("WEIGHTS_ON", on, on, deadline, what="code weights")
        self._decoder.weights = None if weights is None else np.array(weights, dtype=np.int64)

    # -- restart prior (codec_v2.restart_prior builds; docs/recording.md, "Restart prior") --
    @property
    def prior(self) -> np.ndarray | None:
        """The restart prior v2 COMPRESSED frames are decoded with (set by
        :meth:`load_prior`; None: the coder's built-in initial tables)."""
        return self._decoder.prior

    def load_prior(self, prior: np.ndarray, *, refused_timeout_s: float = 2.0) -> None:
        """Load ``prior`` into the device's v2 coder, switch it on, and decode COMPRESSED
        frames with it.

        Learns nothing: the prior (``(contexts, SYMBOLS + 1)`` cumulative frequencies at
        CDF_STATE_BITS) comes from the caller, e.g. ``spikeforge learn-prior`` on recordings
        of the same ADC (:func:`~spikeforge.sim.compression_bench.restart_prior_from`).
        Writes PRIOR_ON = 0 (the coder restarts from its initial tables while the rows
        change), one PRIOR_ENTRY per entry (:func:`~spikeforge.firmware.compression_v2.
        prior_words`: ``contexts x PRIOR_ENTRIES`` commands), then PRIOR_ON = 1; each write is
        checked in its reply (the register holds what was written).

        The device refuses prior writes while its bandwidth mode is lossless (and until its
        coder starts the next block after leaving it): load in another mode, then
        :meth:`switch_to_lossless`. Raises :class:`RegisterRefused` in lossless mode, if a
        write stays refused for ``refused_timeout_s`` or if the build has no restart prior;
        :class:`ConfigError` (before any write) if ``prior`` is not a prior for the build's
        coder (its shape or rows).
        """
        config = self.config or self.identify()
        codec = config.codec_v2
        if not (codec.enabled and codec.restart_prior):
            raise RegisterRefused(
                "the device's coder has no restart prior (it was built with "
                f"codec_v2.enabled={codec.enabled}, codec_v2.restart_prior="
                f"{codec.restart_prior}); rebuild it with codec_v2 restart_prior=True to "
                "load one, or record without a prior")
        try:
            words = prior_words(codec, prior)
        except ConfigError as exc:
            raise ConfigError(f"cannot load the restart prior: {exc}") from None
        self._refuse_in_lossless("restart-prior", "a segment must restart from one prior",
                                 "switch_to_lossless()")
        deadline = time.monotonic() + refused_timeout_s
        self._write_codebook("PRIOR_ON", 0, 0, deadline, what="restart prior")
        for word in words:
            self._write_codebook("PRIOR_ENTRY", word, word, deadline, what="restart prior")
        self._write_codebook("PRIOR_ON", 1, 1, deadline, what="restart prior")
        self._decoder.prior = np.array(prior, dtype=np.int64)

    def switch_to_lossless(self) -> None:
        """Switch from raw to lossless so that the stream goes on without a hole.

        A raw DATA slot is decided at its first sample, a v2 block is admitted only from a
        sync block on; a v2 build's framer therefore keeps admitting DATA slots in lossless
        mode until its first block is admitted (``hdl/framer.py``), so a switch at any
        moment leaves no sweep in neither stream. The last raw slot may overlap the first
        coded segment: the recorder keeps those sweeps once."""
        self.set_mode("lossless")

    def configure(self, *, stream: bool | None = None, mode: str | int | None = None,
                  polarity: str | int | None = None,
                  dead_samples: int | None = None, snippet_pre: int | None = None,
                  snippet_post: int | None = None, neo: bool | None = None,
                  threshold_k: float | dict[int, float] | None = None,
                  channels: "list[int] | tuple[int, ...] | range | None" = None,
                  **registers: int) -> None:
        """Set what the register map offers; ``None`` leaves a setting as it is.

        ``mode`` is the bandwidth mode (:meth:`set_mode`, read back and checked).
        ``channels``: the channels DATA frames carry (:meth:`set_channel_mask`). The stream
        must be stopped for it: ``stream=False`` is applied before the mask and
        ``stream=True`` after it, so ``configure(stream=False, channels=[0, 2])`` then
        ``start()`` (or ``stream=True`` in a later call) changes the mask of a running
        device; on a streaming device without ``stream=False`` it raises
        :class:`RegisterRefused` (stop the stream first).

        ``polarity`` is "negative", "positive", "both", "off" or the code; ``threshold_k``
        (in standard deviations, 1/16 steps) is one value for all channels or a
        ``{channel: k}`` mapping. Any other register can be given by name
        (``rhd_miso_delay=0x21``).
        """
        from spikeforge.firmware.detection import POLARITIES

        if mode is not None:
            self.set_mode(mode)
        if stream is False:
            self.stop()
        if channels is not None:
            self.set_channel_mask(channels)
        if polarity is not None:
            if isinstance(polarity, str):
                codes = {"off": 0, **POLARITIES}
                if polarity not in codes:
                    raise RegisterRefused(f"polarity must be one of {', '.join(codes)}, "
                                          f"not {polarity!r}")
                polarity = codes[polarity]
            self.write_register("DETECT_POLARITY", int(polarity))
        for name, value in (("DETECT_DEAD_SAMPLES", dead_samples),
                            ("DETECT_SNIPPET_PRE", snippet_pre),
                            ("DETECT_SNIPPET_POST", snippet_post)):
            if value is not None:
                self.write_register(name, int(value))
        if neo is not None:
            self.write_register("DETECT_NEO", int(neo))
        if threshold_k is not None:
            channels = (self.config.channels if self.config is not None else 0)
            per_channel = (threshold_k if isinstance(threshold_k, dict)
                           else dict.fromkeys(range(channels), threshold_k))
            for channel, k in per_channel.items():
                k16 = round(k * 16)
                if not 0 <= k16 <= 255:
                    raise RegisterRefused(f"threshold k must be 0..15.9 standard deviations, "
                                          f"not {k!r}")
                self.write_register("DETECT_K_CHANNEL", channel)
                self.write_register("DETECT_K", k16)
        for name, value in registers.items():
            self.write_register(name, value)
        if stream is True:
            self.start()

    def status(self) -> DeviceStatus:
        """The device's status registers (counters) and the host's link counters."""
        config = self.config or self.identify()
        if self.key is not None:     # what the identity does not say: the keyed registers
            config = config.replace(control_key=self.key.hex,
                                    stream_cipher=bool(self.stream_cipher))
        values = {r.name: self.read_register(r) for r in REGISTERS
                  if r.access == "status" and r.present(config)}
        try:
            mode = self.mode()
        except RegisterRefused:      # a device from before bandwidth modes
            mode = None
        from dataclasses import replace

        from .udp import udp_stats

        udp = udp_stats(self)
        return DeviceStatus(values, self.stats, mode,
                            None if udp is None else replace(udp))

    def chips(self) -> list[ChipFound]:
        """The RHD2000 chips the device found at start-up (registers ``RHD_CHIPS`` and
        ``RHD_FOUND_DELAYS``); empty if none answered or the calibration has not finished."""
        ids = self.read_register("RHD_CHIPS")
        delays = self.read_register("RHD_FOUND_DELAYS")
        if not delays >> 31:
            return []
        found = []
        for line in range(4):
            code = (ids >> 8 * line) & 0xFF
            if not code:
                continue
            try:
                kind = ChipKind(code).name
            except ValueError:
                raise DeviceError(f"the device reports unknown chip ID {code} on line {line}; "
                                  "update spikeforge on the host") from None
            found.append(ChipFound(line, kind, CHIPS[kind].amplifiers,
                                   (delays >> 4 * line) & 0xF))
        return found


#: A grid value in its 18-bit two's-complement register field.
_GRID_VALUE_BITS = 18
_GRID_VALUE_MASK = (1 << _GRID_VALUE_BITS) - 1


def grid_entry_word(index: int, value: int) -> int:
    """The GRID_ENTRY word storing ``value`` at code ``index``: the index in bits 0..11,
    the value in bits 12..29 (two's complement, clamped to 18 bits signed: a code whose
    value lies outside int16 never matches a sample, clamped or not)."""
    limit = 1 << (_GRID_VALUE_BITS - 1)
    clamped = max(min(int(value), limit - 1), -limit)
    return index | ((clamped & _GRID_VALUE_MASK) << 12)


def _session_path(key: DeviceKey) -> Path:
    return key.path.with_suffix(".session")


def _last_session(key: DeviceKey) -> int | None:
    """The stream session this host last set on the device of ``key`` (None: none)."""
    try:
        return int(_session_path(key).read_text().strip(), 16)
    except (FileNotFoundError, ValueError):
        return None


def _store_session(key: DeviceKey, session: int) -> None:
    """Keep ``session`` next to the key file (mode 0600, atomically, synced)."""
    path = _session_path(key)
    temporary = key.path.with_suffix(".session.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"{session:014x}\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _mode_name(code: int) -> str:
    try:
        return next(name for name, mode in MODE_NAMES.items() if mode == BandwidthMode(code))
    except ValueError:
        return f"mode {code}"


#: The FTDI USB-serial bridge's latency timer the host sets, in ms: the bridge sends what it
#: holds at least this often, so it bounds how long a small EVENTS frame waits in the
#: bridge. Linux defaults it to 16 ms (``docs/recording.md``, "Closed-loop latency").
FTDI_LATENCY_TIMER_MS = 1


def set_ftdi_latency_timer(port: str, *, sys_root: Path = Path("/sys")
                           ) -> tuple[int | None, str | None]:
    """Set the latency timer of the FTDI bridge behind ``port`` (``/dev/ttyUSBn`` on Linux)
    to :data:`FTDI_LATENCY_TIMER_MS`; (the timer in force in ms or None when the port has
    none, a note when it could not be set, saying how)."""
    name = Path(port).name
    timer = sys_root / "bus" / "usb-serial" / "devices" / name / "latency_timer"
    if not name.startswith("ttyUSB") or not timer.is_file():
        return None, None
    try:
        current = int(timer.read_text().strip())
    except (OSError, ValueError):
        return None, None
    if current <= FTDI_LATENCY_TIMER_MS:
        return current, None
    try:
        timer.write_text(f"{FTDI_LATENCY_TIMER_MS}\n")
        return FTDI_LATENCY_TIMER_MS, None
    except OSError:
        return current, (
            f"{port}'s FTDI latency timer is {current} ms (events can wait that long in the "
            f"bridge); set it to {FTDI_LATENCY_TIMER_MS} ms: echo {FTDI_LATENCY_TIMER_MS} | "
            f"sudo tee {timer}, or for good with a udev rule: ACTION==\"add\", "
            'SUBSYSTEM=="usb-serial", DRIVER=="ftdi_sio", ATTR{latency_timer}="1"')


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
