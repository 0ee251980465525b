"""The virtual board on UDP: the Verilated design's Gigabit Ethernet frames served as real
datagrams on loopback (``main_eth.cpp``), recorded by ``spikeforge record --port udp://``, and
the link's frames captured to a pcap file that an independent reader (dpkt) parses.

The harness is tested on its own against :class:`EthernetEcho` (real MAC cores, an echo in
between), then with the acquisition system itself."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.ethernet import (
    CONTROL_PORT,
    DATA_PORT,
    FCS_BYTES,
    INTER_FRAME_GAP_BYTES,
    PREAMBLE_SFD,
    EthernetConfig,
)
from spikeforge.sim.models.source import source_signal
from spikeforge.sim.virtual_board import (
    HOST_MAC,
    VirtualBoard,
    config_from_sim_url,
    host_ip_for,
    sim_url_capture,
)

dpkt = pytest.importorskip("dpkt")
pytestmark = pytest.mark.sim

NS_PER_BYTE = 8          # 1000 Mb/s


def _read_pcap(path: Path) -> list[tuple[int, "dpkt.ethernet.Ethernet", int]]:
    """(timestamp in ns, parsed frame, frame length) of every record, checking the header:
    nanosecond pcap, LINKTYPE_ETHERNET."""
    with open(path, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        assert reader.datalink() == dpkt.pcap.DLT_EN10MB
        records = []
        for timestamp, buffer in reader:
            records.append((round(float(timestamp) * 1e9), dpkt.ethernet.Ethernet(buffer),
                            len(buffer)))
    assert path.read_bytes()[:4] == (0xA1B23C4D).to_bytes(4, "little")
    return records


def _ipv4_checksum_ok(ip: "dpkt.ip.IP") -> bool:
    header = bytes(ip)[:ip.hl * 4]
    return dpkt.in_cksum(header) == 0


def _udp_datagrams(records, source_ip: str) -> list[tuple[int, int, bytes]]:
    """(source port, destination port, payload) of the UDP datagrams from ``source_ip`` in
    the capture, IPv4 fragments reassembled here (in the order their last fragment came);
    the fragments of a datagram cut short by stopping the board are left out."""
    pending: dict[int, list] = {}
    out = []
    for _, frame, _ in records:
        ip = frame.data
        if not isinstance(ip, dpkt.ip.IP) or socket.inet_ntoa(ip.src) != source_ip:
            continue
        assert _ipv4_checksum_ok(ip)
        offset = ip.offset * 8           # the header field counts 8-byte units
        more = bool(ip.mf)
        payload = bytes(ip.data) if offset or more else bytes(ip.udp)
        parts = pending.setdefault(ip.id, [])
        parts.append((offset, payload))
        if more:
            continue
        del pending[ip.id]
        whole = b"".join(p for _, p in sorted(parts))
        udp = dpkt.udp.UDP(whole)
        assert udp.ulen == len(whole)
        out.append((udp.sport, udp.dport, bytes(udp.data)))
    # The board may be stopped between two fragments of its last datagram, no earlier.
    assert len(pending) <= 1, "a datagram's fragments never completed"
    return out


def _stats(line: str) -> dict[str, int]:
    fields = line.split()
    return {fields[i]: float(fields[i + 1]) for i in range(0, len(fields) - 1, 2)}


# -- the harness alone, against the echo stand-in ---------------------------------------------


def test_the_harness_serves_gmii_frames_as_datagrams_and_captures_them(tmp_path):
    """Each datagram to the control port goes into the design as a frame to the board's
    MAC/IP/control port from the host's real source port; the two echoes come back as
    datagrams from the control port and from the data port on 127.0.0.1; the capture holds
    all three frames of each exchange, parsed by dpkt, in simulated time."""
    from spikeforge.sim.virtual_board.ethernet_echo import EthernetEcho

    config = SystemConfig(link="ethernet", ethernet=EthernetConfig(ip="10.1.2.3"))
    capture = tmp_path / "link.pcap"
    board = VirtualBoard.start(config, system=EthernetEcho, pcap=capture)
    payloads = [b"x", bytes(range(256)) * 2, bytes(1472)]    # 1472: the most one frame holds
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    host.settimeout(20)
    control = ("127.0.0.1", int(board.url.rsplit(":", 1)[1]))
    data_sources = set()
    try:
        assert board.url.startswith("udp://127.0.0.1:")
        for payload in payloads:
            host.sendto(payload, control)
            replies = [host.recvfrom(65536) for _ in range(2)]
            assert [r[0] for r in replies] == [payload, payload]
            assert replies[0][1] == control
            assert replies[1][1][0] == "127.0.0.1" and replies[1][1] != control
            data_sources.add(replies[1][1])
    finally:
        host.close()
        stats = _stats(board.stop())
    assert len(data_sources) == 1, "the data socket is one socket"
    assert stats["datagrams_in"] == 3 and stats["datagrams_out"] == 6
    assert stats["fcs_errors"] == stats["tx_errors"] == stats["ip_errors"] == 0

    records = _read_pcap(capture)
    assert len(records) == 9
    times = [t for t, _, _ in records]
    assert times == sorted(times) and times[0] > 0
    host_port = None
    board_ip = socket.inet_aton(config.ethernet.ip_text)
    for index, payload in enumerate(payloads):
        sent, echo, second = records[3 * index:3 * index + 3]
        frame = sent[1]
        assert frame.dst == config.ethernet.mac.to_bytes(6, "big")
        assert frame.src == HOST_MAC.to_bytes(6, "big")
        assert frame.data.dst == board_ip
        assert socket.inet_ntoa(frame.data.src) == host_ip_for(config) == "10.1.2.1"
        assert frame.data.udp.dport == CONTROL_PORT and frame.data.udp.data == payload
        host_port = host_port or frame.data.udp.sport
        assert frame.data.udp.sport == host_port
        assert _ipv4_checksum_ok(frame.data)
        assert sent[2] == max(60, 14 + 20 + 8 + len(payload))
        for (_, reply, _), port in ((echo, CONTROL_PORT), (second, DATA_PORT)):
            assert reply.dst == HOST_MAC.to_bytes(6, "big")
            assert reply.data.src == board_ip
            assert (reply.data.udp.sport, reply.data.udp.dport) == (port, host_port)
            assert reply.data.udp.data == payload
        # Stamped at each frame's last byte: the second echo follows the first after an
        # inter-frame gap and its own preamble, bytes and FCS, 8 ns per byte.
        wire_bytes = len(PREAMBLE_SFD) + second[2] + FCS_BYTES
        assert second[0] - echo[0] >= (wire_bytes + INTER_FRAME_GAP_BYTES) * NS_PER_BYTE
        assert echo[0] - sent[0] >= (len(PREAMBLE_SFD) + echo[2] + FCS_BYTES) * NS_PER_BYTE


def test_sim_urls_name_the_udp_link_and_the_capture():
    config = config_from_sim_url("sim://?link=udp&channels=8")
    assert config.link == "ethernet" and config.channels == 8
    assert config.identity_interval_frames == 8        # found within the host's wait
    assert config_from_sim_url("sim://?link=udp&identity_interval_frames=32"
                               ).identity_interval_frames == 32
    assert config_from_sim_url("sim://?channels=8").link == "uart"
    assert sim_url_capture("sim://?link=udp&pcap=captures/x.pcap") == Path("captures/x.pcap")
    assert sim_url_capture("sim://?link=udp") is None
    from spikeforge.firmware.errors import ConfigError

    with pytest.raises(ConfigError, match="link=udp"):
        config_from_sim_url("sim://?link=wifi")


def test_a_capture_needs_the_ethernet_link(tmp_path):
    from spikeforge.sim.virtual_board import VirtualBoardError

    with pytest.raises(VirtualBoardError, match="link=udp"):
        VirtualBoard.start(SystemConfig(), pcap=tmp_path / "x.pcap")


# -- the acquisition system ---------------------------------------------------------------------

#: 8 channels, 128 sweeps per frame: each DATA frame (2 KiB) leaves in two IPv4 fragments.
_URL = "sim://?link=udp&channels=8&sweeps_per_frame=128&identity_interval_frames=4"


def _recorded(out: Path, channels: int) -> tuple[np.ndarray, np.ndarray, dict]:
    recording = out / "Record Node 101" / "experiment1" / "recording1"
    folder = recording / "continuous" / "spikeforge-100.acquisition"
    samples = np.fromfile(folder / "continuous.dat", dtype="<i2").reshape(-1, channels)
    numbers = np.load(folder / "sample_numbers.npy")
    return samples, numbers, json.loads((recording / "spikeforge.json").read_text())


def test_record_over_udp_from_the_virtual_board_equals_the_source(tmp_path):
    """`spikeforge record --port udp://127.0.0.1:PORT` against the virtual board: the
    recording is the test source, sample for sample, none lost; the capture's datagrams
    (fragments reassembled by the test, not the harness) hold every recorded sample."""
    from spikeforge.host import DataBlock, StreamDecoder

    config = config_from_sim_url(_URL)
    capture = tmp_path / "link.pcap"
    board = VirtualBoard.start(config, pcap=capture)
    out = tmp_path / "rec"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "spikeforge.cli", "record", "--port", board.url,
             "--duration", "0.1", "--out", str(out)],
            capture_output=True, text=True, timeout=900)
    finally:
        stats = _stats(board.stop())
    assert result.returncode == 0, result.stderr
    samples, numbers, meta = _recorded(out, config.channels)
    assert meta["samples_lost"] == 0 and meta["link"]["crc_errors"] == 0
    assert samples.shape == (config.sample_rate_hz // 10, config.channels)
    assert np.array_equal(numbers, np.arange(numbers[0], numbers[0] + len(numbers)))
    truth = source_signal(config, int(numbers[-1]) + 1).samples[numbers]
    np.testing.assert_array_equal(samples, truth)

    assert stats["fcs_errors"] == stats["tx_errors"] == stats["ip_errors"] == 0
    assert stats["fragments_out"] > stats["datagrams_out"], "DATA frames were not fragmented"
    datagrams = _udp_datagrams(_read_pcap(capture), config.ethernet.ip_text)
    assert len(datagrams) == stats["datagrams_out"]
    assert {sport for sport, _, _ in datagrams} == {DATA_PORT, CONTROL_PORT}
    decoder = StreamDecoder()
    blocks = [item for _, _, payload in datagrams for item in decoder.feed(payload)
              if isinstance(item, DataBlock)]
    assert decoder.parser.stats.crc_errors == 0
    captured = {b.first_sample + i: row for b in blocks for i, row in enumerate(b.samples)}
    assert all(np.array_equal(captured[n], row) for n, row in zip(numbers, samples))


def test_record_from_a_sim_url_with_the_udp_link_and_a_capture(tmp_path):
    """`spikeforge record --port "sim://?link=udp&...&pcap=FILE"` starts the UDP board, records
    from its udp:// URL and leaves the capture."""
    capture = tmp_path / "cli.pcap"
    url = f"{_URL}&pcap={capture}"
    config = config_from_sim_url(url)
    out = tmp_path / "rec"
    result = subprocess.run(
        [sys.executable, "-m", "spikeforge.cli", "record", "--port", url, "--duration", "0.05",
         "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "at udp://127.0.0.1:" in result.stderr
    samples, numbers, meta = _recorded(out, config.channels)
    assert meta["samples_lost"] == 0 and len(samples) == config.sample_rate_hz // 20
    np.testing.assert_array_equal(
        samples, source_signal(config, int(numbers[-1]) + 1).samples[numbers])
    assert len(_udp_datagrams(_read_pcap(capture), config.ethernet.ip_text)) > 0
