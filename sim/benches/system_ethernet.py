"""System bench over Ethernet: the whole acquisition top, from the test source to GMII bytes.

Three clocks: ``sync`` at the configuration's clock, ``link`` and ``eth_rx`` near 125 MHz
(slightly apart, as the board's oscillator and the PHY's recovered clock are), none an
integer multiple of another. The bench, as a host on the segment:

1. asks for the board's MAC (ARP request, broadcast) and pings it; both are answered;
2. sends a UDP datagram to a foreign port and a frame with a bad FCS; both are counted;
3. sends a COMMAND (:func:`~spikeforge.firmware.wire.encode_command`, read CHANNELS) to the
   control port; the REPLY comes back from the control port to the sender, and the sender
   is now the learned host (ETH_HOST_IP);
4. collects the data datagrams, stops the stream, and checks: every frame on ``gmii_tx``
   has preamble/SFD, the minimum length and a good FCS; IPv4 header checksum and UDP
   length are right (dpkt parses them); the data datagrams' payloads, in order, are the
   framer golden model's wire frames from the first one sent after the host was learned
   (the earlier ones dropped whole and counted in ETH_DATAGRAMS_DROPPED), one per datagram;
   the host's own decoder (:class:`~spikeforge.host.frames.StreamDecoder`) turns them into
   exactly the test source's samples with no sequence gap; the counters read over the
   register bus agree.

Timing differs from the UART's (the link is ~100x faster), so bytes and frame order are
compared, not cycles; the case's configuration has no detector, so no EVENTS frame can
change places with a DATA frame.
"""

import zlib

import cocotb
import dpkt
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, Timer

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.ethernet import (
    CONTROL_PORT,
    DATA_PORT,
    FCS_BYTES,
    MIN_FRAME_BYTES,
    PREAMBLE_SFD,
    ip_bytes,
    mac_bytes,
)
from spikeforge.firmware.registers import register
from spikeforge.firmware.wire import (
    HEADER,
    CommandOp,
    FrameType,
    ReplyStatus,
    decode_reply,
    encode_command,
)
from spikeforge.host.frames import DataBlock, Identity, StreamDecoder
from spikeforge.sim.drivers import attach_flash
from spikeforge.sim.models.ethernet_tx import split_wire_frames
from spikeforge.sim.models.framer import frame_stream
from spikeforge.sim.models.source import source_signal
from spikeforge.sim.runner import bench_parameters, report

LINK_PERIOD_PS = 8000
RX_PERIOD_PS = 7998            # the PHY's clock, 250 ppm fast of the board's
HOST_MAC = 0x02_AA_BB_CC_DD_EE
HOST_IP = 0xC0_A8_01_0A         # 192.168.1.10
HOST_PORT = 40123


def ones_sum_ok(data: bytes) -> bool:
    total = sum(int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


class GMIIMonitor:
    """Collects each burst of ``gmii_tx_en`` as the bytes a PHY transmits (sampled mid-cycle:
    the values the link clock's rising edge put out)."""

    def __init__(self, dut):
        self.dut = dut
        self.frames: list[tuple[bytes, bool]] = []
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.gmii_tx_en)
            line, error = bytearray(), False
            while True:
                await FallingEdge(dut.link_clk)
                if not int(dut.gmii_tx_en.value):
                    break
                line.append(int(dut.gmii_tx_data.value))
                error |= bool(int(dut.gmii_tx_er.value))
            self.frames.append((bytes(line), error))


async def send_gmii(dut, body: bytes, *, bad_fcs: bool = False) -> None:
    """One frame on ``gmii_rx``: preamble, SFD, ``body`` padded to 60 bytes, FCS, then the
    inter-frame gap; values change on the falling edge of the receive clock."""
    body = body.ljust(MIN_FRAME_BYTES, b"\0")
    fcs = zlib.crc32(body) ^ (0xFF if bad_fcs else 0)
    line = PREAMBLE_SFD + body + fcs.to_bytes(FCS_BYTES, "little")
    for byte in line:
        await FallingEdge(dut.eth_rx_clk)
        dut.gmii_rx_dv.value = 1
        dut.gmii_rx_data.value = byte
    await FallingEdge(dut.eth_rx_clk)
    dut.gmii_rx_dv.value = 0
    for _ in range(12):
        await FallingEdge(dut.eth_rx_clk)


