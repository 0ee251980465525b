"""Authenticated control over Ethernet: who becomes the learned host of a keyed build.

The whole acquisition system of a keyed build (``config.control_key``) with the Ethernet
link, three clocks as in the ``system_ethernet`` bench. Command datagrams come from three
senders on the segment — an attacker, the host (with the key) and a second key holder —
and every reply, every data datagram and ETH_HOST_IP are checked against
:class:`~spikeforge.sim.models.learned_host.LearnedHostModel` (the decoder's golden model
decides each command's verdict):

1. From the attacker, before any host is learned: a plain read; a flood of plain reads (one
   datagram of more replies than the decoder's reply buffer holds); a plain write
   (``AUTH_REQUIRED``); a forged signed write (``AUTH_FAILED``). Nothing at all leaves the
   board — no reply, no data datagram — and ETH_HOST_IP reads 0: none of them made the
   attacker the host, and the flood did not jam the decoder.
2. From the host: a signed read. It is carried out (the flood's replies were discarded, not
   left to fill the buffer), its reply reaches the host, and the host is learned: the data
   datagrams follow, to its MAC, IP and port.
3. From the attacker again: the host's signed command replayed under a new tag
   (``REPLAYED``), a plain read, a forged write; from the second key holder a signed write.
   None moves the host: every reply and every data datagram still goes to the host.

Every frame on ``gmii_tx`` is checked (preamble, FCS, IPv4 checksum) and addressed to the
host; the replies equal the model's byte for byte and in order; AUTH_REFUSED,
REPLAYS_REFUSED, AUTH_COUNTER and COMMANDS_EXECUTED equal the model's.
"""

import cocotb
import dpkt
from cocotb.triggers import Timer

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.control_protocol import encode_authenticated_command
from spikeforge.firmware.ethernet import CONTROL_PORT, DATA_PORT, ip_bytes, mac_bytes
from spikeforge.firmware.framing import crc32
from spikeforge.firmware.registers import register
from spikeforge.firmware.wire import CommandOp, ReplyStatus, decode_reply, encode_command
from spikeforge.sim.benches.system_ethernet import (
    check_line,
    ones_sum_ok,
    send_gmii,
    start_ethernet_system,
)
from spikeforge.sim.models.control import CommandDecoderModel
from spikeforge.sim.models.learned_host import LearnedHostModel, Sender
from spikeforge.sim.runner import bench_parameters, report

ATTACKER = Sender(mac=0x02_66_66_66_66_66, ip=0xC0_A8_01_42, port=6666)
HOST = Sender(mac=0x02_AA_BB_CC_DD_EE, ip=0xC0_A8_01_0A, port=40123)
OTHER_HOLDER = Sender(mac=0x02_11_22_33_44_55, ip=0xC0_A8_01_0B, port=40999)
#: Sync cycles a datagram's commands take at most, each (bytes through the crossing, the
#: tag, carrying out and the reply), with margin.
CYCLES_PER_COMMAND = 80


