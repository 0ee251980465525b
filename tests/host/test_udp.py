"""The UDP transport (udp:// URLs) on loopback: a board that answers, one that does not, one
whose port is closed, one that stops mid-stream, a host too slow for the rate, foreign
senders, bad URLs — and the link bench recording exactly what was sent."""

import socket
import threading
import time

import pytest

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.ethernet import CONTROL_PORT
from spikeforge.firmware.registers import REGISTERS
from spikeforge.firmware.wire import FrameType, build_frame, encode_identity
from spikeforge.host.device import (
    Device,
    DeviceDisconnected,
    DeviceNotFound,
    DeviceSilent,
)
from spikeforge.host.frames import DataBlock, Identity
from spikeforge.host.udp import UdpTransport, parse_udp_url, udp_stats
from spikeforge.sim.models.control import CommandDecoderModel

CONFIG = SystemConfig(channels=4, sweeps_per_frame=8)


class LoopbackBoard:
    """A board on 127.0.0.1 in a thread: answers commands with the golden model from its
    control socket, learns the host from the first, then sends an IDENTITY frame and
    ``frames`` DATA frames from its data socket, and falls silent (a pulled cable)."""

    def __init__(self, frames: int = 50, answers: bool = True):
        self.control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.control.bind(("127.0.0.1", 0))
        self.control.settimeout(0.05)
        self.data = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.data.bind(("127.0.0.1", 0))
        self.port = self.control.getsockname()[1]
        self.url = f"udp://127.0.0.1:{self.port}"
        self.frames, self.answers = frames, answers
        self.model = CommandDecoderModel(
            CONFIG, status={r.name: 0 for r in REGISTERS if r.access == "status"})
        self.host = None
        self.commands = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sent = 0
        while not self.stop.is_set():
            try:
                command, source = self.control.recvfrom(2048)
            except TimeoutError:
                command = None
            if command is not None:
                self.commands += 1
                if not self.answers:
                    continue
                replies = self.model.feed(command)
                self.model.timeout()
                for reply in replies:
                    self.control.sendto(reply, source)
                if replies and self.host is None:
                    self.host = source
                    self.data.sendto(build_frame(FrameType.IDENTITY, 0,
                                                 encode_identity(CONFIG)), source)
            while self.host is not None and sent < self.frames:
                payload = bytes(range(2 * CONFIG.frame_samples))
                self.data.sendto(build_frame(FrameType.DATA, sent, payload), self.host)
                sent += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.control.close()
        self.data.close()

    def __enter__(self) -> "LoopbackBoard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- URLs ----------------------------------------------------------------------------------
def test_udp_url_gives_the_board_address_and_control_port():
    assert parse_udp_url("udp://127.0.0.1") == ("127.0.0.1", CONTROL_PORT)
    assert parse_udp_url("udp://127.0.0.1:6000") == ("127.0.0.1", 6000)
    assert parse_udp_url("udp://localhost:6000/") == ("127.0.0.1", 6000)


@pytest.mark.parametrize("url, message", [
    ("udp://", "no board address"),
    ("udp://127.0.0.1:0", "must be 1..65535"),
    ("udp://127.0.0.1:70000", "must be 1..65535"),
    ("udp://127.0.0.1:port", "must be 1..65535"),
    ("udp://127.0.0.1/data", "must read udp://BOARD_IP"),
    ("udp://127.0.0.1?x=1", "must read udp://BOARD_IP"),
])
def test_a_bad_udp_url_is_one_clear_message(url, message):
    with pytest.raises(DeviceNotFound, match=message) as info:
        Device.open(url)
    assert "\n" not in str(info.value)


# -- opening: answered, silent, refused ----------------------------------------------------
def test_device_opens_a_udp_board_and_reads_its_frames_and_registers():
    with LoopbackBoard(frames=20) as board, Device.open(board.url) as device:
        assert device.identify(timeout_s=2) == CONFIG
        assert device.read_register("CHANNELS") == CONFIG.channels
        blocks = []
        for item in device.items(idle_timeout_s=1):
            if isinstance(item, DataBlock):
                blocks.append(item)
            if len(blocks) == 20:
                break
        assert [b.seq for b in blocks] == list(range(20))
        assert device.stats.sequence_gaps == 0 and device.stats.crc_errors == 0
        stats = udp_stats(device)
        assert stats is not None and stats.datagrams >= 22      # identity, replies, data
        assert stats.receive_buffer_bytes > 0 and stats.kernel_drops == 0
        assert board.host is not None and board.host[1] == device._port.local_port


def test_a_board_that_answers_nothing_is_one_line_naming_the_address():
    with LoopbackBoard(answers=False) as board:
        started = time.monotonic()
        with pytest.raises(DeviceSilent) as info:
            UdpTransport.open(board.url, reply_timeout_s=0.1)
        assert time.monotonic() - started < 2
        assert board.commands == 3      # the opening command, tried three times
    message = str(info.value)
    assert f"no reply from 127.0.0.1:{board.port}" in message
    assert "powered" in message and "firewall allows UDP 5130-5131" in message
    assert "\n" not in message