def udp_frame(board_mac: int, board_ip: int, port: int, payload: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=HOST_PORT, dport=port, ulen=8 + len(payload), data=payload)
    ip = dpkt.ip.IP(src=ip_bytes(HOST_IP), dst=ip_bytes(board_ip), p=dpkt.ip.IP_PROTO_UDP,
                    ttl=64, id=7, data=udp)
    return bytes(dpkt.ethernet.Ethernet(dst=mac_bytes(board_mac), src=mac_bytes(HOST_MAC),
                                        type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


class Registers:
    def __init__(self, dut):
        self.dut = dut
        dut.registers__w_en.value = 0
        dut.registers__addr.value = 0
        dut.registers__w_data.value = 0

    async def read(self, name: str) -> int:
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.registers__addr.value = register(name).address
        await FallingEdge(dut.clk)
        await ReadOnly()
        return int(dut.registers__r_data.value)

    async def write(self, name: str, value: int) -> None:
        dut = self.dut
        await FallingEdge(dut.clk)
        dut.registers__addr.value = register(name).address
        dut.registers__w_data.value = value
        await FallingEdge(dut.clk)
        dut.registers__w_en.value = 1
        await FallingEdge(dut.clk)
        dut.registers__w_en.value = 0


def check_line(line: bytes, error: bool) -> dpkt.ethernet.Ethernet:
    assert not error, "a frame carried gmii_tx_er"
    assert line[:8] == PREAMBLE_SFD, f"preamble/SFD {line[:8].hex()}"
    body, fcs = line[8:-FCS_BYTES], line[-FCS_BYTES:]
    assert len(body) >= MIN_FRAME_BYTES, f"runt of {len(body)} bytes"
    assert int.from_bytes(fcs, "little") == zlib.crc32(body), "bad FCS"
    return dpkt.ethernet.Ethernet(body)


async def start_ethernet_system(dut, config: SystemConfig
                                ) -> tuple["Registers", "GMIIMonitor", int]:
    """Start the three clocks (sync at ``config.clock_hz``, link, eth_rx), idle the GMII
    receive pins and release the three resets; returns the register port, the transmit
    monitor (started before the resets are released) and the sync period in ps."""
    sync_period_ps = 2 * round(1e12 / config.clock_hz / 2)
    cocotb.start_soon(Clock(dut.clk, sync_period_ps, unit="ps").start())
    cocotb.start_soon(Clock(dut.link_clk, LINK_PERIOD_PS, unit="ps").start())
    cocotb.start_soon(Clock(dut.eth_rx_clk, RX_PERIOD_PS, unit="ps").start())
    attach_flash(dut)
    dut.gmii_rx_dv.value = 0
    dut.gmii_rx_er.value = 0
    dut.gmii_rx_data.value = 0
    registers = Registers(dut)
    monitor = GMIIMonitor(dut)
    for reset in (dut.rst, dut.link_rst, dut.eth_rx_rst):
        reset.value = 1
    await Timer(4 * sync_period_ps, unit="ps")
    for reset in (dut.rst, dut.link_rst, dut.eth_rx_rst):
        reset.value = 0
    return registers, monitor, sync_period_ps


@cocotb.test()
async def udp_payloads_match_model(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    frame_periods = int(params["frame_periods"])
    board_mac, board_ip = config.ethernet.mac, config.ethernet.ip
    registers, monitor, sync_period_ps = await start_ethernet_system(dut, config)

    # 1. ARP and ping.
    arp = dpkt.arp.ARP(sha=mac_bytes(HOST_MAC), spa=ip_bytes(HOST_IP), tha=bytes(6),
                       tpa=ip_bytes(board_ip), op=dpkt.arp.ARP_OP_REQUEST)
    await send_gmii(dut, bytes(dpkt.ethernet.Ethernet(
        dst=b"\xff" * 6, src=mac_bytes(HOST_MAC), type=dpkt.ethernet.ETH_TYPE_ARP, data=arp)))
    echo = dpkt.icmp.ICMP.Echo(id=0x1234, seq=5, data=b"spikeforge ping " * 3)
    icmp = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO, code=0, data=echo)
    ping_ip = dpkt.ip.IP(src=ip_bytes(HOST_IP), dst=ip_bytes(board_ip), ttl=64, id=99,
                         p=dpkt.ip.IP_PROTO_ICMP, data=icmp)
    await send_gmii(dut, bytes(dpkt.ethernet.Ethernet(
        dst=mac_bytes(board_mac), src=mac_bytes(HOST_MAC), type=dpkt.ethernet.ETH_TYPE_IP,
        data=ping_ip)))
    # 2. Filtered and broken frames.
    await send_gmii(dut, udp_frame(board_mac, board_ip, 9999, b"not for the board"))
    await send_gmii(dut, udp_frame(board_mac, board_ip, CONTROL_PORT, b"x" * 20), bad_fcs=True)
    # 3. A command: read CHANNELS.
    tag = 0x51
    await send_gmii(dut, udp_frame(board_mac, board_ip, CONTROL_PORT,
                                   encode_command(tag, register("CHANNELS").address,
                                                  CommandOp.READ)))

    # 4. Data, then stop the stream and let the link drain.
    frame_cycles = config.sweeps_per_frame * config.cycles_per_sample
    await Timer(frame_periods * frame_cycles * sync_period_ps, unit="ps")
    await registers.write("STREAM_ENABLE", 0)
    stopped_at_ps = cocotb.utils.get_sim_time("ps")
    await Timer(2 * frame_cycles * sync_period_ps, unit="ps")
    counters = {name: await registers.read(name) for name in (
        "ETH_DATAGRAMS_SENT", "ETH_DATAGRAMS_DROPPED", "ETH_FCS_ERRORS", "ETH_ARP_ANSWERED",
        "ETH_PING_ANSWERED", "ETH_RX_FILTERED", "ETH_RX_OVERFLOWS", "ETH_HOST_IP",
        "FRAMES_DROPPED", "FRAMES_SENT", "COMMANDS_EXECUTED", "COMMAND_ERRORS")}

    # -- every frame on the line ---------------------------------------------------------------
    arp_replies, echo_replies, replies, data = [], [], [], []
    for line, error in monitor.frames:
        eth = check_line(line, error)
        assert eth.dst == mac_bytes(HOST_MAC), f"a frame to {eth.dst.hex()}, not the host"
        assert eth.src == mac_bytes(board_mac), f"a frame from {eth.src.hex()}"
        if eth.type == dpkt.ethernet.ETH_TYPE_ARP:
            arp_replies.append(eth.data)
            continue
        assert eth.type == dpkt.ethernet.ETH_TYPE_IP, f"EtherType 0x{eth.type:04x}"
        ip = eth.data
        header = bytes(eth)[14:34]
        assert ones_sum_ok(header), "bad IPv4 header checksum"
        assert ip.src == ip_bytes(board_ip) and ip.dst == ip_bytes(HOST_IP)
        assert ip.off & 0x3FFF == 0, "a fragment: no frame of this configuration needs one"
        if ip.p == dpkt.ip.IP_PROTO_ICMP:
            echo_replies.append(ip.data)
            continue
        assert ip.p == dpkt.ip.IP_PROTO_UDP, f"IP protocol {ip.p}"
        udp = ip.data
        assert udp.ulen == 8 + len(udp.data), f"UDP length {udp.ulen} for {len(udp.data)} bytes"
        assert udp.dport == HOST_PORT, f"a datagram to port {udp.dport}"
        if udp.sport == CONTROL_PORT:
            replies.append(bytes(udp.data))
        else:
            assert udp.sport == DATA_PORT, f"a datagram from port {udp.sport}"
            data.append(bytes(udp.data))

    assert len(arp_replies) == 1, f"{len(arp_replies)} ARP replies, expected 1"
    reply = arp_replies[0]
    assert (reply.op, reply.sha, reply.spa, reply.tha, reply.tpa) == (
        dpkt.arp.ARP_OP_REPLY, mac_bytes(board_mac), ip_bytes(board_ip), mac_bytes(HOST_MAC),
        ip_bytes(HOST_IP)), "ARP reply fields"
    assert len(echo_replies) == 1, f"{len(echo_replies)} echo replies, expected 1"
    answer = echo_replies[0]
    assert answer.type == dpkt.icmp.ICMP_ECHOREPLY and answer.code == 0
    assert (answer.data.id, answer.data.seq, answer.data.data) == (echo.id, echo.seq, echo.data)
    assert ones_sum_ok(bytes(answer)), "bad ICMP checksum"

    assert len(replies) == 1, f"{len(replies)} command replies, expected 1"
    frame = replies[0]
    frame_type, seq, length = HEADER.unpack_from(frame, 2)
    assert frame_type == FrameType.REPLY and seq == tag
    assert zlib.crc32(frame[2:-4]) == int.from_bytes(frame[-4:], "little"), "reply CRC"
    answered = decode_reply(seq, frame[2 + HEADER.size:-4])
    assert (answered.address, answered.status, answered.value) == (
        register("CHANNELS").address, ReplyStatus.OK, config.channels), f"reply {answered}"

    # -- data: the model's frames, one per datagram, from the first after learning -----------
    sweeps = (frame_periods + 2) * config.sweeps_per_frame
    samples = source_signal(config, sweeps).samples
    schedule = frame_stream(config, samples)
    expected = split_wire_frames(bytes(schedule.data))
    skipped = counters["ETH_DATAGRAMS_DROPPED"]
    assert data, "no data datagram arrived"
    assert skipped > 0, "frames before the host was learned must be dropped, none were"
    for k, got in enumerate(data):
        assert got == expected[skipped + k], (
            f"datagram {k} (model frame {skipped + k}) differs from the model's wire frame")
    assert counters["ETH_DATAGRAMS_SENT"] == len(data), (
        f"ETH_DATAGRAMS_SENT {counters['ETH_DATAGRAMS_SENT']}, datagrams seen {len(data)}")
    assert counters["FRAMES_DROPPED"] == 0 and not schedule.dropped_slots[:len(data) + skipped]
    decoder = StreamDecoder(config)
    items = decoder.feed(b"".join(data))
    blocks = [i for i in items if isinstance(i, DataBlock)]
    identities = [i for i in items if isinstance(i, Identity)]
    assert blocks, "no DATA frame decoded"
    for block in blocks:
        np.testing.assert_array_equal(
            block.samples,
            samples[block.first_sample:block.first_sample + config.sweeps_per_frame],
            err_msg=f"frame {block.seq} decodes to samples the source did not emit")
    assert decoder.stats.sequence_gaps == 0 and decoder.stats.crc_errors == 0
    assert all(i.config == config for i in identities), "identity differs from the build"

    expected_counters = {"ETH_FCS_ERRORS": 1, "ETH_ARP_ANSWERED": 1, "ETH_PING_ANSWERED": 1,
                         "ETH_RX_FILTERED": 1, "ETH_RX_OVERFLOWS": 0, "ETH_HOST_IP": HOST_IP,
                         "COMMANDS_EXECUTED": 1, "COMMAND_ERRORS": 0}
    for name, value in expected_counters.items():
        assert counters[name] == value, f"{name} reads {counters[name]}, expected {value}"

    report(items=sum(len(d) for d in data), cycles=int(stopped_at_ps // sync_period_ps),
           datagrams=len(data), dropped_before_host=skipped, data_blocks=len(blocks),
           identities=len(identities), line_frames=len(monitor.frames))
