"""The Gigabit Ethernet link's contract: addresses, ports and how wire frames ride in UDP.

Both sides take these facts from here: the gateware (``hdl/ethernet/``), the golden models
(``sim/models/ethernet*.py``), the host receiver and the virtual board.

* **One wire frame per UDP datagram.** The UDP payload of a data or reply datagram is one
  whole wire-format frame (:mod:`spikeforge.firmware.wire`: sync, header, payload, CRC), the
  same bytes the UART carries, so the host's decoders and loss accounting are the link's.
* **IPv4 fragmentation for large frames.** A wire frame larger than one Ethernet payload
  allows (a DATA frame at 1024 channels is over 2 KiB) is sent as IPv4 fragments of at most
  :data:`FRAGMENT_PAYLOAD_BYTES` bytes of IP payload; the host's IP stack reassembles them.
  A lost fragment loses the whole datagram, so a frame still arrives whole or not at all.
* **UDP checksum 0** (allowed by IPv4: RFC 768); the wire frame's own CRC-32 and the
  Ethernet FCS protect the bytes. IPv4: version 4, IHL 5, TOS 0, TTL 64, DF clear, the
  identification counting datagrams from 0 after reset.
* **Ports.** The board sends data datagrams from :data:`DATA_PORT` and listens for commands
  on :data:`CONTROL_PORT`; replies come from :data:`CONTROL_PORT`. Both go to the host
  address learned from the first valid command (its MAC, IP and UDP source port), so one
  bitstream serves any host on the segment. Until a host is learned, data datagrams are
  counted as dropped and not sent.
"""

import ipaddress
from dataclasses import dataclass

from .errors import ConfigError

__all__ = [
    "EthernetConfig", "DATA_PORT", "CONTROL_PORT", "MTU_BYTES", "FRAGMENT_PAYLOAD_BYTES",
    "ETH_HEADER_BYTES", "IPV4_HEADER_BYTES", "UDP_HEADER_BYTES", "MIN_FRAME_BYTES",
    "PREAMBLE_SFD", "INTER_FRAME_GAP_BYTES", "FCS_BYTES", "ETHERTYPE_IPV4", "ETHERTYPE_ARP",
    "IP_PROTOCOL_UDP", "IP_PROTOCOL_ICMP", "LINK_RATE_BPS", "LINK_CLOCK_HZ",
    "mac_bytes", "ip_bytes", "format_mac", "MAX_WIRE_FRAME_BYTES",
]

DATA_PORT = 5130
CONTROL_PORT = 5131

#: Gigabit Ethernet: 125 MHz, one byte per cycle (RGMII: a nibble on each clock edge).
LINK_CLOCK_HZ = 125_000_000
LINK_RATE_BPS = 1_000_000_000

MTU_BYTES = 1500                      #: largest IP packet in one Ethernet frame
ETH_HEADER_BYTES = 14                 #: destination MAC, source MAC, EtherType
IPV4_HEADER_BYTES = 20                #: no options
UDP_HEADER_BYTES = 8
#: IP payload bytes per fragment: the most below the MTU that is a multiple of 8 (the
#: fragment offset counts 8-byte units).
FRAGMENT_PAYLOAD_BYTES = (MTU_BYTES - IPV4_HEADER_BYTES) // 8 * 8
#: The largest wire frame one datagram carries (IPv4 total length is 16 bits); the
#: transmitter drops and counts a longer one (the framer never makes one).
MAX_WIRE_FRAME_BYTES = 0xFFFF - IPV4_HEADER_BYTES - UDP_HEADER_BYTES
MIN_FRAME_BYTES = 60                  #: before the FCS; shorter frames are padded with zeros
PREAMBLE_SFD = bytes([0x55] * 7 + [0xD5])
INTER_FRAME_GAP_BYTES = 12            #: idle byte times between frames (96 bit times)
FCS_BYTES = 4

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
IP_PROTOCOL_ICMP = 1
IP_PROTOCOL_UDP = 17


def mac_bytes(mac: int) -> bytes:
    return mac.to_bytes(6, "big")


def ip_bytes(ip: int) -> bytes:
    return ip.to_bytes(4, "big")


def format_mac(mac: int) -> str:
    return ":".join(f"{b:02x}" for b in mac_bytes(mac))


@dataclass(frozen=True)
class EthernetConfig:
    """The board's own addresses (the build's defaults; registers can override them).

    ``mac``: 48-bit, locally administered and unicast by default (02:...). ``ip``: IPv4 as
    a 32-bit integer or dotted string (kept as the integer).
    """

    mac: int = 0x02_53_46_00_00_01
    ip: int = 0xC0_A8_01_32            # 192.168.1.50
    data_port: int = DATA_PORT
    control_port: int = CONTROL_PORT

    def __post_init__(self) -> None:
        if isinstance(self.ip, str):
            try:
                object.__setattr__(self, "ip", int(ipaddress.IPv4Address(self.ip)))
            except ipaddress.AddressValueError as exc:
                raise ConfigError(f"ethernet ip must be a dotted IPv4 address such as "
                                  f"192.168.1.50, not {self.ip!r}") from exc
        if isinstance(self.mac, str):
            try:
                object.__setattr__(self, "mac", int(self.mac.replace(":", ""), 16))
            except ValueError as exc:
                raise ConfigError(f"ethernet mac must read like 02:53:46:00:00:01, "
                                  f"not {self.mac!r}") from exc
        if not 0 <= self.mac < 1 << 48 or self.mac >> 40 & 1:
            raise ConfigError(f"ethernet mac must be a 48-bit unicast address (first byte "
                              f"even), not {format_mac(self.mac & (1 << 48) - 1)}")
        if not 0 < self.ip < 0xE0_00_00_00:
            raise ConfigError(f"ethernet ip must be a unicast IPv4 address, not "
                              f"{ipaddress.IPv4Address(self.ip & 0xFFFFFFFF)}")
        for name in ("data_port", "control_port"):
            port = getattr(self, name)
            if not 0 < port < 65536:
                raise ConfigError(f"ethernet {name} must be 1..65535, not {port}")
        if self.data_port == self.control_port:
            raise ConfigError("ethernet data_port and control_port must differ "
                              f"(both {self.data_port})")

    @property
    def ip_text(self) -> str:
        return str(ipaddress.IPv4Address(self.ip))
