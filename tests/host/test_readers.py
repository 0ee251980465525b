"""What the recorder writes opens in the readers users have: neo's ``read_block()`` and
SpikeInterface's ``get_traces()`` for every mode (an events+LFP recording has no full-rate
samples), and the NWB export passes nwbinspector with no critical or error finding."""

import getpass
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from spikeforge.firmware.config import DecimatorConfig, DetectorConfig, SystemConfig
from spikeforge.host.frames import DetectorEvent, EventBlock
from spikeforge.host.nwb import DEFAULT_SUBJECT_ID, export_nwb
from spikeforge.host.openephys import OpenEphysWriter

neo = pytest.importorskip("neo")
pytest.importorskip("pynwb")

CONFIG = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256,
                      detector=DetectorConfig(enabled=True),
                      lfp=DecimatorConfig(factor=10, order=3))


def _events(first: int, count: int) -> EventBlock:
    width = 1 + 8 + 16
    return EventBlock(seq=0, events=tuple(
        DetectorEvent(sample=first + 97 * k, channel=k % 4, peak=-300 - k, pre=8,
                      snippet=np.arange(width, dtype=np.int16) - 12) for k in range(count)))


def _events_lfp_recording(out: Path) -> Path:
    """What the recorder writes in mode events+lfp: LFP blocks and events, no DATA."""
    writer = OpenEphysWriter(out, CONFIG, {"mode": "events+lfp"})
    for frame in range(30):
        writer.write_continuous("lfp", 16 + frame * 8,
                                np.full((8, 4), frame, dtype="<i2"))
    writer.write_events(_events(1700, 12))
    writer.close({"ended": "duration reached"})
    return out


def _raw_recording(out: Path, *, losses: bool) -> Path:
    writer = OpenEphysWriter(out, CONFIG, {"mode": "raw"})
    rng = np.random.default_rng(3)
    for frame in range(50):
        if losses and frame in (10, 11, 30):
            continue
        writer.write_continuous("data", 8 * frame, rng.integers(-50, 50, (8, 4)).astype("<i2"))
    writer.write_events(_events(40, 5))
    writer.close({"ended": "duration reached"})
    return out


def test_neo_reads_the_whole_block_of_an_events_plus_lfp_recording(tmp_path):
    out = _events_lfp_recording(tmp_path / "rec")
    block = neo.io.OpenEphysBinaryIO(str(out)).read_block()
    signals = block.segments[0].analogsignals
    assert len(signals) == 1 and signals[0].shape == (240, 4)
    assert float(signals[0].sampling_rate) == CONFIG.lfp_rate_hz


def test_spikeinterface_gets_the_traces_of_every_stream_it_lists(tmp_path):
    se = pytest.importorskip("spikeinterface.extractors")
    for out in (_events_lfp_recording(tmp_path / "lfp"),
                _raw_recording(tmp_path / "raw", losses=True)):
        stream_names, stream_ids = se.get_neo_streams("openephysbinary", str(out))
        assert stream_ids
        for stream_id in stream_ids:
            traces = se.read_openephys(str(out), stream_id=stream_id).get_traces()
            assert traces.shape[0] > 0 and traces.shape[1] == 4


def _findings(path: Path) -> list:
    from nwbinspector import Importance, inspect_nwbfile

    return [m for m in inspect_nwbfile(nwbfile_path=str(path))
            if m.importance in (Importance.CRITICAL, Importance.ERROR)
            or "Traceback" in str(m.message) or "ERROR" in str(m.importance)]


@pytest.mark.parametrize("kind", ["raw with losses", "raw without losses", "events+lfp"])
def test_the_nwb_export_passes_nwbinspector(tmp_path, kind):
    pytest.importorskip("nwbinspector")
    out = tmp_path / "rec"
    if kind == "events+lfp":
        _events_lfp_recording(out)
    else:
        _raw_recording(out, losses=kind == "raw with losses")
    nwb = export_nwb(out, tmp_path / "rec.nwb")
    findings = _findings(nwb)
    assert not findings, "\n".join(f"{m.importance.name} {m.check_function_name}: {m.message}"
                                   for m in findings)


def test_the_subject_is_a_pseudonym_and_no_host_or_user_name_is_written(tmp_path):
    pynwb = pytest.importorskip("pynwb")
    out = _raw_recording(tmp_path / "rec", losses=False)
    with pynwb.NWBHDF5IO(str(export_nwb(out, tmp_path / "a.nwb")), "r") as io:
        assert io.read().subject.subject_id == DEFAULT_SUBJECT_ID
    with pynwb.NWBHDF5IO(str(export_nwb(out, tmp_path / "b.nwb", subject_id="m-017")),
                         "r") as io:
        nwb = io.read()
        assert nwb.subject.subject_id == "m-017"
        assert str(tmp_path) not in nwb.identifier
    raw = (tmp_path / "b.nwb").read_bytes()
    for private in {socket.gethostname(), getpass.getuser(), str(tmp_path)} - {"", "root"}:
        assert private.encode() not in raw, private


def test_export_takes_a_subject_id_option(tmp_path):
    from spikeforge.cli import main

    out = _raw_recording(tmp_path / "rec", losses=False)
    assert main(["export", str(out), "--nwb", str(tmp_path / "x.nwb"),
                 "--subject-id", "rat-3"]) == 0
    pynwb = pytest.importorskip("pynwb")
    with pynwb.NWBHDF5IO(str(tmp_path / "x.nwb"), "r") as io:
        assert io.read().subject.subject_id == "rat-3"
    assert json.loads((out / "Record Node 101/experiment1/recording1/spikeforge.json")
                      .read_text())["ended"] == "duration reached"
