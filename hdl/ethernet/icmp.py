"""ICMP echo for the receive path: the echo reply's headers and its IPv4 checksum."""

from amaranth.hdl import Const, Value

from spikeforge.firmware.ethernet import ETHERTYPE_IPV4, IP_PROTOCOL_ICMP

from .arp import big_endian_bytes

__all__ = ["ECHO_REPLY_HEADER_BYTES", "REPLY_TTL", "echo_reply_header_bytes",
           "ip_reply_checksum"]

REPLY_TTL = 64
#: Ethernet (14) + IPv4 (20) + ICMP type, code, checksum (4); the identifier, sequence and
#: data follow from the request's stored message.
ECHO_REPLY_HEADER_BYTES = 38


def _fold(total: Value) -> Value:
    """A sum of up to 2**20 16-bit words folded to its 16-bit one's complement sum."""
    once = total[:16] + total[16:]
    return (once[:16] + once[16:])[:16]


def ip_reply_checksum(total_length: Value, identification: Value, board_ip: Value,
                      destination_ip: Value) -> Value:
    """The header checksum of the echo reply's IPv4 header (version/IHL 0x45, TOS 0, flags
    and fragment offset 0, TTL 64, protocol ICMP)."""
    total = (Const(0x4500, 16) + total_length + identification
             + Const(REPLY_TTL << 8 | IP_PROTOCOL_ICMP, 16)
             + board_ip[16:] + board_ip[:16] + destination_ip[16:] + destination_ip[:16])
    return ~_fold(total)


def echo_reply_header_bytes(destination_mac: Value, board_mac: Value, total_length: Value,
                            identification: Value, ip_checksum: Value, board_ip: Value,
                            destination_ip: Value, icmp_checksum: Value) -> list[Value]:
    """The first 38 bytes of an echo reply frame."""
    def constant(value: int, count: int) -> list[Value]:
        return big_endian_bytes(Const(value, 8 * count), count)

    return (big_endian_bytes(destination_mac, 6) + big_endian_bytes(board_mac, 6)
            + constant(ETHERTYPE_IPV4, 2) + constant(0x4500, 2)
            + big_endian_bytes(total_length, 2) + big_endian_bytes(identification, 2)
            + constant(0, 2) + constant(REPLY_TTL << 8 | IP_PROTOCOL_ICMP, 2)
            + big_endian_bytes(ip_checksum, 2) + big_endian_bytes(board_ip, 4)
            + big_endian_bytes(destination_ip, 4) + constant(0, 2)
            + big_endian_bytes(icmp_checksum, 2))
