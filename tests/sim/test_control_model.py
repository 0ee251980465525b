"""The command decoder's golden model: what the gateware must do, stated on its own."""

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.registers import register
from spikeforge.firmware.wire import (
    CommandOp,
    ReplyStatus,
    decode_reply,
    encode_command,
    encode_reply,
)
from spikeforge.sim.models.control import CommandDecoderModel

CONFIG = SystemConfig(channels=4)
DEAD = register("DETECT_DEAD_SAMPLES").address


def replies(model, data):
    return [decode_reply(int.from_bytes(f[3:7], "little"), f[9:15]) for f in model.feed(data)]


def test_a_write_applies_and_the_reply_carries_the_new_value():
    model = CommandDecoderModel(CONFIG)
    frames = model.feed(encode_command(7, DEAD, CommandOp.WRITE, 42))
    assert frames == [encode_reply(7, DEAD, ReplyStatus.OK, 42)]
    assert model.bank.values["DETECT_DEAD_SAMPLES"] == 42
    assert model.counters["COMMANDS_EXECUTED"] == 1


def test_a_retry_with_the_same_tag_is_answered_but_not_applied_again():
    model = CommandDecoderModel(CONFIG)
    first = model.feed(encode_command(7, DEAD, CommandOp.WRITE, 42))
    again = model.feed(encode_command(7, DEAD, CommandOp.WRITE, 99))
    assert again == first and model.bank.values["DETECT_DEAD_SAMPLES"] == 42
    assert model.writes == [(DEAD, 42)] and model.counters["COMMANDS_EXECUTED"] == 1


def test_every_single_bit_error_is_discarded_and_counted():
    frame = encode_command(1, DEAD, CommandOp.WRITE, 5)
    for bit in range(16, 8 * len(frame)):   # past the sync bytes
        model = CommandDecoderModel(CONFIG)
        corrupt = bytearray(frame)
        corrupt[bit // 8] ^= 1 << bit % 8
        assert model.feed(bytes(corrupt)) == []
        assert model.counters["COMMAND_ERRORS"] == 1 and model.writes == []


def test_a_truncated_command_times_out_and_the_next_one_works():
    model = CommandDecoderModel(CONFIG)
    assert model.feed(encode_command(1, DEAD, CommandOp.WRITE, 5)[:10]) == []
    model.timeout()
    assert model.counters["COMMAND_ERRORS"] == 1
    assert replies(model, encode_command(2, DEAD, CommandOp.READ))[0].value == \
        CONFIG.detector.dead_samples


def test_unknown_and_read_only_registers_have_their_status():
    model = CommandDecoderModel(CONFIG)
    unknown, read_only = replies(model, encode_command(1, 0xFE, CommandOp.READ)
                                 + encode_command(2, 0x02, CommandOp.WRITE, 9))
    assert (unknown.status, unknown.value) == (ReplyStatus.UNKNOWN_REGISTER, 0)
    assert (read_only.status, read_only.value) == (ReplyStatus.READ_ONLY, 4)  # CHANNELS
    # The RHD block is absent from a test-source build.
    assert replies(model, encode_command(3, register("RHD_CHIPS").address,
                                         CommandOp.READ))[0].status == \
        ReplyStatus.UNKNOWN_REGISTER


def test_the_control_counters_read_back_including_the_reading_command():
    model = CommandDecoderModel(CONFIG)
    model.framing_error()
    model.feed(b"\xa5\x5a" + bytes(17))           # a bad frame
    executed, errors, framing = replies(model, b"".join(
        encode_command(tag, register(name).address, CommandOp.READ)
        for tag, name in enumerate(("COMMANDS_EXECUTED", "COMMAND_ERRORS",
                                    "UART_FRAMING_ERRORS"))))
    assert (executed.value, errors.value, framing.value) == (1, 1, 1)