def test_a_closed_control_port_is_one_line_not_a_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]          # closed again when the block ends
    started = time.monotonic()
    with pytest.raises((DeviceNotFound, DeviceSilent)) as info:
        Device.open(f"udp://127.0.0.1:{port}")
    if isinstance(info.value, DeviceNotFound):   # Linux reports ICMP port unreachable
        assert f"nothing listens on UDP port {port} at 127.0.0.1" in str(info.value)
        assert time.monotonic() - started < 1.5


# -- faults while streaming ----------------------------------------------------------------
def test_a_board_that_stops_sending_ends_like_the_serial_path():
    with LoopbackBoard(frames=5) as board, Device.open(board.url) as device:
        items = []
        with pytest.raises(DeviceSilent, match="stopped sending for 0.3 s"):
            for item in device.items(idle_timeout_s=0.3):
                items.append(item)
        assert sum(isinstance(i, DataBlock) for i in items) == 5
        assert any(isinstance(i, Identity) for i in items)


def test_a_board_whose_port_closes_mid_stream_is_a_disconnect_not_a_hang():
    board = LoopbackBoard(frames=0)
    with Device.open(board.url) as device:
        board.close()
        started = time.monotonic()
        with pytest.raises(DeviceDisconnected, match="closed its control port"):
            device._port.write(b"\xa5\x5a")    # the board's port is gone: ICMP unreachable
            while time.monotonic() - started < 3:
                device._port.read(4096)
                device._port.write(b"\xa5\x5a")


def test_a_host_too_slow_for_the_rate_counts_every_kernel_drop():
    # A tiny socket buffer and nobody reading: the kernel drops, SO_RXQ_OVFL counts them.
    board = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    board.bind(("127.0.0.1", 0))
    transport = UdpTransport("127.0.0.1", board.getsockname()[1], receive_buffer_bytes=1,
                             timeout=0.2)
    try:
        if not transport.stats.kernel_drop_counter:
            pytest.skip("the OS reports no kernel drop count (SO_RXQ_OVFL is Linux)")
        frame = build_frame(FrameType.DATA, 0, bytes(1000))
        for _ in range(200):
            board.sendto(frame, ("127.0.0.1", transport.local_port))
        received = b""
        while chunk := transport.read(4096):
            received += chunk
        # The count rides on the datagrams queued after the drops: one more brings it.
        board.sendto(frame, ("127.0.0.1", transport.local_port))
        received += transport.read(4096)
        stats = transport.stats
        assert len(received) == stats.datagrams * len(frame)
        assert stats.kernel_drops > 0
        assert stats.datagrams + stats.kernel_drops == 201
    finally:
        transport.close()
        board.close()


def test_the_receive_thread_drops_and_counts_what_its_queue_cannot_hold():
    board = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    board.bind(("127.0.0.1", 0))
    transport = UdpTransport("127.0.0.1", board.getsockname()[1], timeout=0.2,
                             max_queue_bytes=20_000)
    transport.start_thread()
    try:
        frame = build_frame(FrameType.DATA, 0, bytes(987))     # 1000 bytes
        for _ in range(100):
            board.sendto(frame, ("127.0.0.1", transport.local_port))
        deadline = time.monotonic() + 3
        while transport.stats.datagrams < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        received = b""
        while chunk := transport.read(4096):
            received += chunk
        stats = transport.stats
        assert stats.host_queue_drops > 0
        assert len(received) // 1000 + stats.host_queue_drops == stats.datagrams == 100
        assert stats.queue_peak_bytes <= 20_000
    finally:
        transport.close()
        board.close()


def test_datagrams_from_another_address_are_dropped_and_counted():
    board = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    board.bind(("127.0.0.1", 0))
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.2", 0))
    transport = UdpTransport("127.0.0.1", board.getsockname()[1], timeout=0.2)
    try:
        stranger.sendto(b"not from the board", ("127.0.0.1", transport.local_port))
        board.sendto(b"from the board", ("127.0.0.1", transport.local_port))
        assert transport.read(4096) == b"from the board"
        assert transport.stats.foreign_datagrams == 1 and transport.stats.datagrams == 1
    finally:
        transport.close()
        board.close()
        stranger.close()


# -- the link bench ------------------------------------------------------------------------
def test_link_bench_records_exactly_the_samples_sent_with_nothing_lost(tmp_path):
    from spikeforge.sim.link_bench import bench_config, run_step, verify_recording

    step = run_step(128, 2.0, tmp_path / "rec", pin=False)
    assert step.ended == "duration reached", step.line()
    assert step.lost == 0 and step.held, step.line()
    assert step.sweeps == 60_000
    assert verify_recording(tmp_path / "rec", 128) == 60_000
    assert step.datagrams >= 60_000 // bench_config(128).sweeps_per_frame


def test_link_bench_cli_prints_the_held_line(tmp_path, capsys):
    from spikeforge.sim.link_bench import main

    assert main(["--channels", "32", "--duration", "1", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("held: 32 channels at 30 kS/s raw (") and last.endswith(", 0 lost")
    assert main(["--duration", "0"]) == 2
