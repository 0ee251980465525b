"""Golden model of the Ethernet transmit path: wire frames in, exact Ethernet frames out.

Mirrors ``hdl/ethernet/`` (``UDPTransmitter`` then ``MACTransmitter``): each wire frame
becomes one UDP datagram to the host (IPv4 fragments above
:data:`~spikeforge.firmware.ethernet.FRAGMENT_PAYLOAD_BYTES`), each fragment one Ethernet
frame; on the line a frame is preamble, SFD, frame, zero pad to 60 bytes, FCS. Wire
frames that arrive while no host is known (or that are too long for one datagram) are
dropped and counted. The IPv4 identification counts the datagrams sent.
"""

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from spikeforge.firmware.errors import WireFormatError
from spikeforge.firmware.ethernet import (
    ETHERTYPE_IPV4,
    FRAGMENT_PAYLOAD_BYTES,
    IP_PROTOCOL_UDP,
    MAX_WIRE_FRAME_BYTES,
    MIN_FRAME_BYTES,
    PREAMBLE_SFD,
    UDP_HEADER_BYTES,
    EthernetConfig,
    ip_bytes,
    mac_bytes,
)
from spikeforge.firmware.wire import CRC_BYTES, HEADER, HEADER_BYTES

__all__ = ["Host", "EthernetTxModel", "split_wire_frames", "ipv4_checksum",
           "datagram_frames", "line_frame"]

_TTL = 64


@dataclass(frozen=True)
class Host:
    """The learned host: where data datagrams go."""

    mac: int
    ip: int
    port: int


def split_wire_frames(data: bytes) -> list[bytes]:
    """A byte stream of whole wire frames cut at each frame's end (from its length field)."""
    frames = []
    at = 0
    while at < len(data):
        if len(data) - at < HEADER_BYTES:
            raise WireFormatError(f"{len(data) - at} bytes at offset {at} are not a whole "
                                  "wire-frame header; the stream must hold whole frames")
        _, _, length = HEADER.unpack_from(data, at + 2)
        end = at + HEADER_BYTES + length + CRC_BYTES
        if end > len(data):
            raise WireFormatError(f"the wire frame at offset {at} runs past the stream's end")
        frames.append(data[at:end])
        at = end
    return frames


def ipv4_checksum(header: bytes) -> int:
    """The ones'-complement checksum of an IPv4 header whose checksum field is zero."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def datagram_frames(wire_frame: bytes, *, identification: int, host: Host,
                    ethernet: EthernetConfig, source_port: int) -> list[bytes]:
    """The Ethernet frames (destination MAC .. payload, no FCS) of one wire frame's datagram."""
    udp = struct.pack("!HHHH", source_port, host.port, UDP_HEADER_BYTES + len(wire_frame),
                      0) + wire_frame
    eth = mac_bytes(host.mac) + mac_bytes(ethernet.mac) + ETHERTYPE_IPV4.to_bytes(2, "big")
    frames = []
    for start in range(0, len(udp), FRAGMENT_PAYLOAD_BYTES):
        chunk = udp[start:start + FRAGMENT_PAYLOAD_BYTES]
        more = start + len(chunk) < len(udp)
        flags_offset = (more << 13) | (start // 8)
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk),
                             identification & 0xFFFF, flags_offset, _TTL, IP_PROTOCOL_UDP, 0,
                             ip_bytes(ethernet.ip), ip_bytes(host.ip))
        header = header[:10] + ipv4_checksum(header).to_bytes(2, "big") + header[12:]
        frames.append(eth + header + chunk)
    return frames


def line_frame(frame: bytes) -> bytes:
    """A frame as the MAC puts it on the line: preamble, SFD, frame, pad, FCS."""
    padded = frame + bytes(max(0, MIN_FRAME_BYTES - len(frame)))
    return PREAMBLE_SFD + padded + zlib.crc32(padded).to_bytes(4, "little")


@dataclass
class EthernetTxModel:
    """The transmit path's state: the IPv4 identification and the datagram counters."""

    ethernet: EthernetConfig = field(default_factory=EthernetConfig)
    source_port: int | None = None
    identification: int = 0
    datagrams_sent: int = 0
    datagrams_dropped: int = 0

    def send(self, wire_frame: bytes, host: Host | None) -> list[bytes]:
        """The Ethernet frames (no FCS) for one wire frame; none if ``host`` is None."""
        if host is None or len(wire_frame) > MAX_WIRE_FRAME_BYTES:
            self.datagrams_dropped += 1
            return []
        port = self.ethernet.data_port if self.source_port is None else self.source_port
        frames = datagram_frames(wire_frame, identification=self.identification, host=host,
                                 ethernet=self.ethernet, source_port=port)
        self.identification = (self.identification + 1) & 0xFFFF
        self.datagrams_sent += 1
        return frames

    def send_all(self, wire_frames: Iterable[bytes],
                 hosts: Iterable[Host | None]) -> list[bytes]:
        """Frames for many wire frames, each with the host known when it was taken."""
        return [frame for wire, host in zip(wire_frames, hosts, strict=True)
                for frame in self.send(wire, host)]
