"""``spikeforge bench latency``: every matched event is timed, and its parts add up to what
the board's link and detector allow."""

import numpy as np
import pytest

from spikeforge.firmware.event_record import EVENT_RECORD
from spikeforge.firmware.wire import DATA_FRAME_OVERHEAD_BYTES
from spikeforge.sim.latency_bench import format_result, latency_config, measure_latency

pytestmark = pytest.mark.sim


def test_the_latency_bench_splits_each_events_latency_into_device_link_and_host():
    config = latency_config(8)
    result = measure_latency(config, seconds=0.3)
    assert result.matched >= 5 and result.matched <= result.events
    # one event per frame here: its frame's bytes, each a UART byte time (40 cycles of 12 MHz)
    detector = config.detector
    samples = detector.snippet_pre + 1 + detector.snippet_post
    frame_bytes = DATA_FRAME_OVERHEAD_BYTES + EVENT_RECORD.size + 2 * samples
    byte_s = config.cycles_per_byte / config.clock_hz
    np.testing.assert_allclose(result.link_s, frame_bytes * byte_s, rtol=0.02)
    # the detector emits align_samples - 1 sweeps after the crossing, the trough comes
    # after it: never before the trough, and (closed-loop detector) well within 2 ms
    assert (result.device_s > 0).all() and (result.device_s < 2e-3).all()
    assert (result.host_s > 0).all()
    assert "device+link" in format_result(result)
    # the golden models' split adds up to the measured device part, event by event
    np.testing.assert_allclose(sum(result.split.values()), result.device_s, atol=1e-9)
    assert (result.split["decision"] > 0).all() and (result.split["snippet"] >= 0).all()
    # the serializer's wait is the frames ahead on the link: under one frame per frame ahead
    frame_s = frame_bytes * byte_s
    waited = result.split["serializer"]
    assert (waited <= (result.frames_ahead + 0.1) * frame_s).all()
    assert (waited[result.frames_ahead == 0] < 0.1 * frame_s).all()
    assert (waited >= (result.frames_ahead - 1) * frame_s).all()
    assert 0 <= result.lost <= result.decided and result.decided >= result.matched


def test_the_bit_level_and_direct_boards_give_the_same_device_latency():
    config = latency_config(8)
    direct = measure_latency(config, seconds=0.15)
    bit_level = measure_latency(config, seconds=0.15, bit_level=True)
    assert direct.matched == bit_level.matched > 0
    # the same events, leaving within a few design cycles of each other
    np.testing.assert_allclose(np.sort(direct.device_s), np.sort(bit_level.device_s),
                               atol=20e-6)


def test_the_latency_bench_times_the_gigabit_udp_board_from_its_capture():
    """The UDP board (a short run: it simulates the 125 MHz link clock too): the link part
    is each EVENTS frame's bytes on the Gigabit wire, the golden models' split adds up to
    the device part, and with no UART queue device+link stays well under 1 ms."""
    from spikeforge.firmware.ethernet import (
        ETH_HEADER_BYTES,
        FCS_BYTES,
        IPV4_HEADER_BYTES,
        MIN_FRAME_BYTES,
        PREAMBLE_SFD,
        UDP_HEADER_BYTES,
    )

    config = latency_config(8, link="udp")
    result = measure_latency(config, seconds=0.25)
    assert result.link == "Gigabit UDP"
    assert result.matched >= 5 and result.matched <= result.events
    detector = config.detector
    samples = detector.snippet_pre + 1 + detector.snippet_post
    frame_bytes = DATA_FRAME_OVERHEAD_BYTES + EVENT_RECORD.size + 2 * samples
    ethernet = max(MIN_FRAME_BYTES, ETH_HEADER_BYTES + IPV4_HEADER_BYTES + UDP_HEADER_BYTES
                   + frame_bytes)
    wire_s = (len(PREAMBLE_SFD) + ethernet + FCS_BYTES) * 8e-9
    np.testing.assert_allclose(result.link_s, wire_s, rtol=1e-6)
    np.testing.assert_allclose(sum(result.split.values()), result.device_s, atol=1e-9)
    np.testing.assert_allclose(result.device_and_link_s, result.device_s + result.link_s)
    assert (result.split["decision"] > 0).all() and (result.split["snippet"] >= 0).all()
    # the Ethernet core's own time (headers, the link clock's crossing) is microseconds
    assert (result.split["serializer"] >= 0).all()
    assert (result.split["serializer"][result.frames_ahead == 0] < 20e-6).all()
    assert (result.device_s > 0).all() and (result.device_and_link_s < 1e-3).all()
    assert (result.host_s > 0).all() and (result.host_s < 0.5).all()
    assert "Gigabit UDP" in format_result(result)
