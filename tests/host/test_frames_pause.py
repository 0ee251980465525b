"""A pause the host makes (stop, then start) is not a loss: the decoder's accounting of it
(StreamDecoder.stream_restarted, LinkStats.paused_slots)."""

import numpy as np

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.wire import FrameType, build_frame, encode_identity
from spikeforge.host.frames import DataBlock, StreamDecoder

CONFIG = SystemConfig(channels=4)
SPF = CONFIG.sweeps_per_frame


def _data(*seqs: int) -> bytes:
    return b"".join(build_frame(FrameType.DATA, seq,
                                np.full(CONFIG.frame_samples, seq & 0x7FFF, "<i2").tobytes())
                    for seq in seqs)


def _decoder() -> StreamDecoder:
    decoder = StreamDecoder()
    decoder.feed(build_frame(FrameType.IDENTITY, 0, encode_identity(CONFIG)))
    return decoder


def _seqs(items: list) -> list[int]:
    return [item.seq for item in items if isinstance(item, DataBlock)]


def test_the_slots_skipped_while_stopped_are_a_pause_not_lost_frames():
    decoder = _decoder()
    decoder.feed(_data(*range(10)))
    # Read while stopped: sweep 40 * SPF + 5; frames 10 and 11, buffered before the stop,
    # arrive after the restart was noted, then the stream resumes at slot 41.
    decoder.stream_restarted(40 * SPF + 5)
    assert _seqs(decoder.feed(_data(10, 11, 41, 42, 43))) == [10, 11, 41, 42, 43]
    assert decoder.stats.sequence_gaps == 0
    assert decoder.stats.paused_slots == 41 - 11 - 1


def test_frames_lost_before_and_after_the_pause_are_still_gaps():
    decoder = _decoder()
    decoder.feed(_data(0, 1, 3, 4))             # 2 lost before the stop
    decoder.stream_restarted(20 * SPF)
    decoder.feed(_data(20, 21, 24, 25))         # 22, 23 lost after the start
    assert decoder.stats.sequence_gaps == 1 + 2
    assert decoder.stats.paused_slots == 20 - 4 - 1


def test_only_one_jump_is_the_pause():
    decoder = _decoder()
    decoder.feed(_data(0, 1))
    decoder.stream_restarted(10 * SPF)
    decoder.feed(_data(10, 11, 15))
    decoder.feed(_data(30))                     # no second restart: a loss
    assert decoder.stats.paused_slots == 8
    assert decoder.stats.sequence_gaps == 3 + 14


def test_without_a_restart_a_jump_is_a_loss():
    decoder = _decoder()
    decoder.feed(_data(0, 1, 10))
    assert (decoder.stats.sequence_gaps, decoder.stats.paused_slots) == (8, 0)


def test_a_restart_at_the_sweep_counters_wrap_is_a_pause():
    decoder = _decoder()
    last = 2**32 // SPF - 3                     # slot sweeps just below 2**32
    decoder.feed(_data(last - 1, last))
    decoder.stream_restarted(2**32 - 5)         # read just before the counter wraps
    decoder.feed(_data(last + 10, last + 11))   # the seq counter itself has not wrapped
    assert decoder.stats.sequence_gaps == 0
    assert decoder.stats.paused_slots == 9


def test_an_lfp_slot_is_placed_where_the_decimator_emits_its_first_sweep():
    """An LFP slot is decided when its first decimated sweep d comes out, after source sweep
    (d+1)*R - 1, not at d*R: a restart read between the two still makes it a new slot."""
    from spikeforge.firmware.config import DecimatorConfig, DetectorConfig

    config = SystemConfig(channels=4, detector=DetectorConfig(enabled=True),
                          lfp=DecimatorConfig(factor=10, order=3))
    factor, spf = config.lfp.factor, config.sweeps_per_frame
    decoder = StreamDecoder()
    decoder.feed(build_frame(FrameType.IDENTITY, 0, encode_identity(config)))
    lfp = b"".join(build_frame(FrameType.LFP, seq, bytes(2 * config.frame_samples))
                   for seq in (0, 1, 5, 6))
    decoder.stream_restarted(5 * spf * factor + 3)      # after d*R, before (d+1)*R - 1
    items = decoder.feed(lfp)
    assert [item.seq for item in items if isinstance(item, DataBlock)] == [0, 1, 5, 6]
    assert (decoder.stats.sequence_gaps, decoder.stats.paused_slots) == (0, 3)
