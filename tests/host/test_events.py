"""EVENTS frames decode into typed DetectorEvents, exactly; broken records are malformed."""

import numpy as np
import pytest

from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.wire import FrameType, build_frame, encode_event, encode_identity
from spikeforge.host import DetectorEvent, EventBlock, StreamDecoder

CONFIG = SystemConfig(channels=8)


def some_events(seed: int, count: int) -> list[tuple[int, int, int, np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    events = []
    for _ in range(count):
        pre, post = int(rng.integers(0, 17)), int(rng.integers(0, 32))
        snippet = rng.integers(-32768, 32768, pre + 1 + post)
        events.append((int(rng.integers(0, 2**32)), int(rng.integers(0, 8)),
                       int(rng.integers(-32768, 32768)), snippet, pre))
    return events


def test_events_round_trip_exactly_for_any_split():
    events = some_events(1, 20)
    payload = b"".join(encode_event(*e) for e in events)
    stream = (build_frame(FrameType.IDENTITY, 0, encode_identity(CONFIG))
              + build_frame(FrameType.EVENTS, 5, payload))
    decoder = StreamDecoder()
    items = []
    for at in range(0, len(stream), 7):
        items += decoder.feed(stream[at:at + 7])
    blocks = [i for i in items if isinstance(i, EventBlock)]
    assert len(blocks) == 1 and blocks[0].seq == 5
    got = blocks[0].events
    assert len(got) == len(events)
    for event, (sample, channel, peak, snippet, pre) in zip(got, events):
        assert isinstance(event, DetectorEvent)
        assert (event.sample, event.channel, event.peak, event.pre) == (sample, channel, peak,
                                                                         pre)
        assert event.post == len(snippet) - pre - 1
        np.testing.assert_array_equal(event.snippet, snippet)


def test_an_empty_events_frame_is_an_empty_block():
    items = StreamDecoder(CONFIG).feed(build_frame(FrameType.EVENTS, 0, b""))
    assert items == [EventBlock(0, ())]


@pytest.mark.parametrize("cut", [3, 12, -2])
def test_a_truncated_record_is_malformed_and_yields_nothing(cut: int):
    payload = encode_event(7, 1, -500, np.arange(9), 4)
    decoder = StreamDecoder(CONFIG)
    items = decoder.feed(build_frame(FrameType.EVENTS, 0, payload[:cut]))
    assert items == [] and decoder.stats.malformed == 1
    assert "events frame seq 0" in str(decoder.last_error)


def test_a_channel_the_device_does_not_have_is_malformed():
    decoder = StreamDecoder(CONFIG)
    items = decoder.feed(build_frame(FrameType.EVENTS, 0, encode_event(7, 8, 0, [0], 0)))
    assert items == [] and "channel 8" in str(decoder.last_error)
