"""The host side of the Gigabit Ethernet link: a UDP transport that :class:`Device` reads
like a serial port.

``Device.open("udp://192.168.1.50")`` (or ``udp://HOST:CONTROL_PORT``, default
:data:`~spikeforge.firmware.ethernet.CONTROL_PORT`) opens a :class:`UdpTransport`; the rest
of :class:`~spikeforge.host.device.Device` is unchanged.

The seam: the subset of pyserial's ``SerialBase`` that ``Device`` uses — ``read(size)``,
``write(data)``, ``flush()``, ``close()``, ``in_waiting``, ``timeout``, ``is_open`` — with one
difference that suits datagrams: :meth:`UdpTransport.read` returns *whole* datagrams (one
wire frame each, :mod:`spikeforge.firmware.ethernet`), concatenated, never a part of one;
``size`` is not a bound. The frame parser then sees exactly the byte stream a UART would
carry, so loss accounting (sequence gaps) is the same on both links.

What the socket does (and why):

* One unconnected UDP socket on an ephemeral port. Commands go to the board's control port
  with ``sendto``; the board learns this host (address and this port) from the first valid
  command and sends both its data (from ``DATA_PORT``) and its replies (from
  ``CONTROL_PORT``) here. A *connected* socket would filter out the data datagrams (their
  source port differs), so datagrams are filtered by the board's IP instead; others are
  counted in :attr:`UdpLinkStats.foreign_datagrams` and dropped.
* Opening sends one harmless command (read ``IDENTITY``) so the board learns the host and
  starts sending; no answer within ``reply_timeout_s`` (three tries) is a one-line
  :class:`DeviceSilent`, an ICMP port unreachable a one-line :class:`DeviceNotFound`. A
  board built with a control key learns its host only from a command whose tag and
  counter check (docs/wire-format.md, "Over UDP"): given the device's key
  (``Device.open(url, key=...)``, ``--key NAME``) that read is signed, with a fresh
  counter; without it such a board answers nothing, and the message says to give the key.
* ``SO_RCVBUF`` asked as large as :data:`RECEIVE_BUFFER_BYTES` (64 MiB); the OS caps it
  (Linux: ``net.core.rmem_max``, which a process with ``CAP_NET_ADMIN`` passes with
  ``SO_RCVBUFFORCE``, tried first). What was granted is in
  :attr:`UdpLinkStats.receive_buffer_bytes`; below :data:`SMALL_RECEIVE_BUFFER_BYTES` a
  warning says how to raise the cap.
* No Python work per byte: ``recvmsg_into`` fills a preallocated buffer, datagram after
  datagram, until the socket is empty or the batch is full; the bytes are handed on as one
  block. On Linux ``SO_RXQ_OVFL`` makes the kernel report in each datagram's ancillary data
  how many datagrams it dropped on this socket because the buffer was full
  (:attr:`UdpLinkStats.kernel_drops`); elsewhere sequence gaps still count every loss.
  ``IP_RECVERR`` (Linux) lets an ICMP error on this unconnected socket surface as
  ``ECONNREFUSED`` / ``EHOSTUNREACH``.
* A receive thread (``threaded=True``, what :meth:`UdpTransport.open` does) empties the
  socket into memory while the caller is busy — a recorder blocked writing or syncing its
  files to a slow disk for a second no longer stops the draining. The queue is bounded
  (:data:`MAX_QUEUE_BYTES`); what does not fit is dropped whole and counted in
  :attr:`UdpLinkStats.host_queue_drops` (and shows as sequence gaps, like any loss).
* A board that stops sending (cable pulled, board reset) makes :meth:`read` return nothing;
  ``Device.items`` ends with the serial path's "stopped sending" :class:`DeviceSilent`.
"""

import errno
import logging
import os
import queue
import selectors
import socket
import sys
import threading
import urllib.parse
from dataclasses import asdict, dataclass, replace
from typing import Any

