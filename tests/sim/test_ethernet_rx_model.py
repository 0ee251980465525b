"""The Ethernet receive path's golden model, against frames built and replies parsed by dpkt."""

import dpkt
import pytest

from spikeforge.firmware.ethernet import EthernetConfig, ip_bytes, mac_bytes
from spikeforge.sim.ethernet_rx_stimuli import (
    HOST_IP,
    HOST_MAC,
    HOST_PORT,
    OTHER_IP,
    OTHER_MAC,
    arp_request,
    catalogue,
    command_datagram,
    ethernet,
    ping,
    random_mix,
    udp,
)
from spikeforge.sim.models.ethernet_rx import (
    COUNTERS,
    RxFrame,
    internet_checksum,
    mac_verdict,
    receive,
    with_fcs,
)

CONFIG = EthernetConfig()


def only(result, **counts) -> None:
    """Every counter is zero except ``counts``."""
    assert result.counters == {name: counts.get(name, 0) for name in COUNTERS}


def test_arp_request_for_the_board_is_answered_with_its_mac():
    result = receive([arp_request(CONFIG.ip)])
    only(result, frames_ok=1, arp_answered=1)
    reply = dpkt.ethernet.Ethernet(result.replies[0])
    assert reply.dst == mac_bytes(HOST_MAC) and reply.src == mac_bytes(CONFIG.mac)
    arp = reply.data
    assert arp.op == dpkt.arp.ARP_OP_REPLY
    assert (arp.sha, arp.spa) == (mac_bytes(CONFIG.mac), ip_bytes(CONFIG.ip))
    assert (arp.tha, arp.tpa) == (mac_bytes(HOST_MAC), ip_bytes(HOST_IP))
    assert len(result.replies[0]) == 42


def test_arp_for_another_ip_and_arp_replies_are_dropped():
    only(receive([arp_request(OTHER_IP)]), frames_ok=1, dropped_ip=1)
    only(receive([arp_request(CONFIG.ip, op=dpkt.arp.ARP_OP_REPLY)]), frames_ok=1,
         dropped_other=1)


@pytest.mark.parametrize("size", [0, 1, 31, 56, 1472])
def test_echo_request_is_answered_with_the_same_id_sequence_and_data(size):
    data = bytes((7 * k + size) & 0xFF for k in range(size))
    result = receive([ping(data, identifier=0xBEEF, sequence=size, identification=99)])
    only(result, frames_ok=1, ping_answered=1)
    frame = dpkt.ethernet.Ethernet(result.replies[0])
    assert frame.dst == mac_bytes(HOST_MAC) and frame.src == mac_bytes(CONFIG.mac)
    packet = frame.data
    assert packet.src == ip_bytes(CONFIG.ip) and packet.dst == ip_bytes(HOST_IP)
    assert packet.ttl == 64 and packet.id == 99 and packet.len == 28 + size
    header = result.replies[0][14:34]
    assert internet_checksum(header) == 0            # a valid header sums to 0xFFFF
    icmp = packet.data
    assert icmp.type == dpkt.icmp.ICMP_ECHOREPLY and icmp.code == 0
    assert internet_checksum(result.replies[0][34:]) == 0
    assert (icmp.data.id, icmp.data.seq, icmp.data.data) == (0xBEEF, size, data)


def test_bad_echo_requests_are_dropped():
    for frame in (ping(b"x" * 9, bad_icmp_checksum=True), ping(b"x", icmp_type=13)):
        only(receive([frame]), frames_ok=1, dropped_other=1)
    only(receive([ping(b"x", destination_ip=OTHER_IP)]), frames_ok=1, dropped_ip=1)


def test_command_to_the_control_port_is_delivered_with_its_sender():
    frame = command_datagram(5, source_port=HOST_PORT + 1)
    result = receive([frame])
    only(result, frames_ok=1, datagrams=1)
    [datagram] = result.datagrams
    parsed = dpkt.ethernet.Ethernet(frame.data[:-4]).data.data
    assert datagram.payload == parsed.data and len(datagram.payload) == 19
    assert (datagram.sender_mac, datagram.sender_ip, datagram.sender_port) == (
        HOST_MAC, HOST_IP, HOST_PORT + 1)
    assert result.command_bytes == parsed.data


def test_foreign_port_ip_and_mac_are_dropped_and_counted_apart():
    result = receive([
        command_datagram(1, destination_port=CONFIG.data_port),
        command_datagram(2, destination_ip=OTHER_IP),
        command_datagram(3, destination=mac_bytes(OTHER_MAC)),
        command_datagram(4, destination=b"\xff" * 6),
    ])
    only(result, frames_ok=4, dropped_port=1, dropped_ip=1, dropped_mac=2)
    assert result.command_bytes == b""


def test_malformed_ipv4_is_dropped_as_other():
    result = receive([
        command_datagram(1, ip_options={"bad_checksum": True}),
        command_datagram(2, ip_options={"options": b"\x01\x01\x01\x00"}),
        command_datagram(3, ip_options={"more_fragments": True}),
        ethernet(bytes(46), 0x86DD, destination=mac_bytes(CONFIG.mac)),
    ])
    only(result, frames_ok=4, dropped_other=4)


def test_the_mac_drops_bad_fcs_phy_errors_runts_and_giants():
    good = command_datagram(1)
    frames = [command_datagram(1, corrupt_fcs=True), command_datagram(1, rx_error=True),
              RxFrame(with_fcs(bytes(59))), RxFrame(with_fcs(bytes(60))),
              RxFrame(with_fcs(bytes(1514))), RxFrame(with_fcs(bytes(1515)))]
    assert [mac_verdict(f) for f in frames] == ["fcs", "fcs", "runt", "ok", "ok", "giant"]
    only(receive(frames + [good]), frames_ok=3, fcs_errors=2, runts=1, giants=1,
         dropped_mac=2, datagrams=1)


def test_udp_payload_stops_at_the_udp_length_not_the_padding():
    result = receive([udp(b"ab", destination_port=CONFIG.control_port)])
    assert result.command_bytes == b"ab"


def test_catalogue_covers_every_counter_but_overflow():
    result = receive(catalogue())
    assert all(result.counters[name] > 0 for name in COUNTERS if name != "overflows")
    assert result.counters["overflows"] == 0
    assert len(result.command_bytes) == 19 * 3       # three commands and an empty datagram


def test_random_mix_is_reproducible_and_every_frame_is_counted_once():
    frames = random_mix(3, 80)
    assert frames == random_mix(3, 80)
    counters = receive(frames).counters
    assert sum(counters[n] for n in ("frames_ok", "fcs_errors", "runts", "giants")) == 80
    assert counters["frames_ok"] == sum(counters[n] for n in COUNTERS[5:])
