"""Ethernet TX bench: wire frames in, RGMII lines out, checked by a PHY model and dpkt.

The design is :class:`~spikeforge.hdl.ethernet.transmitter.EthernetTransmitter`. Random
wire frames built with the real encoder (:func:`~spikeforge.firmware.wire.build_frame`),
tiny to more than two IPv4 fragments, are offered with random stalls; ``host_valid`` is
low for stretches of them; other frames (ARP-sized, on ``frames[0]``) arrive at random
times. The PHY model (:class:`~spikeforge.sim.rgmii_monitor.RGMIIMonitor`) samples the
lines on both clock edges. Proves:

* every frame on the line is exactly the golden model's (:mod:`spikeforge.sim.models.
  ethernet_tx`): preamble, SFD, pad, FCS (zlib), in order per source, never interleaved;
* dpkt parses each one: IPv4 header checksum, total and UDP lengths; the fragments of each
  datagram reassemble to the wire frame fed in, byte for byte;
* datagrams sent and dropped (host not valid) are counted exactly as the model counts them;
* at least 12 idle cycles between frames, and no underrun ever.
"""

import random

import cocotb
import dpkt
from cocotb.triggers import FallingEdge, Timer

from spikeforge.firmware.ethernet import (
    DATA_PORT,
    INTER_FRAME_GAP_BYTES,
    EthernetConfig,
)
from spikeforge.firmware.wire import FrameType, build_frame
from spikeforge.sim.drivers import CLOCK_PERIOD_NS, Bench, StreamSource
from spikeforge.sim.models.ethernet_tx import EthernetTxModel, Host, ipv4_checksum, line_frame
from spikeforge.sim.rgmii_monitor import RGMIIMonitor
from spikeforge.sim.runner import bench_parameters, report

#: Payload sizes that sit on the edges: empty, minimum-frame padding, one fragment exactly
#: full (8 + 13 + 1459 = 1480), one byte over, and more than two fragments.
EDGE_PAYLOADS = [0, 1, 30, 31, 1458, 1459, 1460, 2947, 2948, 4500]


def _gaps(rng: random.Random, stall: float, longest: int):
    while True:
        yield rng.randrange(1, longest + 1) if rng.random() < stall else 0


def _ethernet_checks(frame: bytes) -> dpkt.ip.IP | None:
    """dpkt's view of one line frame's body; asserts the IPv4 header and lengths."""
    eth = dpkt.ethernet.Ethernet(frame)
    if eth.type != dpkt.ethernet.ETH_TYPE_IP:
        return None
    ip = eth.data
    header = bytes(ip)[:20]
    assert dpkt.in_cksum(header) == 0, f"IPv4 header checksum wrong in {frame[:42].hex()}"
    assert ip.sum == ipv4_checksum(header[:10] + b"\0\0" + header[12:])
    assert 14 + ip.len <= len(frame), "IPv4 total length runs past the frame"
    assert ip.p == dpkt.ip.IP_PROTO_UDP
    return ip


def _reassemble(packets: list[dpkt.ip.IP]) -> bytes:
    data = b""
    for index, ip in enumerate(packets):
        assert ip.offset * 8 == len(data), f"fragment at {ip.offset * 8}, expected {len(data)}"
        assert bool(ip.mf) == (index < len(packets) - 1), "MF flag wrong"
        data += bytes(ip)[20:ip.len]
    udp = dpkt.udp.UDP(data)
    assert udp.ulen == len(data), f"UDP length {udp.ulen}, datagram {len(data)} bytes"
    assert udp.sport == DATA_PORT and udp.sum == 0
    return bytes(udp.data)


