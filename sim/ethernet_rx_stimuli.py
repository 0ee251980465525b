"""Frames for the Ethernet receive path's tests and bench, built with dpkt (an independent
Ethernet/IP/UDP/ICMP/ARP implementation), so the golden model is not checked by itself.

Every builder returns an :class:`~spikeforge.sim.models.ethernet_rx.RxFrame` (destination MAC
to FCS); short frames are padded to 60 bytes before the FCS as a sender's MAC would.
"""

import random

import dpkt

from spikeforge.firmware.ethernet import (
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    IP_PROTOCOL_ICMP,
    IP_PROTOCOL_UDP,
    MIN_FRAME_BYTES,
    EthernetConfig,
    ip_bytes,
    mac_bytes,
)
from spikeforge.firmware.wire import CommandOp, encode_command

from .models.ethernet_rx import RxFrame, with_fcs

__all__ = ["HOST_MAC", "HOST_IP", "HOST_PORT", "OTHER_MAC", "OTHER_IP", "ethernet",
           "arp_request", "ping", "udp", "command_datagram", "catalogue", "random_mix"]

_DEFAULT_CONFIG = EthernetConfig()    # the build's defaults

HOST_MAC = 0x0A_1B_2C_3D_4E_5F
HOST_IP = 0xC0_A8_01_0A             # 192.168.1.10
HOST_PORT = 40_000
OTHER_MAC = 0x02_99_88_77_66_55
OTHER_IP = 0xC0_A8_01_33            # 192.168.1.51
BROADCAST = b"\xff" * 6


def ethernet(payload: bytes, ethertype: int, *, destination: bytes,
             source: int = HOST_MAC, pad: bool = True, corrupt_fcs: bool = False,
             rx_error: bool = False) -> RxFrame:
    frame = bytes(dpkt.ethernet.Ethernet(dst=destination, src=mac_bytes(source),
                                         type=ethertype, data=payload))
    if pad and len(frame) < MIN_FRAME_BYTES:
        frame += bytes(MIN_FRAME_BYTES - len(frame))
    data = with_fcs(frame)
    if corrupt_fcs:
        data = data[:-1] + bytes([data[-1] ^ 0x10])
    return RxFrame(data, rx_error)


def arp_request(target_ip: int, *, op: int = dpkt.arp.ARP_OP_REQUEST,
                destination: bytes = BROADCAST, sender_mac: int = HOST_MAC,
                sender_ip: int = HOST_IP) -> RxFrame:
    arp = dpkt.arp.ARP(op=op, sha=mac_bytes(sender_mac), spa=ip_bytes(sender_ip),
                       tha=bytes(6), tpa=ip_bytes(target_ip))
    return ethernet(bytes(arp), ETHERTYPE_ARP, destination=destination, source=sender_mac)


def _ipv4(payload, protocol: int, *, destination_ip: int, source_ip: int = HOST_IP,
          identification: int = 0, more_fragments: bool = False, options: bytes = b"",
          bad_checksum: bool = False) -> bytes:
    packet = dpkt.ip.IP(src=ip_bytes(source_ip), dst=ip_bytes(destination_ip), p=protocol,
                        id=identification, ttl=64, data=payload)
    packet.df = 1                   # as Linux sends pings and small datagrams
    packet.mf = int(more_fragments)
    if options:
        packet.opts = options
        packet.hl = 5 + len(options) // 4
    data = bytes(packet)
    if bad_checksum:
        data = data[:10] + bytes([data[10] ^ 0x01]) + data[11:]
    return data


def ping(data: bytes, *, identifier: int = 0x1234, sequence: int = 1,
         destination_ip: int | None = None, config: EthernetConfig = _DEFAULT_CONFIG,
         identification: int = 7, bad_icmp_checksum: bool = False, icmp_type: int = 8,
         **frame) -> RxFrame:
    icmp = dpkt.icmp.ICMP(type=icmp_type, code=0,
                          data=dpkt.icmp.ICMP.Echo(id=identifier, seq=sequence, data=data))
    message = bytes(icmp)
    if bad_icmp_checksum:
        message = message[:2] + bytes([message[2] ^ 0x40]) + message[3:]
    packet = _ipv4(message, IP_PROTOCOL_ICMP, identification=identification,
                   destination_ip=config.ip if destination_ip is None else destination_ip)
    frame.setdefault("destination", mac_bytes(config.mac))
    return ethernet(packet, ETHERTYPE_IPV4, **frame)


def udp(payload: bytes, *, destination_port: int, source_port: int = HOST_PORT,
        destination_ip: int | None = None, config: EthernetConfig = _DEFAULT_CONFIG,
        source_ip: int = HOST_IP, ip_options: dict | None = None, **frame) -> RxFrame:
    datagram = dpkt.udp.UDP(sport=source_port, dport=destination_port, data=payload,
                            ulen=8 + len(payload))      # dpkt leaves ulen at 8 otherwise
    packet = _ipv4(datagram, IP_PROTOCOL_UDP, source_ip=source_ip,
                   destination_ip=config.ip if destination_ip is None else destination_ip,
                   **(ip_options or {}))
    frame.setdefault("destination", mac_bytes(config.mac))
    return ethernet(packet, ETHERTYPE_IPV4, **frame)