from spikeforge.firmware.control_protocol import encode_authenticated_command
from spikeforge.firmware.ethernet import CONTROL_PORT, DATA_PORT
from spikeforge.firmware.registers import register
from spikeforge.firmware.wire import CommandOp, encode_command

from .device import DeviceDisconnected, DeviceError, DeviceNotFound, DeviceSilent
from .keys import DeviceKey

__all__ = ["UdpTransport", "UdpLinkStats", "parse_udp_url", "udp_stats", "link_record",
           "RECEIVE_BUFFER_BYTES", "MAX_QUEUE_BYTES", "SMALL_RECEIVE_BUFFER_BYTES",
           "MAX_DATAGRAM_BYTES"]

log = logging.getLogger(__name__)

#: What the receiver asks for as its socket receive buffer (the OS may grant less).
RECEIVE_BUFFER_BYTES = 64 * 2**20
#: Below this granted size a warning is given: 4 MiB is ~65 ms of 1024 raw channels.
SMALL_RECEIVE_BUFFER_BYTES = 4 * 2**20
#: The largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP).
MAX_DATAGRAM_BYTES = 65507
#: Bytes collected per read at most (whole datagrams).
BATCH_BYTES = 4 * 2**20
#: Datagrams held in memory by the receive thread at most, in bytes (~5 s of 1024 channels).
MAX_QUEUE_BYTES = 256 * 2**20
#: Tries of the opening command before the board counts as not answering.
OPEN_TRIES = 3

# Linux socket options Python does not name (values from <asm-generic/socket.h>, <linux/in.h>).
_SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_LINUX = sys.platform.startswith("linux")
_FIREWALL_HINT = (f"check the firewall allows UDP {DATA_PORT}-{CONTROL_PORT} in")


@dataclass
class UdpLinkStats:
    """Counters of the UDP socket (the frame-level ones are in ``Device.stats``)."""

    datagrams: int = 0            #: datagrams received from the board
    bytes: int = 0                #: their bytes (UDP payload)
    #: datagrams the kernel dropped for a full receive buffer (Linux, SO_RXQ_OVFL; else 0)
    kernel_drops: int = 0
    foreign_datagrams: int = 0    #: datagrams from another address, dropped
    truncated: int = 0            #: datagrams larger than MAX_DATAGRAM_BYTES (cut, dropped)
    #: datagrams the receive thread dropped because MAX_QUEUE_BYTES were waiting
    host_queue_drops: int = 0
    queue_peak_bytes: int = 0     #: most bytes waiting in the receive thread's queue
    receive_buffer_bytes: int = 0  #: SO_RCVBUF as granted by the OS
    kernel_drop_counter: bool = False  #: whether kernel_drops is reported (SO_RXQ_OVFL)

    @property
    def drops(self) -> int:
        """Datagrams from the board lost on this host: the kernel's and the queue's."""
        return self.kernel_drops + self.host_queue_drops

    def lines(self) -> list[str]:
        """The counters as ``spikeforge status`` prints them (name, value)."""
        kernel = (str(self.kernel_drops) if self.kernel_drop_counter
                  else "not reported by this OS (sequence gaps count every loss)")
        return [f"{'host udp datagrams':<22} {self.datagrams} ({self.bytes} bytes)",
                f"{'host udp kernel_drops':<22} {kernel}",
                f"{'host udp queue_drops':<22} {self.host_queue_drops}",
                f"{'host udp foreign':<22} {self.foreign_datagrams}",
                f"{'host udp truncated':<22} {self.truncated}",
                f"{'host udp receive_buf':<22} {self.receive_buffer_bytes // 1024} KiB "
                "granted"]


