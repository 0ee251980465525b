"""The Ethernet TX golden model, checked with an independent parser (dpkt)."""

import random
import struct
import zlib

import dpkt
import pytest

from spikeforge.firmware.errors import WireFormatError
from spikeforge.firmware.ethernet import (
    DATA_PORT,
    FRAGMENT_PAYLOAD_BYTES,
    MIN_FRAME_BYTES,
    MTU_BYTES,
    PREAMBLE_SFD,
    EthernetConfig,
)
from spikeforge.firmware.wire import FrameType, build_frame
from spikeforge.sim.models.ethernet_tx import (
    EthernetTxModel,
    Host,
    ipv4_checksum,
    line_frame,
    split_wire_frames,
)

HOST = Host(mac=0x3C_97_0E_11_22_33, ip=0xC0_A8_01_0A, port=50_123)


def _wire(payload_bytes: int, seq: int = 7) -> bytes:
    rng = random.Random(payload_bytes)
    return build_frame(FrameType.DATA, seq, bytes(rng.randrange(256) for _ in range(payload_bytes)))


def _reassemble(frames: list[bytes]) -> tuple[bytes, list[dpkt.ip.IP]]:
    """The UDP datagram's bytes from its fragments, parsed and checked by dpkt."""
    packets = []
    for frame in frames:
        eth = dpkt.ethernet.Ethernet(frame)
        assert eth.type == dpkt.ethernet.ETH_TYPE_IP
        ip = eth.data
        assert isinstance(ip, dpkt.ip.IP)
        header = bytes(ip)[:20]
        assert ip.sum == ipv4_checksum(header[:10] + b"\0\0" + header[12:])
        # The ones'-complement sum of a header with a valid checksum is 0xFFFF.
        assert dpkt.in_cksum(header) == 0
        assert ip.len == len(frame) - 14
        packets.append(ip)
    assert len({ip.id for ip in packets}) == 1
    packets.sort(key=lambda ip: ip.offset)  # dpkt: 8-byte units
    data = b""
    for index, ip in enumerate(packets):
        assert ip.offset * 8 == len(data)
        assert bool(ip.mf) == (index < len(packets) - 1)
        assert not ip.df
        body = bytes(ip.data) if index else bytes(ip)[20:]
        data += body
    return data, packets


@pytest.mark.parametrize("payload_bytes", [0, 1, 30, 1450, 1459, 1460, 1461, 2048, 4000])
def test_each_wire_frame_is_one_udp_datagram_that_reassembles_exactly(payload_bytes):
    wire = _wire(payload_bytes)
    model = EthernetTxModel()
    frames = model.send(wire, HOST)
    udp_bytes = 8 + len(wire)
    assert len(frames) == -(-udp_bytes // FRAGMENT_PAYLOAD_BYTES)
    assert all(len(frame) <= 14 + MTU_BYTES for frame in frames)
    data, packets = _reassemble(frames)
    udp = dpkt.udp.UDP(data)
    assert (udp.sport, udp.dport, udp.ulen, udp.sum) == (DATA_PORT, HOST.port, udp_bytes, 0)
    assert bytes(udp.data) == wire
    first = dpkt.ethernet.Ethernet(frames[0])
    assert first.dst == HOST.mac.to_bytes(6, "big")
    assert first.src == EthernetConfig().mac.to_bytes(6, "big")
    assert packets[0].src == EthernetConfig().ip.to_bytes(4, "big")
    assert packets[0].dst == HOST.ip.to_bytes(4, "big")
    assert packets[0].ttl == 64 and packets[0].p == dpkt.ip.IP_PROTO_UDP


def test_identification_counts_datagrams_sent_and_drops_are_counted():
    model = EthernetTxModel()
    wires = [_wire(n, seq) for seq, n in enumerate([10, 3000, 10, 10, 2000])]
    hosts = [HOST, HOST, None, None, HOST]
    frames = model.send_all(wires, hosts)
    ids = [dpkt.ethernet.Ethernet(f).data.id for f in frames]
    assert ids == [0, 1, 1, 1, 2, 2]
    assert (model.datagrams_sent, model.datagrams_dropped) == (3, 2)


def test_line_frame_has_preamble_pad_and_a_fcs_that_zlib_checks():
    frame = model_frame = EthernetTxModel().send(_wire(1), HOST)[0]
    assert len(frame) < MIN_FRAME_BYTES
    line = line_frame(model_frame)
    assert line[:8] == PREAMBLE_SFD
    body, fcs = line[8:-4], line[-4:]
    assert len(body) == MIN_FRAME_BYTES and body[len(frame):] == bytes(len(body) - len(frame))
    assert int.from_bytes(fcs, "little") == zlib.crc32(body)
    # The residue property a receiver uses: CRC over frame and FCS is constant.
    assert zlib.crc32(body + fcs) == 0x2144DF1C
    # dpkt parses the padded frame and ignores the pad (IP total length says where it ends).
    udp = dpkt.ethernet.Ethernet(body).data.data
    assert bytes(udp.data) == _wire(1)


def test_split_wire_frames_finds_each_frame_and_rejects_a_torn_stream():
    wires = [_wire(n, seq) for seq, n in enumerate([0, 5, 700])]
    assert split_wire_frames(b"".join(wires)) == wires
    with pytest.raises(WireFormatError, match="runs past"):
        split_wire_frames(b"".join(wires)[:-1])
    with pytest.raises(WireFormatError, match="header"):
        split_wire_frames(wires[0] + wires[1][:4])


def test_a_frame_too_long_for_one_datagram_is_dropped_and_counted():
    model = EthernetTxModel()
    wire = struct.pack("<2sBIH", b"\xa5\x5a", 1, 0, 0xFFFF) + bytes(0xFFFF + 4)
    assert model.send(wire, HOST) == []
    assert model.datagrams_dropped == 1 and model.identification == 0