def command_datagram(tag: int, *, config: EthernetConfig = _DEFAULT_CONFIG,
                     **options) -> RxFrame:
    """A UDP datagram to the control port carrying one COMMAND wire frame."""
    command = encode_command(tag & 0xFF, tag % 7, CommandOp.WRITE if tag % 2 else CommandOp.READ,
                             tag * 2654435761 & 0xFFFFFFFF)
    options.setdefault("destination_port", config.control_port)
    return udp(command, config=config, **options)


def catalogue(config: EthernetConfig = _DEFAULT_CONFIG) -> list[RxFrame]:
    """One frame of every kind the receive path tells apart, in a fixed order."""
    board_mac = mac_bytes(config.mac)
    ipv6 = bytes(40)
    return [
        arp_request(config.ip),                                       # answered
        arp_request(OTHER_IP),                                        # dropped_ip
        arp_request(config.ip, destination=board_mac),                # unicast: answered
        arp_request(config.ip, op=dpkt.arp.ARP_OP_REPLY),             # dropped_other
        ping(b"abcdefgh" * 4, config=config),                         # answered
        ping(b"odd", sequence=2, config=config),                      # odd length
        ping(bytes(range(256)) * 5 + bytes(192), sequence=3,         # 1480-byte message:
             config=config),                                          # 1518-byte frame
        ping(b"x" * 20, bad_icmp_checksum=True, config=config),       # dropped_other
        ping(b"x" * 20, icmp_type=13, config=config),                 # timestamp: other
        ping(b"x" * 20, destination_ip=OTHER_IP, config=config),      # dropped_ip
        command_datagram(1, config=config),                           # datagram
        command_datagram(2, config=config, source_port=50_001),       # datagram
        command_datagram(3, config=config, destination_port=config.data_port),  # port
        command_datagram(4, config=config, destination_ip=OTHER_IP),  # dropped_ip
        command_datagram(5, config=config, destination=mac_bytes(OTHER_MAC)),  # mac
        command_datagram(6, config=config, destination=BROADCAST),    # mac (not ARP)
        command_datagram(7, config=config, ip_options={"bad_checksum": True}),  # other
        command_datagram(8, config=config, ip_options={"options": b"\x01\x01\x01\x00"}),
        command_datagram(9, config=config, ip_options={"more_fragments": True}),  # fragment
        udp(b"", destination_port=config.control_port, config=config),  # empty: datagram
        ethernet(ipv6, 0x86DD, destination=board_mac),                # dropped_other
        command_datagram(10, config=config, corrupt_fcs=True),        # fcs_errors
        command_datagram(11, config=config, rx_error=True),           # fcs_errors
        arp_request(config.ip).__class__(with_fcs(bytes(40))),        # runt (44 bytes)
        ethernet(bytes(1505), ETHERTYPE_IPV4, destination=board_mac),  # giant (1523)
        ethernet(bytes(1501), 0x88B5, destination=board_mac),         # 1519: giant
        ethernet(bytes(1500), 0x88B5, destination=board_mac),         # 1518: other
        command_datagram(12, config=config),                          # datagram
    ]


def random_mix(seed: int, count: int, config: EthernetConfig = _DEFAULT_CONFIG,
               max_ping_bytes: int = 600) -> list[RxFrame]:
    """``count`` frames drawn at random from the kinds of :func:`catalogue`, with random
    payloads, senders and lengths."""
    rng = random.Random(seed)
    frames: list[RxFrame] = []
    for _ in range(count):
        kind = rng.randrange(10)
        sender = dict(sender_mac=rng.randrange(1 << 47) << 1, sender_ip=rng.randrange(1 << 31))
        if kind == 0:
            frames.append(arp_request(rng.choice([config.ip, OTHER_IP]), **sender))
        elif kind in (1, 2):
            frames.append(ping(rng.randbytes(rng.randrange(max_ping_bytes)),
                               identifier=rng.randrange(1 << 16),
                               sequence=rng.randrange(1 << 16),
                               identification=rng.randrange(1 << 16), config=config,
                               bad_icmp_checksum=rng.random() < 0.1))
        elif kind in (3, 4, 5, 6):
            port = config.control_port if rng.random() < 0.8 else rng.randrange(1, 1 << 16)
            frames.append(command_datagram(rng.randrange(256), config=config,
                                           source_port=rng.randrange(1024, 1 << 16),
                                           source_ip=rng.randrange(1, 1 << 31),
                                           source=rng.randrange(1 << 47) << 1,
                                           destination_port=port))
        elif kind == 7:
            frames.append(udp(rng.randbytes(rng.randrange(400)),
                              destination_port=config.control_port, config=config,
                              corrupt_fcs=rng.random() < 0.5))
        elif kind == 8:
            frames.append(command_datagram(rng.randrange(256), config=config,
                                           destination=mac_bytes(OTHER_MAC)))
        else:
            length = rng.choice([rng.randrange(20, 60), rng.randrange(1515, 1530)])
            frames.append(RxFrame(with_fcs(rng.randbytes(length))))
    return frames