def parse_udp_url(url: str) -> tuple[str, int]:
    """``udp://HOST[:PORT]`` -> (IPv4 address, control port). Raises :class:`DeviceNotFound`
    with the form expected."""
    form = "udp://BOARD_IP[:CONTROL_PORT], e.g. udp://192.168.1.50 or udp://127.0.0.1:5131"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "udp" or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise DeviceNotFound(f"a UDP device URL must read {form}, not {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise DeviceNotFound(f"the port in {url!r} must be 1..65535 ({form})") from None
    host = parts.hostname
    if not host:
        raise DeviceNotFound(f"no board address in {url!r}; a UDP device URL must read {form}")
    if port == 0:
        raise DeviceNotFound(f"the port in {url!r} must be 1..65535 ({form})")
    try:
        address = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except (socket.gaierror, UnicodeError) as exc:
        raise DeviceNotFound(f"cannot resolve the board address {host!r} in {url!r}: "
                             f"{exc}; give its IPv4 address ({form})") from None
    return address, CONTROL_PORT if port is None else port


class UdpTransport:
    """A UDP socket talking to one board, with the read/write interface ``Device`` uses
    (see the module docstring). Use :meth:`open`."""

    def __init__(self, address: str, control_port: int, *, timeout: float = 0.05,
                 receive_buffer_bytes: int = RECEIVE_BUFFER_BYTES,
                 batch_bytes: int = BATCH_BYTES, max_queue_bytes: int = MAX_QUEUE_BYTES) -> None:
        self.address = address
        self.control_port = control_port
        self.timeout = timeout
        self.stats = UdpLinkStats()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._size_receive_buffer(receive_buffer_bytes)
        self.stats.receive_buffer_bytes = self._sock.getsockopt(socket.SOL_SOCKET,
                                                                socket.SO_RCVBUF)
        self._ancillary_bytes = 0
        if _LINUX:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, _SO_RXQ_OVFL, 1)
                self._ancillary_bytes = socket.CMSG_SPACE(4)
                self.stats.kernel_drop_counter = True
            except OSError:
                pass
            try:
                self._sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            except OSError:
                pass
        self._sock.bind(("0.0.0.0", 0))
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        # A batch holds whole datagrams: room for at least one of the largest.
        self._batch_bytes = max(batch_bytes, MAX_DATAGRAM_BYTES + 1)
        self._view = memoryview(bytearray(self._batch_bytes))
        self._pending = bytearray()
        self.is_open = True
        # -- the receive thread (start_thread) --
        self.max_queue_bytes = max_queue_bytes
        self._queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._queued_bytes = 0
        self._queue_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._failure: DeviceError | None = None
        self._announced = False

    def _size_receive_buffer(self, wanted: int) -> None:
        # SO_RCVBUFFORCE passes net.core.rmem_max, for a process allowed to (CAP_NET_ADMIN);
        # anyone else gets SO_RCVBUF, capped at rmem_max.
        force = getattr(socket, "SO_RCVBUFFORCE", 33 if _LINUX else None)
        for option in (force, socket.SO_RCVBUF):
            if option is None:
                continue
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, option, wanted)
            except OSError:
                continue    # not allowed: try the next, else keep the default
            if self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= wanted:
                break

    @classmethod
    def open(cls, url: str, *, timeout_s: float = 0.05, reply_timeout_s: float = 1.0,
             threaded: bool = True, key: DeviceKey | None = None,
             **kwargs: int) -> "UdpTransport":
        """Open ``url`` and make the board learn this host (see the module docstring);
        ``threaded``: then start the receive thread; ``key``: the device's control key (a
        keyed build learns its host only from a signed command)."""
        address, port = parse_udp_url(url)
        transport = cls(address, port, timeout=timeout_s, **kwargs)
        try:
            transport._check_buffer()
            transport.announce(reply_timeout_s, key)
            if threaded:
                transport.start_thread()
        except BaseException:
            transport.close()
            raise
        return transport

    @property
    def local_port(self) -> int:
        """The UDP port this host receives on (the board learns it from the commands)."""
        return self._sock.getsockname()[1]

    @property
    def where(self) -> str:
        return f"{self.address}:{self.control_port}"

    def _check_buffer(self) -> None:
        granted = self.stats.receive_buffer_bytes
        if granted >= SMALL_RECEIVE_BUFFER_BYTES:
            return
        fix = (f"raise the cap: sudo sysctl -w net.core.rmem_max={RECEIVE_BUFFER_BYTES} "
               "(add it to /etc/sysctl.d/ to keep it)" if _LINUX else
               "raise the OS's socket buffer limit (macOS: sysctl kern.ipc.maxsockbuf)")
        log.warning("the UDP receive buffer is %d KiB (the OS capped the %d MiB asked for): "
                    "a busy host may drop datagrams at high channel counts; %s",
                    granted // 1024, RECEIVE_BUFFER_BYTES // 2**20, fix)

    def announce(self, reply_timeout_s: float = 1.0, key: DeviceKey | None = None) -> None:
        """Send one command (read IDENTITY; signed under ``key`` if given) until the board
        answers with any datagram; what arrives is kept for :meth:`read`. Every try sends
        the same frame: the board answers a repeat from its stored reply."""
        tag = int.from_bytes(os.urandom(4), "little")
        identity = register("IDENTITY").address
        if key is None:
            command = encode_command(tag, identity, CommandOp.READ)
        else:
            # A new epoch: above every epoch the board has spent (its floor after a reset).
            command = encode_authenticated_command(tag, identity, CommandOp.READ, 0,
                                                   key.next_epoch_counter(), key.key)
        saved, self.timeout = self.timeout, reply_timeout_s
        try:
            for _ in range(OPEN_TRIES):
                self.write(command)
                data, _ = self._receive(self._view, self.timeout)
                if data:
                    self._pending += data
                    self._announced = True
                    return
        finally:
            self.timeout = saved
        if key is None:
            keyed = ("a board built with a control key answers only after a signed command: "
                     "give its key, --key NAME (Device.open(url, key=load_key(NAME)))")
        else:
            keyed = (f"was the board built with key {key.name!r} (`spikeforge key show "
                     f"{key.name}`)? A board built without a key ignores signed commands: "
                     "leave --key out. If another host signs with this key, its counter "
                     f"file may be ahead of {key.counter_path.name}: copy the larger one")
        raise DeviceSilent(
            f"no reply from {self.where} in {OPEN_TRIES} x {reply_timeout_s:g} s — is the "
            f"board powered and on this segment? (ping it; {_FIREWALL_HINT}; is "
            f"{self.control_port} its control port? it sends to one host per boot: reset it "
            f"if another program opened it) — {keyed}")

    # -- the serial-port interface Device uses -------------------------------------------
    @property
    def in_waiting(self) -> int:
        """0: :meth:`read` decides how much to take (whole datagrams)."""
        return 0

    def read(self, size: int = 1) -> bytes:
        """Whole datagrams from the board, concatenated: waits up to :attr:`timeout` for
        the first, then takes those already queued (up to the batch size). ``b""`` if none
        came. ``size`` is ignored: a datagram is never split."""
        if self._pending:
            data, self._pending = bytes(self._pending), bytearray()
            return data
        if self._thread is None:
            return self._receive(self._view, self.timeout)[0]
        return self._take_queued()

    def write(self, data: bytes) -> int:
        try:
            return self._sock.sendto(data, (self.address, self.control_port))
        except ConnectionRefusedError:
            self._drain_errors()
            raise self._refused() from None
        except OSError as exc:
            raise self._unreachable(exc) from None

    def flush(self) -> None:
        """Nothing to flush: each write is one datagram, sent at once."""

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            if self._thread is not None:
                self._stop.set()
                self._thread.join()
            self._selector.close()
            self._sock.close()

    def __enter__(self) -> "UdpTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- receiving -----------------------------------------------------------------------
    def start_thread(self) -> None:
        """Receive from now on in a thread (see the module docstring)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._receive_loop, daemon=True,
                                            name=f"spikeforge-udp-{self.where}")
            self._thread.start()

    def _receive_loop(self) -> None:
        view = memoryview(bytearray(self._batch_bytes))
        stats = self.stats
        while not self._stop.is_set():
            try:
                data, datagrams = self._receive(view, 0.1)
            except DeviceError as exc:
                self._failure = exc
                return
            if not data:
                continue
            with self._queue_lock:
                if self._queued_bytes + len(data) > self.max_queue_bytes:
                    stats.host_queue_drops += datagrams
                    continue
                self._queued_bytes += len(data)
                stats.queue_peak_bytes = max(stats.queue_peak_bytes, self._queued_bytes)
            self._queue.put(data)

    def _take_queued(self) -> bytes:
        try:
            chunks = [self._queue.get(timeout=self.timeout)]
        except queue.Empty:
            if self._failure is not None:
                raise self._failure from None
            return b""
        taken = len(chunks[0])
        while taken < self._batch_bytes:
            try:
                chunks.append(self._queue.get_nowait())
            except queue.Empty:
                break
            taken += len(chunks[-1])
        with self._queue_lock:
            self._queued_bytes -= taken
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _receive(self, view: memoryview, timeout: float) -> tuple[bytes, int]:
        """Whole datagrams from the board into ``view`` (waiting up to ``timeout`` for the
        first): their bytes and how many."""
        if not self._selector.select(timeout):
            return b"", 0
        stats = self.stats
        limit = len(view) - MAX_DATAGRAM_BYTES - 1
        filled = datagrams = 0
        sock = self._sock
        board = self.address
        ancillary = self._ancillary_bytes
        while filled <= limit:
            try:
                size, ancdata, flags, source = sock.recvmsg_into(
                    [view[filled:]], ancillary)
            except BlockingIOError:
                break
            except ConnectionRefusedError:
                self._drain_errors()
                raise self._refused() from None
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise self._unreachable(exc) from None
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(data) >= 4:
                    stats.kernel_drops = int.from_bytes(data[:4], sys.byteorder)
            if source[0] != board:
                stats.foreign_datagrams += 1
                continue
            if flags & socket.MSG_TRUNC:
                stats.truncated += 1
                continue
            stats.datagrams += 1
            stats.bytes += size
            filled += size
            datagrams += 1
        return bytes(view[:filled]), datagrams

    def _drain_errors(self) -> None:
        """Empty the socket's error queue (IP_RECVERR queues each ICMP error there)."""
        if not _LINUX:
            return
        for _ in range(1024):
            try:
                self._sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
            except OSError:
                return

    def _refused(self) -> DeviceError:
        """ICMP port unreachable: before the board answered, nothing listens there; after,
        the board went away."""
        if not self._announced:
            return DeviceNotFound(
                f"nothing listens on UDP port {self.control_port} at {self.address} (ICMP "
                f"port unreachable): is that the board's address, and its control port "
                f"(udp://{self.address}:{CONTROL_PORT} by default)?")
        return DeviceDisconnected(
            f"the board at {self.where} closed its control port (ICMP port unreachable): was "
            "it reset, reprogrammed, or the virtual board stopped? Open it again")

    def _unreachable(self, exc: OSError) -> DeviceError:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
            return DeviceSilent(
                f"no route to the board at {self.address} ({os.strerror(exc.errno)}): it "
                "answers no ARP — is it powered and on this segment, and is this host's "
                f"interface on its subnet? (ping it; {_FIREWALL_HINT})")
        return DeviceDisconnected(f"lost the board at {self.where}: {exc}")


def udp_stats(device: object) -> UdpLinkStats | None:
    """The UDP counters of a :class:`Device` opened on a ``udp://`` URL (None otherwise)."""
    port = getattr(device, "_port", None)
    return port.stats if isinstance(port, UdpTransport) else None


def link_record(device: object) -> dict[str, Any]:
    """The ``link`` record of a recording (``spikeforge.json``): the decoder's counters
    (:class:`~spikeforge.host.frames.LinkStats`) and, for a ``udp://`` device, the socket's
    under ``udp`` (:class:`UdpLinkStats`: kernel and queue drops, foreign datagrams, the
    receive buffer granted)."""
    record = asdict(replace(device.stats))     # type: ignore[attr-defined]
    stats = udp_stats(device)
    if stats is not None:
        record["udp"] = asdict(replace(stats))   # a copy: the receive thread goes on
    return record
