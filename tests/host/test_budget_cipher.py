"""The link budget of an encrypted-stream build counts the 8-byte tag of every sealed frame
(DATA, EVENTS, COMPRESSED, LFP), never of the IDENTITY frames, which stay in the clear."""

import pytest

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.framing import DATA_FRAME_OVERHEAD_BYTES
from spikeforge.firmware.identity import IDENTITY_PAYLOAD_BYTES
from spikeforge.firmware.stream_cipher import TAG_BYTES
from spikeforge.host.budget import StreamDescription, budget, format_budget
from spikeforge.host.recorder import stream_load

KEY = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"


def _build(**fields) -> SystemConfig:
    return SystemConfig(control_key=KEY, **({"channels": 4, "identity_interval_frames": 16}
                                             | fields))


def test_sealed_frames_cost_their_tag_and_identity_frames_do_not():
    clear, sealed = budget(_build()), budget(_build(stream_cipher=True))
    slots = 30_000 / 32
    for mode in ("raw", "events", "lossless"):
        a, b = clear.mode(mode), sealed.mode(mode)
        frames_per_s = a.framing_bytes_per_s / DATA_FRAME_OVERHEAD_BYTES
        assert b.framing_bytes_per_s == pytest.approx(
            frames_per_s * (DATA_FRAME_OVERHEAD_BYTES + TAG_BYTES))
        assert b.identity_bytes_per_s == a.identity_bytes_per_s
    raw = sealed.mode("raw")
    assert raw.framing_bytes_per_s == pytest.approx(slots * (DATA_FRAME_OVERHEAD_BYTES
                                                             + TAG_BYTES))
    assert raw.identity_bytes_per_s == pytest.approx(
        slots / 16 * (DATA_FRAME_OVERHEAD_BYTES + IDENTITY_PAYLOAD_BYTES))
    # The board: 88 % in the clear, 90 % sealed (4 channels, 3 Mbaud; identity of
    # wire version 6, which carries codec_v2).
    assert clear.mode("raw").load == pytest.approx(0.8756, abs=1e-4)
    assert raw.load == pytest.approx(0.9006, abs=1e-4)
    assert "tag bytes per sealed frame" in format_budget(sealed)
    assert "tag" not in format_budget(clear)


def test_a_stream_that_fits_only_in_the_clear_is_refused_sealed():
    # 4 channels, 8 sweeps a frame at 3 Mbaud: 77 bytes a frame in the clear (96 %), 85
    # sealed (106 %), against 80 byte times a frame period.
    config = _build(sweeps_per_frame=8, identity_interval_frames=1024)
    assert stream_load(config)[0] < 1.0
    assert stream_load(config.replace(stream_cipher=True))[0] > 1.0


def test_the_gigabit_budget_counts_the_tag_in_the_datagram():
    stream = StreamDescription(channels=1024, sample_rate_hz=30_000, sweeps_per_frame=31)
    clear = budget(stream, link="ethernet").mode("raw")
    sealed = budget(StreamDescription(channels=1024, sample_rate_hz=30_000,
                                      sweeps_per_frame=31, stream_cipher=True),
                    link="ethernet").mode("raw")
    assert sealed.link_bits_per_s - clear.link_bits_per_s == pytest.approx(
        30_000 / 31 * TAG_BYTES * 8)
