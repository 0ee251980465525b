"""LFP frames (mode events+lfp) on the host: decoded like DATA into DataBlock(stream="lfp")."""

import numpy as np

from spikeforge.firmware.config import DecimatorConfig, DetectorConfig, SystemConfig
from spikeforge.firmware.wire import FrameType, build_frame, encode_identity
from spikeforge.host import DataBlock, StreamDecoder

CONFIG = SystemConfig(channels=4, sweeps_per_frame=8, channel_mask=(1, 3),
                      detector=DetectorConfig(enabled=True),
                      lfp=DecimatorConfig(factor=10, order=3))


def _lfp(seq: int, config: SystemConfig = CONFIG) -> tuple[bytes, np.ndarray]:
    samples = (np.arange(16, dtype="<i2") + 100 * seq).reshape(8, 2)
    return build_frame(FrameType.LFP, seq, samples.tobytes()), samples


def test_lfp_frames_decode_to_lfp_blocks_of_the_enabled_channels_in_the_decimated_clock():
    decoder = StreamDecoder()
    stream = build_frame(FrameType.IDENTITY, 0, encode_identity(CONFIG))
    expected = {}
    for seq in (3, 4, 7):       # 5 and 6 lost
        frame, samples = _lfp(seq)
        stream += frame
        expected[seq] = samples
    blocks = [i for i in decoder.feed(stream) if isinstance(i, DataBlock)]
    assert [b.seq for b in blocks] == [3, 4, 7]
    for block in blocks:
        assert block.stream == "lfp" and not block.compressed
        assert block.channels == (1, 3)
        assert block.first_sample == block.seq * 8
        np.testing.assert_array_equal(block.samples, expected[block.seq])
    assert decoder.stats.sequence_gaps == 2
    assert decoder.stats.malformed == 0


def test_a_switch_between_data_and_lfp_frames_is_not_a_gap():
    decoder = StreamDecoder(CONFIG)
    data = build_frame(FrameType.DATA, 40, np.zeros((8, 2), "<i2").tobytes())
    frame, _ = _lfp(2)
    items = decoder.feed(data + frame + build_frame(FrameType.DATA, 90, bytes(32)))
    assert [b.stream for b in items] == ["data", "lfp", "data"]
    assert decoder.stats.sequence_gaps == 0


def test_an_lfp_frame_from_a_build_without_lfp_is_malformed():
    decoder = StreamDecoder(CONFIG.replace(lfp=None))
    frame, _ = _lfp(0)
    assert decoder.feed(frame) == []
    assert decoder.stats.malformed == 1
    assert "no LFP decimator" in str(decoder.last_error)
