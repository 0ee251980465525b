"""The host decodes DATA frames of a masked device into blocks that name their channels."""

import numpy as np
import pytest

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.wire import FrameType, build_frame, encode_identity
from spikeforge.host import DataBlock, StreamDecoder

CONFIG = SystemConfig(channels=8, sweeps_per_frame=4, channel_mask=(1, 3, 4, 7))


def _data(seq: int, columns: int) -> bytes:
    samples = np.arange(4 * columns, dtype="<i2").reshape(4, columns) + 100 * seq
    return build_frame(FrameType.DATA, seq, samples.tobytes())


def test_blocks_carry_the_enabled_channels_of_the_identity():
    decoder = StreamDecoder()
    items = decoder.feed(build_frame(FrameType.IDENTITY, 0, encode_identity(CONFIG))
                         + _data(0, 4))
    block = items[1]
    assert isinstance(block, DataBlock)
    assert block.channels == (1, 3, 4, 7) and block.samples.shape == (4, 4)
    assert decoder.enabled_channels == (1, 3, 4, 7)


def test_a_mask_set_on_the_host_applies_until_a_new_configuration_arrives():
    decoder = StreamDecoder(CONFIG)
    decoder.set_enabled_channels([6, 0])
    block, = decoder.feed(_data(0, 2))
    assert block.channels == (0, 6)
    # A frame of the old width no longer fits: malformed, named in the error.
    assert decoder.feed(_data(1, 4)) == []
    assert decoder.stats.malformed == 1 and "2 channels" in str(decoder.last_error)
    # The same identity again keeps the host's mask; a different one resets it.
    decoder.feed(build_frame(FrameType.IDENTITY, 1, encode_identity(CONFIG)))
    assert decoder.enabled_channels == (0, 6)
    other = CONFIG.replace(channel_mask=(2,))
    decoder.feed(build_frame(FrameType.IDENTITY, 2, encode_identity(other)))
    assert decoder.enabled_channels == (2,)


def test_a_block_without_channels_names_every_column():
    block = DataBlock(0, 0, np.zeros((2, 3), "<i2"))
    assert block.channels == (0, 1, 2)
    with pytest.raises(Exception, match="3 columns cannot carry channels"):
        DataBlock(0, 0, np.zeros((2, 3), "<i2"), (1, 2))


# -- Device.set_channel_mask against the mask's golden model ------------------------------------
class _MaskRegisters:
    """The mask registers as the gateware behaves (ChannelMaskModel), with a stream enable
    and a framer that stays busy for ``busy_reads`` reads after the stream stops."""

    def __init__(self, config, busy_reads: int = 0):
        from spikeforge.sim.models.channel_mask import ChannelMaskModel

        self.model = ChannelMaskModel(config)
        self.values = {"CHANNEL_MASK_INDEX": 0, "CHANNEL_MASK": 0, "STREAM_ENABLE": 1}
        self.busy_reads = busy_reads
        self.enabled_trace: list[int] = []

    def write(self, name, value, **_):
        self.values[name] = value
        if name == "CHANNEL_MASK":
            idle = self.busy_reads == 0
            self.model.write(self.values["CHANNEL_MASK_INDEX"], value,
                             not self.values["STREAM_ENABLE"] and idle)
            self.enabled_trace.append(self.model.enabled)
        return value

    def read(self, name, **_):
        if name == "CHANNEL_MASK_IN_FORCE":
            self.busy_reads = max(0, self.busy_reads - 1)
            return self.model.in_force(self.values["CHANNEL_MASK_INDEX"])
        if name == "ENABLED_CHANNELS":
            return self.model.enabled
        return self.values[name]


def _device_with(registers, config):
    from spikeforge.host.device import Device

    device = Device.open("loop://")
    device.config = device._decoder.config = config     # as identify() leaves them
    device.read_register = registers.read
    device.write_register = registers.write
    return device


def test_the_host_sets_a_mask_across_words_never_leaving_none_enabled():
    config = SystemConfig(channels=70, sweeps_per_frame=4, channel_mask=(5,))
    registers = _MaskRegisters(config, busy_reads=3)
    with _device_with(registers, config) as device:
        device.configure(stream=False, channels=[33, 69])
        assert device.enabled_channels == (33, 69)
        assert registers.model.enabled_channels == (33, 69)
        # Word 0 (channel 5) was cleared last: the count never reached 0.
        assert 0 not in registers.enabled_trace
        assert device.read_channel_mask() == (33, 69)


def test_the_host_refuses_a_mask_while_streaming_or_with_no_channel():
    from spikeforge.host.device import RegisterRefused

    config = SystemConfig(channels=8)
    registers = _MaskRegisters(config)
    with _device_with(registers, config) as device:
        with pytest.raises(RegisterRefused, match="streaming; stop the stream first"):
            device.configure(channels=[1])
        with pytest.raises(RegisterRefused, match="at least one channel"):
            device.configure(stream=False, channels=[])
        with pytest.raises(RegisterRefused, match="names channel"):
            device.configure(channels=[8])
        assert device.enabled_channels == tuple(range(8))
        registers.busy_reads = 10**9      # the framer never drains
        with pytest.raises(RegisterRefused, match="still waiting to go out"):
            device.set_channel_mask([1], drain_timeout_s=0.1)
