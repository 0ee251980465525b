"""Every RTL bench of the suite, run on Verilator through cocotb, as part of `make test`.

The system benches also prove the whole chain end to end: the bytes captured from the UART
pin of the simulated design, decoded by the real host decoder, are exactly the test
source's samples for every frame that was sent, and the frames missing are exactly those
the device dropped (counted as sequence gaps on the host).
"""

import numpy as np
import pytest

from spikeforge.firmware.compression import Codebook
from spikeforge.host import DataBlock, EventBlock, Identity, StreamDecoder
from spikeforge.sim.models.decimator import decimate
from spikeforge.sim.models.detector import device_events
from spikeforge.sim.models.framer import SOURCE_LATENCY, frame_stream
from spikeforge.sim.models.source import source_signal
from spikeforge.sim.suite import CASES, SLOW_CASES, V2_DEFAULT_CASES, is_slow, run_case

pytestmark = pytest.mark.sim


def test_every_slow_case_names_one_case():
    for bench, why in SLOW_CASES:
        named = [c for c in CASES if c.bench == bench and c.label.endswith(f"({why})")]
        assert len(named) == 1, f"SLOW_CASES entry {(bench, why)} names {len(named)} cases"


def test_every_default_v2_case_names_one_case():
    for bench, label in V2_DEFAULT_CASES:
        named = [c for c in CASES if c.bench == bench and c.label == label]
        assert len(named) == 1, f"V2_DEFAULT_CASES entry {(bench, label)} names {len(named)}"


# The slow cases are covered by a faster default case each (sim.suite.SLOW_CASES,
# V2_DEFAULT_CASES): `make test-exhaustive` runs them, CI does not.
_EXHAUSTIVE = (pytest.mark.slow, pytest.mark.exhaustive)


@pytest.mark.parametrize("case", [pytest.param(c, marks=_EXHAUSTIVE) if is_slow(c) else c
                                  for c in CASES], ids=[c.case_id for c in CASES])
def test_rtl_matches_golden_model(case):
    result = run_case(case)
    assert result.passed, f"{case.case_id} failed; the bench log is {result.log}"
    assert result.items > 0, f"{case.case_id} compared nothing"
    assert not list(result.build.glob("*.gch")), "a linked build kept its precompiled headers"
    if case.bench != "system":
        return

    config = case.config
    if "mode_writes" in case.params:
        _check_modes(case)
        return
    decoder = StreamDecoder()
    items = decoder.feed(case.capture_path.read_bytes())
    identities = [i for i in items if isinstance(i, Identity)]
    blocks = [i for i in items if isinstance(i, DataBlock)]
    assert identities and identities[0].config == config, "the device did not identify itself"
    assert blocks, "no data frames decoded"
    assert decoder.stats.crc_errors == 0 and decoder.stats.bytes_discarded == 0

    last = blocks[-1].first_sample + config.sweeps_per_frame
    if config.source == "rhd":
        # The samples the system bench fed to the chip models.
        truth = np.load(case.capture_path.with_suffix(".truth.npy"))
    else:
        truth = source_signal(config, last).samples
    for block in blocks:
        # channel mask: DATA frames carry the enabled channels only
        assert block.channels == config.enabled_channels
        np.testing.assert_array_equal(
            block.samples, truth[block.first_sample:block.first_sample + config.sweeps_per_frame,
                                 list(block.channels)],
            err_msg=f"frame {block.seq} decodes to samples the source did not emit")
    seqs = [b.seq for b in blocks]
    events = device_events(config, truth, SOURCE_LATENCY)
    schedule = frame_stream(config, truth, events=events)
    assert seqs == schedule.sent_slots[:len(seqs)], "decoded frames differ from those sent"
    dropped_between = [s for s in schedule.dropped_slots if seqs[0] < s < seqs[-1]]
    assert decoder.stats.sequence_gaps == len(dropped_between)
    if "drops" in case.label:
        assert dropped_between, "this case exists to drop frames, and none were dropped"

    # EVENTS frames: decoded by the host into exactly the model's events, in order.
    event_blocks = [i for i in items if isinstance(i, EventBlock)]
    assert [b.seq for b in event_blocks] == list(range(len(event_blocks)))
    decoded = [e for b in event_blocks for e in b.events]
    _assert_events_are_the_models(decoded, schedule, events)
    if "EVENTS" in case.label:
        assert decoded, "this case exists to send EVENTS frames, and none were decoded"
    if "events and data drops" in case.label:
        assert schedule.event_output.dropped > 0, "no event was dropped"


