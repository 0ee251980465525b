"""Opening a keyed board over UDP (loopback): the board learns its host only from a command
whose tag and counter check, so the host's opening read is signed when it has the key, and
without the key the board stays silent with a message that names ``--key``."""

import ipaddress
import socket
import threading

import pytest

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.control_protocol import AUTH_COMMAND, EPOCH_SHIFT, command_mac
from spikeforge.firmware.registers import REGISTERS
from spikeforge.firmware.wire import (
    HEADER,
    SYNC,
    CommandOp,
    FrameType,
    build_frame,
    encode_command,
    encode_identity,
)
from spikeforge.host.device import Device, DeviceSilent
from spikeforge.host.frames import DataBlock
from spikeforge.host.keys import new_key
from spikeforge.sim.models.control import CommandDecoderModel
from spikeforge.sim.models.learned_host import LearnedHostModel, Sender


@pytest.fixture(autouse=True)
def key_dir(tmp_path, monkeypatch):
    folder = tmp_path / "keys"
    monkeypatch.setenv("SPIKEFORGE_KEY_DIR", str(folder))
    return folder


class KeyedLoopbackBoard:
    """A keyed board on 127.0.0.1 in a thread: the decoder's and the learned host's golden
    models decide who the host is and which replies leave; once a host is learned it gets an
    IDENTITY frame and ``frames`` DATA frames."""

    def __init__(self, config: SystemConfig, frames: int = 5):
        self.config = config
        self.control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.control.bind(("127.0.0.1", 0))
        self.control.settimeout(0.05)
        self.data = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.data.bind(("127.0.0.1", 0))
        self.url = f"udp://127.0.0.1:{self.control.getsockname()[1]}"
        self.frames = frames
        self.model = LearnedHostModel(CommandDecoderModel(
            config, status={r.name: 0 for r in REGISTERS if r.access == "status"}))
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        sent = 0
        while not self.stop.is_set():
            try:
                command, (address, port) = self.control.recvfrom(2048)
            except TimeoutError:
                command = None
            if command is not None:
                self.received.append(command)
                had_host = self.model.host is not None
                sender = Sender(mac=0, ip=int(ipaddress.IPv4Address(address)), port=port)
                for host, reply in self.model.datagram(sender, command):
                    self.control.sendto(reply, self._address(host))
                self.model.decoder.timeout()
                if not had_host and self.model.host is not None:
                    self.data.sendto(build_frame(FrameType.IDENTITY, 0,
                                                 encode_identity(self.config)),
                                     self._address(self.model.host))
            while self.model.host is not None and sent < self.frames:
                payload = bytes(range(2 * self.config.frame_samples))
                self.data.sendto(build_frame(FrameType.DATA, sent, payload),
                                 self._address(self.model.host))
                sent += 1

    @staticmethod
    def _address(host: Sender) -> tuple[str, int]:
        return str(ipaddress.IPv4Address(host.ip)), host.port

    def __enter__(self) -> "KeyedLoopbackBoard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(2)
        self.control.close()
        self.data.close()


def _keyed_config(key) -> SystemConfig:
    return SystemConfig(channels=4, sweeps_per_frame=8, link="ethernet", control_key=key.hex)


def test_with_the_key_the_opening_read_is_signed_and_the_board_learns_this_host():
    key = new_key("lab-board")
    config = _keyed_config(key)
    with KeyedLoopbackBoard(config) as board, Device.open(board.url, key=key) as device:
        assert device.identify(timeout_s=2) == config.replace(control_key=None)  # not sent
        blocks = []
        for item in device.items(idle_timeout_s=1):
            if isinstance(item, DataBlock):
                blocks.append(item)
            if len(blocks) == board.frames:
                break
        assert [b.seq for b in blocks] == list(range(board.frames))
        assert board.model.host is not None
        assert board.model.host.port == device._port.local_port
        opening = board.received[0]
        length = HEADER.unpack_from(opening, len(SYNC))[2]
        assert length == AUTH_COMMAND.size, "the opening command was not signed"
        address, op, value, counter, mac = AUTH_COMMAND.unpack(
            opening[len(SYNC) + HEADER.size:-4])
        # The first counter of a new epoch: above every epoch the board has spent.
        assert (op, counter) == (CommandOp.READ, (1 << EPOCH_SHIFT) | 1)
        assert mac == command_mac(key.key, counter, address, CommandOp(op), value)
        assert key.last_counter() >= counter, "the counter used was not kept in the file"
        assert board.model.decoder.counters["AUTH_COUNTER"] == counter
        assert board.model.decoder.epochs.high == 2, "the epoch was not spent in the flash"


def test_without_the_key_a_keyed_board_stays_silent_and_the_message_names_the_key():
    key = new_key("lab-board")
    with KeyedLoopbackBoard(_keyed_config(key)) as board:
        with pytest.raises(DeviceSilent) as info:
            Device.open(board.url)
        assert board.model.host is None and board.model.discarded == 3   # three plain reads
    message = str(info.value)
    assert "--key NAME" in message and "\n" not in message


def test_a_plain_command_from_another_sender_does_not_take_the_stream():
    key = new_key("lab-board")
    config = _keyed_config(key)
    with KeyedLoopbackBoard(config, frames=0) as board:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as intruder:
            intruder.settimeout(0.3)
            intruder.sendto(encode_command(7, 0, CommandOp.READ),
                            board.control.getsockname())
            with pytest.raises(TimeoutError):
                intruder.recvfrom(2048)           # no reply: no host yet, it is discarded
            with Device.open(board.url, key=key) as device:
                assert device.identify(timeout_s=2) == config.replace(control_key=None)  # not sent
                assert board.model.host.port == device._port.local_port
                intruder.sendto(encode_command(8, 0, CommandOp.READ),
                                board.control.getsockname())
                with pytest.raises(TimeoutError):
                    intruder.recvfrom(2048)       # its reply went to the host
                assert board.model.host.port == device._port.local_port
