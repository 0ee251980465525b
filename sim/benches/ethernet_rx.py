"""Ethernet receive path bench: RGMII pins in, ARP/echo replies and command bytes out.

An RGMII PHY model drives frames built with dpkt (ARP requests for the board and for
another IP, pings small and of the largest size, commands to the control port, datagrams
to another port, IP and MAC, bad FCS, PHY errors, runts, giants, malformed IPv4) on both
clock edges, back to back with the minimum gap. Proves that the reply frames and the
command byte stream equal the golden model's exactly (each reply is also parsed by dpkt:
addresses, lengths, IPv4 and ICMP checksums), that the learned-sender outputs name the last
datagram's sender, and that every counter equals the model's — with the reply and command
streams stalled in a pattern when the case asks for it.
"""

import itertools

import cocotb
import dpkt

from spikeforge.firmware.ethernet import (
    ETHERTYPE_ARP,
    INTER_FRAME_GAP_BYTES,
    EthernetConfig,
    ip_bytes,
    mac_bytes,
)
from spikeforge.sim.drivers import Bench, StreamSink
from spikeforge.sim.ethernet_rx_stimuli import catalogue, random_mix
from spikeforge.sim.models.ethernet_rx import COUNTERS, internet_checksum, receive
from spikeforge.sim.rgmii_driver import RGMIIDriver
from spikeforge.sim.runner import bench_parameters, report

STALLS = {
    "none": ([1], [1]),
    "some": ([1, 1, 0, 1, 0, 1, 1, 1, 0], [1, 0, 1, 1, 0, 0, 1]),
}


def _gap(frame_bytes: int) -> int:
    """Idle byte times after a frame: the minimum IFG, more after a large frame so that a
    stalled echo reply (twice the frame's bytes at worst) never fills the frame buffer."""
    return INTER_FRAME_GAP_BYTES + (3 * frame_bytes if frame_bytes > 200 else 0)


def _check_reply(reply: bytes, config: EthernetConfig) -> None:
    """Parse a reply independently of the model: it must be to a known protocol, from the
    board, and its checksums must hold."""
    frame = dpkt.ethernet.Ethernet(reply)
    assert frame.src == mac_bytes(config.mac), f"reply from {frame.src.hex()}"
    if frame.type == ETHERTYPE_ARP:
        arp = frame.data
        assert arp.op == dpkt.arp.ARP_OP_REPLY and arp.spa == ip_bytes(config.ip)
        assert arp.sha == mac_bytes(config.mac) and frame.dst == arp.tha
        return
    packet = frame.data
    assert isinstance(packet, dpkt.ip.IP), f"reply is neither ARP nor IPv4: {reply[:20].hex()}"
    header = reply[14:34]
    assert internet_checksum(header[:10] + bytes(2) + header[12:]) == packet.sum
    assert packet.src == ip_bytes(config.ip) and packet.len == len(reply) - 14
    icmp = packet.data
    assert isinstance(icmp, dpkt.icmp.ICMP) and icmp.type == dpkt.icmp.ICMP_ECHOREPLY
    message = reply[34:]
    assert internet_checksum(message[:2] + bytes(2) + message[4:]) == icmp.sum


@cocotb.test()
async def frames_from_the_pins(dut):
    params = bench_parameters()
    config = EthernetConfig()
    if params["frames"] == "catalogue":
        frames = catalogue(config)
    else:
        frames = random_mix(int(params["seed"]), int(params["count"]), config)
    reply_ready, command_ready = STALLS[params["stall"]]

    dut.board_mac.value = config.mac
    dut.board_ip.value = config.ip
    dut.control_port.value = config.control_port
    bench = Bench(dut)
    replies = StreamSink(dut, "reply", ready_pattern=itertools.cycle(reply_ready))
    commands = StreamSink(dut, "command", ready_pattern=itertools.cycle(command_ready))
    driver = RGMIIDriver(dut)
    await bench.reset()
    await bench.cycles(5)
    await driver.send((frame, _gap(len(frame.data))) for frame in frames)
    await bench.cycles(4000)

    expected = receive(frames, config)
    counters = {name: int(getattr(dut, name).value) for name in COUNTERS}
    assert counters == expected.counters, (
        "counters differ: " + ", ".join(f"{name} {counters[name]} (model {value})"
                                        for name, value in expected.counters.items()
                                        if counters[name] != value))

    got_replies, current = [], bytearray()
    for _, value in replies.items:
        current.append(value & 0xFF)
        if value >> 8 & 1:
            got_replies.append(bytes(current))
            current = bytearray()
    assert not current, f"a reply frame without its last byte ({len(current)} bytes)"
    assert len(got_replies) == len(expected.replies), (
        f"{len(got_replies)} reply frames, the model has {len(expected.replies)}")
    for number, (got, want) in enumerate(zip(got_replies, expected.replies)):
        assert got == want, (f"reply {number} differs:\n got  {got[:64].hex()}\n want "
                             f"{want[:64].hex()} (lengths {len(got)}, {len(want)})")
        _check_reply(got, config)

    got_commands = bytes(value for _, value in commands.items)
    want_commands = expected.command_bytes
    first = next((k for k, (a, b) in enumerate(zip(got_commands, want_commands)) if a != b),
                 None)
    assert got_commands == want_commands, (
        f"command bytes: {len(got_commands)} received, model {len(want_commands)}; first "
        f"difference at {first}")

    senders = [d for d in expected.datagrams if d.payload]
    if senders:
        last = senders[-1]
        assert int(dut.sender_valid.value) == 1
        got_sender = (int(dut.sender_mac.value), int(dut.sender_ip.value),
                      int(dut.sender_port.value))
        assert got_sender == (last.sender_mac, last.sender_ip, last.sender_port), (
            f"sender outputs {got_sender}, last datagram's sender "
            f"{(last.sender_mac, last.sender_ip, last.sender_port)}")

    report(items=len(frames), cycles=bench.cycle(), bytes_sent=driver.bytes_sent,
           replies=len(got_replies), command_bytes=len(got_commands), **counters)