def udp_frame(sender: Sender, board_mac: int, board_ip: int, payload: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=sender.port, dport=CONTROL_PORT, ulen=8 + len(payload),
                       data=payload)
    ip = dpkt.ip.IP(src=ip_bytes(sender.ip), dst=ip_bytes(board_ip), p=dpkt.ip.IP_PROTO_UDP,
                    ttl=64, id=7, data=udp)
    return bytes(dpkt.ethernet.Ethernet(dst=mac_bytes(board_mac), src=mac_bytes(sender.mac),
                                        type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


@cocotb.test()
async def only_a_verified_command_names_the_host(dut):
    params = bench_parameters()
    config = SystemConfig.from_dict(params["config"])
    key = config.control_key_bytes
    assert key is not None, "the auth_ethernet bench needs a keyed build"
    board_mac, board_ip = config.ethernet.mac, config.ethernet.ip
    registers, monitor, sync_period_ps = await start_ethernet_system(dut, config)

    model = LearnedHostModel(CommandDecoderModel(config))
    expected_replies: list[tuple[Sender, bytes]] = []
    tag = 0x100
    counter = 41

    def next_tag() -> int:
        nonlocal tag
        tag += 1
        return tag

    def plain(name: str, op: CommandOp = CommandOp.READ, value: int = 0) -> bytes:
        return encode_command(next_tag(), register(name).address, op, value)

    def signed(name: str, op: CommandOp, value: int = 0, *, use: int | None = None) -> bytes:
        nonlocal counter
        if use is None:
            counter += 1
            use = counter
        return encode_authenticated_command(next_tag(), register(name).address, op, value,
                                            use, key)

    def forged(name: str, value: int) -> bytes:
        frame = bytearray(signed(name, CommandOp.WRITE, value))
        frame[-5] ^= 0x01                                     # the tag's last byte
        frame[-4:] = crc32(bytes(frame[2:-4])).to_bytes(4, "little")
        return bytes(frame)

    async def send(sender: Sender, *commands: bytes) -> None:
        payload = b"".join(commands)
        expected_replies.extend(model.datagram(sender, payload))
        await send_gmii(dut, udp_frame(sender, board_mac, board_ip, payload))
        await Timer((CYCLES_PER_COMMAND * len(commands) + 200) * sync_period_ps, unit="ps")

    # 1. The attacker, before any host.
    await send(ATTACKER, plain("CHANNELS"))
    await send(ATTACKER, *(plain("IDENTITY") for _ in range(20)))      # 380 reply bytes
    await send(ATTACKER, plain("STREAM_ENABLE", CommandOp.WRITE, 0))
    await send(ATTACKER, forged("STREAM_ENABLE", 0))
    assert model.host is None and not expected_replies
    host_ip_before = await registers.read("ETH_HOST_IP")
    assert host_ip_before == 0, f"ETH_HOST_IP reads {host_ip_before:#x} before a signed command"
    assert not monitor.frames, (
        f"{len(monitor.frames)} frame(s) left the board before a signed command named a host")

    # 2. The host: one signed read.
    host_command = signed("CHANNELS", CommandOp.READ)
    await send(HOST, host_command)
    assert model.host == HOST

    # 3. Nothing moves it.
    replayed = bytearray(host_command)
    replayed[3:7] = next_tag().to_bytes(4, "little")                   # a new seq (tag)
    replayed[-4:] = crc32(bytes(replayed[2:-4])).to_bytes(4, "little")
    await send(ATTACKER, bytes(replayed))
    await send(ATTACKER, plain("CHANNELS"))
    await send(ATTACKER, forged("DETECT_DEAD_SAMPLES", 3))
    await send(OTHER_HOLDER, signed("DETECT_DEAD_SAMPLES", CommandOp.WRITE, 7))
    assert model.host == HOST

    frame_cycles = config.sweeps_per_frame * config.cycles_per_sample
    await Timer(2 * frame_cycles * sync_period_ps, unit="ps")
    await registers.write("STREAM_ENABLE", 0)
    await Timer(frame_cycles * sync_period_ps, unit="ps")
    counters = {name: await registers.read(name) for name in (
        "ETH_HOST_IP", "ETH_DATAGRAMS_SENT", "COMMANDS_EXECUTED", "AUTH_REFUSED",
        "REPLAYS_REFUSED", "AUTH_COUNTER")}

    # -- every frame on the line goes to the host ----------------------------------------------
    replies: list[tuple[Sender, bytes]] = []
    data = 0
    for line, error in monitor.frames:
        eth = check_line(line, error)
        assert eth.type == dpkt.ethernet.ETH_TYPE_IP, f"EtherType 0x{eth.type:04x}"
        ip = eth.data
        assert ones_sum_ok(bytes(eth)[14:34]), "bad IPv4 header checksum"
        assert ip.p == dpkt.ip.IP_PROTO_UDP, f"IP protocol {ip.p}"
        udp = ip.data
        to = Sender(mac=int.from_bytes(eth.dst, "big"), ip=int.from_bytes(ip.dst, "big"),
                    port=udp.dport)
        assert to == HOST, f"a datagram from port {udp.sport} went to {to}, not the host"
        if udp.sport == CONTROL_PORT:
            replies.append((to, bytes(udp.data)))
        else:
            assert udp.sport == DATA_PORT, f"a datagram from port {udp.sport}"
            data += 1
    assert data > 0, "no data datagram reached the host"
    assert counters["ETH_DATAGRAMS_SENT"] == data

    statuses = [decode_reply(int.from_bytes(r[3:7], "little"), r[9:-4]).status
                for _, r in expected_replies]
    assert statuses == [ReplyStatus.OK, ReplyStatus.REPLAYED, ReplyStatus.OK,
                        ReplyStatus.AUTH_FAILED, ReplyStatus.OK], f"model replies {statuses}"
    assert len(replies) == len(expected_replies), (
        f"{len(replies)} replies on the line, the model sends {len(expected_replies)}")
    for k, (got, want) in enumerate(zip(replies, expected_replies, strict=True)):
        assert got == want, f"reply {k}: {got[1].hex()} to {got[0]}, model {want[1].hex()}"

    decoder = model.decoder
    expected = {"ETH_HOST_IP": HOST.ip, **{name: decoder.counters[name] for name in (
        "COMMANDS_EXECUTED", "AUTH_REFUSED", "REPLAYS_REFUSED", "AUTH_COUNTER")}}
    for name, value in expected.items():
        assert counters[name] == value, f"{name} reads {counters[name]}, expected {value}"

    cycles = int(cocotb.utils.get_sim_time("ps") // sync_period_ps)
    report(items=len(replies) + data, cycles=cycles, replies=len(replies), data_datagrams=data,
           replies_discarded=model.discarded,
           commands_executed=counters["COMMANDS_EXECUTED"])
