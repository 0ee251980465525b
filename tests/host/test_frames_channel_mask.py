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
