"""A recording cut at any instant (kill -9 of the recorder, power lost) stays something every
reader path handles: neo and SpikeInterface open it, `spikeforge export` writes what it
holds or says in one line why it cannot, never a traceback.

The cut states are the writer's files as they are on disk at that instant (copied while the
writer is still open: what Python has not handed to the OS is lost, as after kill -9), and
the harsher states a cut can leave (a partial last row, an empty sample_numbers.npy, no
spikeforge.json).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from spikeforge.cli import main
from spikeforge.firmware.config import SystemConfig
from spikeforge.firmware.errors import SpikeforgeError
from spikeforge.host.errors import ExitCode
from spikeforge.host.openephys import OpenEphysWriter

neo = pytest.importorskip("neo")
pytest.importorskip("pynwb")

RECORDING = Path("Record Node 101/experiment1/recording1")
ACQUISITION = RECORDING / "continuous" / "spikeforge-100.acquisition"
CONFIG = SystemConfig(channels=4, sweeps_per_frame=8, link_buffer_samples=256)


def _cut_states(tmp_path: Path) -> dict[str, Path]:
    """Snapshots of one recording's folder at several instants, and damaged variants."""
    states: dict[str, Path] = {}
    out = tmp_path / "live"
    writer = OpenEphysWriter(out, CONFIG, {"port": "test"})

    def snapshot(name: str) -> Path:
        states[name] = tmp_path / name
        shutil.copytree(out, states[name])
        return states[name]

    snapshot("created")
    rng = np.random.default_rng(1)
    for block in range(40):
        writer.write(5 + block * 8, rng.integers(-100, 100, (8, 4)).astype("<i2"))
        if block in (0, 3, 20):
            snapshot(f"after block {block}")
    writer.flush({"ended": "still recording"})
    snapshot("flushed")
    writer.write(5 + 40 * 8, np.ones((8, 4), dtype="<i2"))
    snapshot("written after the flush")
    writer.close({"ended": "duration reached"})

    for name, damage in {
        "no spikeforge.json": lambda f: (f / RECORDING / "spikeforge.json").unlink(),
        "partial last row": lambda f: _truncate(f / ACQUISITION / "continuous.dat", 2),
        "odd-sized continuous.dat": lambda f: _truncate(f / ACQUISITION / "continuous.dat", 3),
        "empty sample_numbers.npy": lambda f: (f / ACQUISITION / "sample_numbers.npy")
        .write_bytes(b""),
        "sample_numbers.npy of no rows": lambda f: np.save(
            f / ACQUISITION / "sample_numbers.npy", np.zeros(0, dtype="<i8")),
        "no timestamps.npy": lambda f: (f / ACQUISITION / "timestamps.npy").unlink(),
    }.items():
        damaged = tmp_path / name.replace(" ", "_").replace(".", "_")
        shutil.copytree(out, damaged)
        damage(damaged)
        states[name] = damaged
    return states


def _truncate(path: Path, drop_bytes: int) -> None:
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size - drop_bytes)


@pytest.fixture(scope="module")
def cut_states(tmp_path_factory):
    return _cut_states(tmp_path_factory.mktemp("cut"))


#: What a cut leaves (the writer writes whole rows unbuffered, so never an odd-sized file).
#: What a cut leaves. The writer writes whole rows unbuffered and a .npy file appears with
#: its header, so never an odd-sized continuous.dat or an empty sample_numbers.npy (what
#: recordings of earlier versions could leave, which neo cannot open).
STATES = ["created", "after block 0", "after block 3", "after block 20", "flushed",
          "written after the flush", "no spikeforge.json", "partial last row",
          "sample_numbers.npy of no rows", "no timestamps.npy"]
#: ... and what else export handles.
EXPORT_STATES = [*STATES, "odd-sized continuous.dat", "empty sample_numbers.npy"]


@pytest.mark.parametrize("state", EXPORT_STATES)
def test_export_of_a_cut_recording_writes_what_it_holds_or_says_why_in_one_line(
        cut_states, state, tmp_path, capsys):
    out = tmp_path / "cut.nwb"
    code = main(["export", str(cut_states[state]), "--nwb", str(out)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == ExitCode.OK:
        pynwb = pytest.importorskip("pynwb")
        with pynwb.NWBHDF5IO(str(out), "r") as io:
            io.read()
    else:
        assert code == ExitCode.USAGE, err
        assert len(err.strip().splitlines()) == 1 and err.startswith("spikeforge: "), err


@pytest.mark.parametrize("state", STATES)
def test_neo_opens_a_cut_recording(cut_states, state):
    reader = neo.rawio.OpenEphysBinaryRawIO(str(cut_states[state]))
    reader.parse_header()
    for stream in range(reader.signal_streams_count()):
        reader.get_analogsignal_chunk(0, 0, stream_index=stream)


@pytest.mark.parametrize("state", STATES)
def test_spikeinterface_reads_the_traces_of_a_cut_recording(cut_states, state):
    se = pytest.importorskip("spikeinterface.extractors")
    if state == "created":
        # Cut before the first sweeps: no continuous stream is listed (none to read).
        structure = json.loads((cut_states[state] / RECORDING / "structure.oebin").read_text())
        assert structure["continuous"] == []
        return
    recording = se.read_openephys(str(cut_states[state]), stream_id="0")
    traces = recording.get_traces()
    assert traces.shape[1] == CONFIG.channels


def test_every_written_sweep_survives_an_export_after_a_cut(cut_states, tmp_path):
    """Best effort means best: the rows on disk are exported, with their sample numbers."""
    pynwb = pytest.importorskip("pynwb")
    folder = cut_states["written after the flush"]
    rows = (folder / ACQUISITION / "continuous.dat").stat().st_size // (2 * CONFIG.channels)
    assert main(["export", str(folder), "--nwb", str(tmp_path / "x.nwb")]) == 0
    with pynwb.NWBHDF5IO(str(tmp_path / "x.nwb"), "r") as io:
        series = io.read().acquisition["ElectricalSeries"]
        assert len(series.data) == rows
        assert series.starting_time == pytest.approx(5 / CONFIG.sample_rate_hz)


def test_the_json_is_there_from_the_start(cut_states):
    assert (cut_states["created"] / RECORDING / "spikeforge.json").exists()


def test_a_folder_that_is_no_recording_is_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--nwb", str(tmp_path / "x.nwb")]) == ExitCode.USAGE
    assert "no structure.oebin" in capsys.readouterr().err


def test_errors_of_the_export_are_project_errors(cut_states, tmp_path):
    from spikeforge.host.nwb import export_nwb

    for state in EXPORT_STATES:
        try:
            export_nwb(cut_states[state], tmp_path / f"{state}.nwb")
        except SpikeforgeError:
            pass
