"""The learned-host model (sim/models/learned_host.py): in keyed builds only a command whose
MAC and counter check names the host, replies before it are discarded, and nothing moves
the host once learned; unkeyed builds learn from the first command carried out."""

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.control_protocol import encode_authenticated_command
from spikeforge.firmware.framing import crc32
from spikeforge.firmware.registers import register
from spikeforge.firmware.wire import CommandOp, encode_command
from spikeforge.sim.models.control import CommandDecoderModel
from spikeforge.sim.models.learned_host import LearnedHostModel, Sender

KEY = "000102030405060708090a0b0c0d0e0f"
HOST = Sender(mac=1, ip=0x0A000001, port=4000)
OTHER = Sender(mac=2, ip=0x0A000002, port=5000)
CHANNELS = register("CHANNELS").address


def _model(key: str | None) -> LearnedHostModel:
    return LearnedHostModel(CommandDecoderModel(SystemConfig(control_key=key)))


def _signed(tag: int, counter: int, key: bytes, value: int = 0,
            op: CommandOp = CommandOp.READ) -> bytes:
    return encode_authenticated_command(tag, CHANNELS, op, value, counter, key)


def test_keyed_only_a_verified_command_names_the_host():
    model = _model(KEY)
    key = bytes.fromhex(KEY)
    assert model.datagram(OTHER, encode_command(1, CHANNELS, CommandOp.READ)) == []
    forged = bytearray(_signed(2, 5, key))
    forged[-5] ^= 1
    forged[-4:] = crc32(bytes(forged[2:-4])).to_bytes(4, "little")  # only the MAC can tell
    assert model.datagram(OTHER, bytes(forged)) == []
    assert model.datagram(OTHER, _signed(3, 5, bytes(16))) == []    # another key
    assert model.host is None and model.discarded == 3               # read, forged, other key
    sent = model.datagram(HOST, _signed(4, 5, key))
    assert model.host == HOST and [to for to, _ in sent] == [HOST]
    replayed = model.datagram(OTHER, _signed(5, 5, key))             # the counter again
    later = model.datagram(OTHER, _signed(6, 9, key))                # a fresh, verified one
    plain = model.datagram(OTHER, encode_command(7, CHANNELS, CommandOp.READ))
    assert model.host == HOST
    assert [to for to, _ in replayed + later + plain] == [HOST, HOST, HOST]


def test_unkeyed_the_first_command_carried_out_names_the_host():
    model = _model(None)
    assert model.datagram(OTHER, b"\xa5\x5a garbage") == []
    model.decoder.timeout()                                          # the line goes idle
    sent = model.datagram(OTHER, encode_command(1, CHANNELS, CommandOp.READ))
    assert model.host == OTHER and [to for to, _ in sent] == [OTHER]
    model.datagram(HOST, encode_command(2, CHANNELS, CommandOp.READ))
    assert model.host == OTHER
