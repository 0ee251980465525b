"""The codec's configuration travels with SystemConfig: dicts and the IDENTITY frame."""

import json
from dataclasses import replace

import pytest

from spikeforge.firmware.compression import PREDICTORS, CodecConfig, worst_case_bits
from spikeforge.firmware.compression_v2 import CodecV2Config
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import ConfigError, WireFormatError
from spikeforge.firmware.wire import (
    WIRE_VERSION,
    decode_identity,
    encode_identity,
    identity_payload_bytes,
)


@pytest.mark.parametrize("predictor", list(PREDICTORS))
def test_codec_survives_dicts_and_the_identity_frame(predictor):
    config = SystemConfig(codec=CodecConfig(
        enabled=True, block_sweeps=4096, predictor=predictor, rice_shift=7, select_shift=0,
        initial_k=15, escape_threshold=32, codebook=True, codebook_bits=9),
        link_buffer_samples=1 << 17)  # two worst-case blocks of 4096 sweeps
    assert SystemConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert decode_identity(encode_identity(config)) == config


def test_codec_is_off_by_default():
    assert not SystemConfig().codec.enabled
    assert decode_identity(encode_identity(SystemConfig())).codec == CodecConfig()


def test_worst_case_is_the_documented_bound():
    config = CodecConfig(escape_threshold=12)
    assert worst_case_bits(4, 10, config) == 4 * 16 + 4 * 9 * 28
    assert worst_case_bits(1, 2, config) == 48   # 16 + 28 = 44, padded to whole words


def test_a_codec_that_is_not_a_codec_config_is_refused():
    with pytest.raises(ConfigError, match="CodecConfig"):
        SystemConfig(codec={"enabled": True})


# -- the v2 coder in the identity (wire version 6) --

def _v2_config() -> SystemConfig:
    return SystemConfig(channels=6, codec_v2=CodecV2Config(
        enabled=True, block_sweeps=16, sync_blocks=1000, taps=5, weight_bits=12, mu=3,
        level_tap=False, rate_max=9, contexts=7, shift_offset=2, grid=True, grid_bits=11),
        link_buffer_samples=1 << 14)


def test_the_identity_carries_codec_v2():
    config = _v2_config()
    payload = encode_identity(config)
    assert payload[4] == WIRE_VERSION == 6
    assert len(payload) == identity_payload_bytes(6)
    assert decode_identity(payload) == config
    assert decode_identity(payload).codec_v2 == config.codec_v2
    assert decode_identity(encode_identity(SystemConfig())).codec_v2 == CodecV2Config()


def test_a_version_5_identity_decodes_without_codec_v2():
    """A version 5 payload is the version 6 one without the v2 coder's part."""
    config = SystemConfig(channels=40, channel_mask=(0, 3, 39), sweeps_per_frame=16)
    payload = bytearray(encode_identity(_v2_config()))
    v6 = encode_identity(config)
    v2_part = identity_payload_bytes(40) - identity_payload_bytes(40, 5)
    fixed = len(v6) - 8     # 40 channels: two mask words
    v5 = bytearray(v6[:fixed - v2_part] + v6[fixed:])
    v5[4] = 5
    assert len(v5) == identity_payload_bytes(40, 5)
    decoded = decode_identity(bytes(v5))
    assert decoded == config
    assert not decoded.codec_v2.enabled
    # a version 5 payload of the version 6 length is refused, not misread
    payload[4] = 5
    with pytest.raises(WireFormatError, match="version 5"):
        decode_identity(bytes(payload))
    for version in (4, 7):
        payload[4] = version
        with pytest.raises(WireFormatError, match="wire format version"):
            decode_identity(bytes(payload))


def test_a_bad_codec_v2_in_the_identity_is_a_wire_error():
    payload = bytearray(encode_identity(_v2_config()))
    offset = identity_payload_bytes(6, 5) - 4     # the v2 part's first byte (enabled)
    assert payload[offset] == 1
    payload[offset] = 2
    with pytest.raises(WireFormatError, match="enabled"):
        decode_identity(bytes(payload))
    payload[offset] = 1
    payload[offset + 1:offset + 3] = (0).to_bytes(2, "little")    # block_sweeps 0
    with pytest.raises(WireFormatError, match="block_sweeps"):
        decode_identity(bytes(payload))


def test_the_identity_carries_the_restart_prior():
    """codec_v2's last identity byte: bit 0 code_weights, bit 1 restart_prior; any higher
    bit is refused (a host that predates it must not misread the device)."""
    without = _v2_config()
    with_prior = without.replace(codec_v2=replace(without.codec_v2, restart_prior=True))
    assert decode_identity(encode_identity(with_prior)) == with_prior
    assert decode_identity(encode_identity(with_prior)).codec_v2.restart_prior
    assert not decode_identity(encode_identity(without)).codec_v2.restart_prior
    plain, prior = encode_identity(without), encode_identity(with_prior)
    (offset,) = [i for i in range(len(plain)) if plain[i] != prior[i]]
    assert (plain[offset], prior[offset]) == (0, 2)
    bad = bytearray(prior)
    bad[offset] = 4
    with pytest.raises(WireFormatError, match="options"):
        decode_identity(bytes(bad))


def test_a_build_with_code_weights_is_a_valid_system_whose_identity_says_so():
    """The gateware codes with code weights (WEIGHT_PAIR, WEIGHTS_ON): a SystemConfig takes
    them, and the identity's options bit 0 tells the host, which then loads them."""
    without = _v2_config()
    weighted = without.replace(codec_v2=replace(without.codec_v2, code_weights=True))
    decoded = decode_identity(encode_identity(weighted))
    assert decoded == weighted and decoded.codec_v2.code_weights
    assert not decode_identity(encode_identity(without)).codec_v2.code_weights
    both = weighted.replace(codec_v2=replace(weighted.codec_v2, sync_blocks=512,
                                             restart_prior=True))
    assert decode_identity(encode_identity(both)).codec_v2 == both.codec_v2