@cocotb.test()
async def datagrams_on_the_line(dut):
    params = bench_parameters()
    rng = random.Random(int(params["seed"]))
    count = int(params["frames"])
    stall = float(params["stall"])
    extra_count = int(params["extra_frames"])
    ethernet = EthernetConfig()
    host = Host(mac=rng.randrange(1 << 47) << 1, ip=0xC0_A8_01_00 | rng.randrange(1, 255),
                port=rng.randrange(1024, 65536))

    sizes = EDGE_PAYLOADS + [rng.choice([rng.randrange(0, 64), rng.randrange(0, 5000)])
                             for _ in range(max(0, count - len(EDGE_PAYLOADS)))]
    rng.shuffle(sizes)
    wires = [build_frame(FrameType.DATA, seq, rng.randbytes(n)) for seq, n in enumerate(sizes)]
    # host_valid: low for the first frames (no host learned yet) and for a stretch later.
    off_from = rng.randrange(len(wires) // 3, 2 * len(wires) // 3)
    off = set(range(3)) | set(range(off_from, off_from + 4))
    hosts = [None if k in off else host for k in range(len(wires))]
    model = EthernetTxModel(ethernet)
    expected_data = model.send_all(wires, hosts)
    extras = [b"\xff" * 6 + ethernet.mac.to_bytes(6, "big") + b"\x08\x06"
              + rng.randbytes(rng.randrange(28, 80)) for _ in range(extra_count)]

    bench = Bench(dut)
    dut.host_mac.value = host.mac
    dut.host_ip.value = host.ip
    dut.host_port.value = host.port
    dut.host_valid.value = 0
    dut.local_mac.value = ethernet.mac
    dut.local_ip.value = ethernet.ip
    dut.local_port.value = ethernet.data_port
    phy = RGMIIMonitor(dut.tx_clk, dut.txd, dut.tx_ctl, CLOCK_PERIOD_NS)
    driver = StreamSource(dut, "data", idle=_gaps(rng, stall, 20))
    extra_driver = StreamSource(dut, "frames__0", idle=_gaps(rng, 0.002, 3000))
    await bench.reset()

    async def feed_extras():
        for body in extras:
            await extra_driver.send([b | (k == len(body) - 1) << 8 for k, b in enumerate(body)])

    extra_task = cocotb.start_soon(feed_extras())
    for wire, known in zip(wires, hosts, strict=True):
        # The host is sampled once per frame, after its header: change it between frames.
        await FallingEdge(dut.clk)
        dut.host_valid.value = int(known is not None)
        await driver.send(wire)
    await extra_task
    # Drain: the largest frame, its fragments, the FIFO.
    await Timer(20_000 * CLOCK_PERIOD_NS, unit="ns")

    line = phy.frames
    bad = [(k, f.problems) for k, f in enumerate(line) if f.problems]
    assert not bad, f"{len(bad)} bad frames on the line, first: {bad[0]}"
    assert not phy.glitches, f"tx_ctl rose without tx_en at {phy.glitches[:3]}"
    gaps = [round((b.start_ns - a.end_ns) / CLOCK_PERIOD_NS) - 1 for a, b in zip(line, line[1:])]
    assert all(g >= INTER_FRAME_GAP_BYTES for g in gaps), f"inter-frame gap {min(gaps)} < 12"

    extra_lines = {line_frame(body) for body in extras}
    got_extra = [f.line for f in line if f.line in extra_lines]
    got_data = [f.line for f in line if f.line not in extra_lines]
    assert got_extra == [line_frame(body) for body in extras], "ARP-sized frames wrong"
    want = [line_frame(frame) for frame in expected_data]
    first_difference = next((k for k, (a, b) in enumerate(zip(got_data, want)) if a != b),
                            min(len(got_data), len(want)))
    if got_data != want:
        detail = ""
        if first_difference < min(len(got_data), len(want)):
            a, b = got_data[first_difference], want[first_difference]
            at = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            detail = (f" ({len(a)} bytes, model {len(b)}; first differing byte {at}: "
                      f"line {a[at:at + 16].hex()} model {b[at:at + 16].hex()})")
        raise AssertionError(
            f"line carried {len(got_data)} data frames, model {len(want)}; first difference "
            f"at frame {first_difference}{detail}")

    # Independent checks: dpkt parses every frame, reassembles every datagram.
    datagrams: dict[int, list[dpkt.ip.IP]] = {}
    for frame in got_data:
        ip = _ethernet_checks(frame[8:-4])
        assert ip is not None, "a data frame is not IPv4"
        datagrams.setdefault(ip.id, []).append(ip)
    payloads = [_reassemble(datagrams[ident]) for ident in sorted(datagrams)]
    assert payloads == [w for w, h in zip(wires, hosts, strict=True) if h is not None], \
        "reassembled UDP payloads differ from the wire frames sent"

    sent, dropped = int(dut.datagrams_sent.value), int(dut.datagrams_dropped.value)
    assert (sent, dropped) == (model.datagrams_sent, model.datagrams_dropped), (
        f"counters sent/dropped {sent}/{dropped}, model {model.datagrams_sent}/"
        f"{model.datagrams_dropped}")
    assert int(dut.underruns.value) == 0, "the MAC ran out of bytes inside a frame"
    assert int(dut.frames_sent.value) == len(line)
    report(items=len(line), cycles=bench.cycle(), datagrams=sent, dropped=dropped,
           fragments=len(got_data), extra_frames=len(got_extra),
           wire_bytes=sum(len(w) for w in wires), min_gap=min(gaps) if gaps else None)
