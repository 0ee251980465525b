"""ARP for the receive path: recognising a request and the bytes of the reply."""

from amaranth.hdl import Const, Value

from spikeforge.firmware.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4

__all__ = ["ARP_REQUEST_HEAD", "ARP_REPLY_BYTES", "is_arp_request_head", "arp_reply_bytes",
           "big_endian_bytes"]

#: htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, operation 1 (request): frame bytes 14..21.
ARP_REQUEST_HEAD = 0x0001_0000_0604_0001 | ETHERTYPE_IPV4 << 32
ARP_REPLY_BYTES = 42


def big_endian_bytes(value: Value, count: int) -> list[Value]:
    """The ``count`` bytes of ``value``, most significant first."""
    return [value[8 * (count - 1 - k):8 * (count - k)] for k in range(count)]


def is_arp_request_head(head: Value) -> Value:
    """Whether frame bytes 14..21 (as one big-endian 64-bit value) open an ARP request for
    IPv4 over Ethernet."""
    return head == ARP_REQUEST_HEAD


def arp_reply_bytes(sender_mac: Value, sender_ip: Value, board_mac: Value,
                    board_ip: Value) -> list[Value]:
    """The 42 bytes of the ARP reply to a request from ``sender_mac``/``sender_ip``: sent to
    the requester's hardware address, saying the board's IP is at the board's MAC."""
    def constant(value: int, count: int) -> list[Value]:
        return big_endian_bytes(Const(value, 8 * count), count)

    return (big_endian_bytes(sender_mac, 6) + big_endian_bytes(board_mac, 6)
            + constant(ETHERTYPE_ARP, 2) + constant(0x0001_0800_0604_0002, 8)
            + big_endian_bytes(board_mac, 6) + big_endian_bytes(board_ip, 4)
            + big_endian_bytes(sender_mac, 6) + big_endian_bytes(sender_ip, 4))
