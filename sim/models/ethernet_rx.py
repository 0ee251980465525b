"""Golden model of the Ethernet receive path (hdl/ethernet: MAC, dispatcher, ARP, ICMP echo).

Input: frames as the MAC sees them after the SFD — destination MAC to FCS inclusive
(:class:`RxFrame`; :func:`with_fcs` appends a right FCS), each optionally marked as carrying
a PHY error (``rx_er``). Preamble and SFD are not part of the model's frames; the RGMII
driver adds them. Output (:class:`RxResult`): the reply frames the board sends (ARP replies
and ICMP echo replies, destination MAC to last payload byte: no padding, no FCS — the
transmitter adds both), the UDP datagrams delivered to the command decoder (payload bytes and
sender), and every counter of the hardware by its port name.

The model assumes the consumers keep up (the hardware's frame buffer never overflows), so
``overflows`` is always 0 here.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from spikeforge.firmware.ethernet import (
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    IP_PROTOCOL_ICMP,
    IP_PROTOCOL_UDP,
    EthernetConfig,
    ip_bytes,
    mac_bytes,
)

__all__ = ["RxFrame", "Datagram", "RxResult", "receive", "with_fcs", "mac_verdict",
           "ones_complement_sum", "internet_checksum", "COUNTERS", "MIN_RX_FRAME_BYTES",
           "MAX_RX_FRAME_BYTES"]

_DEFAULT_CONFIG = EthernetConfig()    # the build's defaults

MIN_RX_FRAME_BYTES = 64
MAX_RX_FRAME_BYTES = 1518
BROADCAST = b"\xff" * 6
ARP_REQUEST_HEAD = bytes.fromhex("0001080006040001")   # Ethernet, IPv4, 6, 4, request

#: Every counter, in the hardware's port names.
COUNTERS = ("frames_ok", "fcs_errors", "runts", "giants", "overflows", "dropped_mac",
            "dropped_ip", "dropped_port", "dropped_other", "arp_answered", "ping_answered",
            "datagrams")


@dataclass(frozen=True)
class RxFrame:
    data: bytes              #: destination MAC .. FCS inclusive
    rx_error: bool = False   #: the PHY flagged a byte inside the frame (rx_er)


@dataclass(frozen=True)
class Datagram:
    sender_mac: int
    sender_ip: int
    sender_port: int
    payload: bytes


@dataclass
class RxResult:
    replies: list[bytes] = field(default_factory=list)
    datagrams: list[Datagram] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    @property
    def command_bytes(self) -> bytes:
        """The byte stream the command decoder receives (payloads back to back)."""
        return b"".join(d.payload for d in self.datagrams)


def with_fcs(frame: bytes) -> bytes:
    """``frame`` followed by its Ethernet FCS (zlib's CRC-32, least significant byte first)."""
    import zlib

    return frame + zlib.crc32(frame).to_bytes(4, "little")


def mac_verdict(frame: RxFrame) -> str:
    """The MAC's verdict: ``runt``, ``giant``, ``fcs`` or ``ok`` (checked in this order)."""
    import zlib

    if len(frame.data) < MIN_RX_FRAME_BYTES:
        return "runt"
    if len(frame.data) > MAX_RX_FRAME_BYTES:
        return "giant"
    if frame.rx_error or zlib.crc32(frame.data) != 0x2144DF1C:
        return "fcs"
    return "ok"


def ones_complement_sum(data: bytes) -> int:
    """The 16-bit one's complement sum of ``data`` as big-endian words (odd length: a zero
    byte appended)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes) -> int:
    """RFC 1071 checksum of ``data`` (its checksum field zero)."""
    return ~ones_complement_sum(data) & 0xFFFF


def receive(frames: Iterable[RxFrame], config: EthernetConfig = _DEFAULT_CONFIG) -> RxResult:
    """Run ``frames`` through the receive path in order; see the module docstring."""
    result = RxResult()
    counters = result.counters
    for frame in frames:
        verdict = mac_verdict(frame)
        if verdict != "ok":
            counters[{"runt": "runts", "giant": "giants", "fcs": "fcs_errors"}[verdict]] += 1
            continue
        counters["frames_ok"] += 1
        outcome = _dispatch(frame.data[:-4], config, result)
        counters[outcome] += 1
    return result


def _dispatch(frame: bytes, config: EthernetConfig, result: RxResult) -> str:
    """Handle one good frame (FCS removed); return the counter it adds to."""
    board_mac, board_ip = mac_bytes(config.mac), ip_bytes(config.ip)
    destination, ethertype = frame[0:6], int.from_bytes(frame[12:14], "big")
    if not (destination == board_mac or (destination == BROADCAST
                                         and ethertype == ETHERTYPE_ARP)):
        return "dropped_mac"
    if ethertype == ETHERTYPE_ARP:
        if frame[14:22] != ARP_REQUEST_HEAD:
            return "dropped_other"
        if frame[38:42] != board_ip:
            return "dropped_ip"
        sender_mac, sender_ip = frame[22:28], frame[28:32]
        result.replies.append(
            sender_mac + board_mac + ETHERTYPE_ARP.to_bytes(2, "big")
            + bytes.fromhex("0001080006040002") + board_mac + board_ip + sender_mac + sender_ip)
        return "arp_answered"
    if ethertype != ETHERTYPE_IPV4:
        return "dropped_other"
    header = frame[14:34]
    total_length = int.from_bytes(header[2:4], "big")
    if (header[0] != 0x45 or ones_complement_sum(header) != 0xFFFF
            or header[6] & 0x3F or header[7]):
        return "dropped_other"
    if header[16:20] != board_ip:
        return "dropped_ip"
    protocol = header[9]
    if protocol == IP_PROTOCOL_UDP:
        udp_length = int.from_bytes(frame[38:40], "big")
        if udp_length < 8 or 20 + udp_length > total_length:
            return "dropped_other"
        if int.from_bytes(frame[36:38], "big") != config.control_port:
            return "dropped_port"
        result.datagrams.append(Datagram(
            sender_mac=int.from_bytes(frame[6:12], "big"),
            sender_ip=int.from_bytes(header[12:16], "big"),
            sender_port=int.from_bytes(frame[34:36], "big"),
            payload=frame[42:34 + udp_length]))
        return "datagrams"
    if protocol == IP_PROTOCOL_ICMP:
        message = frame[34:14 + total_length]
        if (total_length < 28 or len(frame) < 14 + total_length or message[0] != 8
                or message[1] != 0 or ones_complement_sum(message) != 0xFFFF):
            return "dropped_other"
        reply_message = bytes(4) + message[4:]
        checksum = internet_checksum(reply_message)
        reply_message = bytes(2) + checksum.to_bytes(2, "big") + message[4:]
        ip_header = (bytes([0x45, 0]) + header[2:6] + bytes([0, 0, 64, IP_PROTOCOL_ICMP, 0, 0])
                     + board_ip + header[12:16])
        ip_checksum = internet_checksum(ip_header)
        ip_header = ip_header[:10] + ip_checksum.to_bytes(2, "big") + ip_header[12:]
        result.replies.append(frame[6:12] + board_mac + ETHERTYPE_IPV4.to_bytes(2, "big")
                              + ip_header + reply_message)
        return "ping_answered"
    return "dropped_other"
