"""The LFP decimator in the configuration, the identity frame and the bandwidth modes."""

import json

import pytest

from spikeforge.firmware.config import DecimatorConfig, DetectorConfig, SystemConfig
from spikeforge.firmware.errors import ConfigError
from spikeforge.firmware.wire import (
    BandwidthMode,
    FrameType,
    decode_identity,
    encode_identity,
    identity_payload_bytes,
    mode_unavailable_reason,
)


def test_default_builds_have_no_lfp_decimator():
    config = SystemConfig()
    assert config.lfp is None
    assert config.lfp_rate_hz is None
    assert "lfp" not in config.describe()


@pytest.mark.parametrize("lfp", [None, DecimatorConfig(), DecimatorConfig(factor=7, order=5)])
def test_the_identity_carries_the_lfp_decimator(lfp):
    config = SystemConfig(channels=6, sweeps_per_frame=4, lfp=lfp,
                          detector=DetectorConfig(enabled=True))
    payload = encode_identity(config)
    assert len(payload) == identity_payload_bytes(6)
    assert decode_identity(payload) == config
    assert decode_identity(payload).lfp == lfp


def test_the_lfp_decimator_round_trips_through_json():
    config = SystemConfig(channels=4, lfp=DecimatorConfig(factor=10, order=2),
                          detector=DetectorConfig(enabled=True))
    data = json.loads(json.dumps(config.to_dict()))
    assert data["lfp"] == {"factor": 10, "order": 2}
    assert SystemConfig.from_dict(data) == config
    assert config.lfp_rate_hz == 3000
    assert "lfp=/10x2" in config.describe()


@pytest.mark.parametrize("lfp, message", [
    (30, "lfp must be a DecimatorConfig .* not int"),
    ({"factor": 30}, "lfp must be a DecimatorConfig .* not dict"),
])
def test_a_bad_lfp_field_names_the_fix(lfp, message):
    with pytest.raises(ConfigError, match=message):
        SystemConfig(lfp=lfp)


def test_lfp_without_the_detector_is_refused_naming_both_fixes():
    with pytest.raises(ConfigError, match="lfp needs the spike detector.*or lfp=None"):
        SystemConfig(lfp=DecimatorConfig())


def test_a_bad_decimator_in_a_dict_is_refused_with_its_reason():
    with pytest.raises(ConfigError, match="decimator factor must be an integer 2..1024"):
        SystemConfig.from_dict({"lfp": {"factor": 1, "order": 3}})


def test_mode_3_names_the_lfp_field_until_the_build_has_it():
    events = SystemConfig(detector=DetectorConfig(enabled=True))
    reason = mode_unavailable_reason(events, BandwidthMode.EVENTS_LFP)
    assert "SystemConfig.lfp" in reason and "DecimatorConfig" in reason
    assert mode_unavailable_reason(events.replace(lfp=DecimatorConfig()),
                                   BandwidthMode.EVENTS_LFP) is None
    assert FrameType.LFP == 0x08
