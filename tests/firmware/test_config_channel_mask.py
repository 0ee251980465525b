"""The channel mask in the configuration and the identity frame."""

import pytest

from spikeforge.firmware.config import SystemConfig, format_channels, parse_channels
from spikeforge.firmware.errors import ConfigError, WireFormatError
from spikeforge.firmware.registers import register, reset_values
from spikeforge.firmware.wire import decode_identity, encode_identity, identity_payload_bytes


def test_the_mask_is_kept_sorted_and_every_channel_means_none():
    assert SystemConfig(channels=8, channel_mask=(7, 1, 3, 3)).channel_mask == (1, 3, 7)
    assert SystemConfig(channels=3, channel_mask=[2, 0, 1]).channel_mask is None
    assert SystemConfig(channels=3).enabled_channels == (0, 1, 2)


@pytest.mark.parametrize("mask, message", [
    ((), "at least one channel"),
    ((0, 8), "names channel\\(s\\) 8, but the device has channels 0..7"),
    ((-1,), "names channel\\(s\\) -1"),
    ("0,1", "sequence of channel indices"),
    ((1.5,), "sequence of channel indices"),
])
def test_a_bad_mask_is_refused_with_the_reason(mask, message):
    with pytest.raises(ConfigError, match=message):
        SystemConfig(channels=8, channel_mask=mask)


def test_mask_words_put_channel_c_at_bit_c_mod_32_of_word_c_div_32():
    config = SystemConfig(channels=70, sweeps_per_frame=8, channel_mask=(0, 31, 32, 69))
    assert config.channel_mask_words == (0x8000_0001, 0x1, 0x20)
    assert reset_values(config)["CHANNEL_MASK"] == 0x8000_0001
    assert register("CHANNEL_MASK").address in range(0x10, 0x20)


@pytest.mark.parametrize("channels, mask", [(4, None), (4, (2,)), (33, (0, 32)),
                                            (70, (5, 40, 69))])
def test_the_identity_carries_the_reset_mask(channels, mask):
    config = SystemConfig(channels=channels, sweeps_per_frame=4, channel_mask=mask)
    payload = encode_identity(config)
    assert len(payload) == identity_payload_bytes(channels)
    assert decode_identity(payload) == config


def test_an_identity_whose_mask_enables_nothing_does_not_decode():
    config = SystemConfig(channels=4, channel_mask=(1,))
    payload = encode_identity(config)
    with pytest.raises(ConfigError, match="at least one channel"):
        decode_identity(payload[:-4] + bytes(4))
    with pytest.raises(WireFormatError, match="4-channel device must be"):
        decode_identity(payload[:-4])


def test_channel_lists_read_and_print_as_ranges():
    assert parse_channels("0,2,5-7") == (0, 2, 5, 6, 7)
    assert parse_channels(" 3 , 1-2,2") == (1, 2, 3)
    assert format_channels((0, 2, 5, 6, 7)) == "0,2,5-7"
    for bad in ("1,x", "7-5", "", "1-"):
        with pytest.raises(ConfigError, match="e.g. 0,2,5-7"):
            parse_channels(bad)
