"""The codec's configuration travels with SystemConfig: dicts and the IDENTITY frame."""

import json

import pytest

from spikeforge.firmware.compression import PREDICTORS, CodecConfig, worst_case_bits
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.wire import decode_identity, encode_identity


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