def _check_modes(case):
    """Bandwidth-mode cases: every DATA and COMPRESSED frame on the wire, decoded by the real
    host decoder, is exactly the source's samples; the frames are the model's, in order; the
    host's gaps are the device's drops."""
    from spikeforge.firmware.wire import FrameType
    from spikeforge.host import FrameParser
    from spikeforge.sim.benches.system import modes_in_force

    config = case.config
    capture = case.capture_path.read_bytes()
    # codebook cases: the host decodes with the table the bench loaded into the device
    codebook = (Codebook.from_dict(case.params["codebook"]) if "codebook" in case.params
                else None)
    decoder = StreamDecoder(codebook=codebook)
    items = decoder.feed(capture)
    assert decoder.stats.crc_errors == 0 and decoder.stats.bytes_discarded == 0
    assert decoder.stats.malformed == 0, decoder.last_error
    blocks = [i for i in items if isinstance(i, DataBlock)]
    assert blocks, "no data decoded"
    last = max(b.first_sample + b.samples.shape[0] for b in blocks)
    if config.lfp is not None:
        last = max(last, max(((b.first_sample + b.samples.shape[0]) * config.lfp.factor
                              for b in blocks if b.stream == "lfp"), default=0))
    if config.lfp is not None:   # every slot the bench's run decided, sent or not
        spf = config.sweeps_per_frame
        last = max(last, case.params["cycles"] // config.cycles_per_sample + 1
                   + spf * (1 + config.lfp.factor))
    truth = source_signal(config, last + config.sweeps_per_frame).samples
    # LFP frames: exactly the decimator's golden model applied to the source samples.
    lfp_truth = None if config.lfp is None else decimate(config.lfp, truth)
    for block in blocks:
        reference = lfp_truth if block.stream == "lfp" else truth
        np.testing.assert_array_equal(
            block.samples,
            reference[block.first_sample:block.first_sample + block.samples.shape[0],
                      list(block.channels)],
            err_msg=f"{block.stream} frame {block.seq} decodes to samples the device did "
                    "not produce")

    kinds = [(f.type, f.seq) for f in FrameParser().feed(capture)
             if f.type in (FrameType.DATA, FrameType.COMPRESSED, FrameType.LFP)]
    modes = modes_in_force(config, [tuple(w) for w in case.params["mode_writes"]])
    events = device_events(config, truth, SOURCE_LATENCY)
    schedule = frame_stream(config, truth, events=events, modes=modes, codebook=codebook)
    assert kinds == schedule.sent_frames[:len(kinds)], (
        "decoded frames differ from those the model sent")
    assert len(kinds) == len(blocks)
    # Gaps count within each run of one frame type (a mode switch restarts tracking).
    dropped = {FrameType.DATA: schedule.dropped_slots,
               FrameType.COMPRESSED: schedule.dropped_blocks,
               FrameType.LFP: schedule.dropped_lfp_slots}
    gaps = sum(1 for (k0, s0), (k1, s1) in zip(kinds, kinds[1:]) if k0 == k1
               for s in dropped[k0] if s0 < s < s1)
    assert decoder.stats.sequence_gaps == gaps
    if "drops" in case.label and config.lfp is None:
        assert schedule.dropped_blocks, "this case exists to drop blocks, and none were dropped"
    if config.lfp is not None:
        _check_lfp(config, items, kinds, schedule, events)
    if "lossless" in case.label:
        assert any(k == FrameType.COMPRESSED for k, _ in kinds), "no COMPRESSED frame"
    if "switch" in case.label:
        assert any(k == FrameType.DATA for k, _ in kinds), "no DATA frame before the switch"
        assert [i for i in items if isinstance(i, EventBlock)], "no EVENTS after the switch"


def _check_lfp(config, items, kinds, schedule, events):
    """LFP cases: LFP frames went out (and, in this case, slots of both kinds were refused
    around the switches); the events decoded by the host are exactly the model's."""
    from spikeforge.firmware.wire import FrameType

    assert any(k == FrameType.LFP for k, _ in kinds), "no LFP frame"
    assert any(k == FrameType.DATA for k, _ in kinds), "no DATA frame before the switch"
    assert schedule.dropped_slots and schedule.dropped_lfp_slots, (
        "this case exists to refuse a slot of each kind around the switches")
    decoded = [e for b in items if isinstance(b, EventBlock) for e in b.events]
    assert decoded, "no EVENTS in mode events+lfp"
    _assert_events_are_the_models(decoded, schedule, events)


def _assert_events_are_the_models(decoded, schedule, events) -> None:
    """The events the host decoded are exactly the model's, in the order the frames sent
    them."""
    sent = [index for index, _ in schedule.event_frames][:len(decoded)]
    model = events.events
    for event, index in zip(decoded, sent):
        assert (event.sample, event.channel, event.peak) == (
            model.sweep[index], model.channel[index], model.peak[index])
        np.testing.assert_array_equal(event.snippet, model.snippets[index])
    assert len(decoded) == len(sent)
